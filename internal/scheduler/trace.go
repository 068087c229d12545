package scheduler

import (
	"context"
	"sync"
	"time"

	"github.com/connprobe/connprobe/probe"
)

// Defaults of the trace policy.
const (
	// DefaultTraceMinInterval is how often, at most, the agent traces a
	// check again while it keeps failing for the same reason.
	DefaultTraceMinInterval = 10 * time.Minute
	// DefaultTraceMaxConcurrent caps the traces running at once.
	DefaultTraceMaxConcurrent = 2
)

// TraceOptions are the policy for tracing the path of failing checks (see
// probe.Trace). Both modes share it: the agent traces a check when it starts
// failing or its reason changes, and then at most once per MinInterval;
// RunOnce (`probe check`) traces each failing result once. A trace never
// changes a result's Up or Reason; it only adds Path.
type TraceOptions struct {
	// Trace traces one result: probe.Trace in production. Nil turns
	// tracing off (the default, so that a scheduler built in a test
	// around made-up results never sends a packet to their addresses).
	Trace func(ctx context.Context, r probe.Result) *probe.Path
	// MinInterval is the least time between two traces of one failing
	// check (address family) whose reason has not changed; default 10m.
	// Between traces a failing result carries the last path found.
	MinInterval time.Duration
	// MaxConcurrent caps traces running at once across all checks
	// (default 2). The agent skips a trace that finds the cap full (the
	// check's next run tries again); RunOnce waits for a free one.
	MaxConcurrent int
}

// tracer keeps the trace state of failing checks. Its map holds only results
// that are failing now (an entry goes when its check recovers, stops failing
// in a traceable way, or leaves the configuration), so it is bounded by the
// configured checks.
type tracer struct {
	opts TraceOptions
	sem  chan struct{}
	now  func() time.Time

	mu   sync.Mutex
	last map[traceKey]traceState
}

// traceKey is one result of one check: its identity and address family.
type traceKey struct {
	check  probe.Key
	family string
}

// traceState is the last trace of a failing result.
type traceState struct {
	reason  probe.Reason
	address string
	at      time.Time
	path    *probe.Path // nil when the trace observed nothing
}

func newTracer(o TraceOptions) *tracer {
	if o.MinInterval <= 0 {
		o.MinInterval = DefaultTraceMinInterval
	}
	if o.MaxConcurrent <= 0 {
		o.MaxConcurrent = DefaultTraceMaxConcurrent
	}
	return &tracer{opts: o, sem: make(chan struct{}, o.MaxConcurrent), now: time.Now, last: map[traceKey]traceState{}}
}

// apply traces the failing results of one run of c as the policy says, in
// place, before they are stored. wait says whether to wait for a free trace
// slot (RunOnce) or skip the trace when none is free (the agent).
func (t *tracer) apply(ctx context.Context, c *probe.Check, rs []probe.Result, wait bool) {
	if t.opts.Trace == nil {
		return
	}
	for i := range rs {
		r := &rs[i]
		k := traceKey{check: c.Key(), family: r.IPFamily}
		if !probe.Traceable(*r) {
			t.forget(k)
			continue
		}
		t.mu.Lock()
		st, seen := t.last[k]
		t.mu.Unlock()
		due := !seen || st.reason != r.Reason || st.address != r.Address || t.now().Sub(st.at) >= t.opts.MinInterval
		if !due {
			r.Path = st.path // the last path found, kept with the result
			continue
		}
		if !t.acquire(ctx, wait) {
			if seen && st.address == r.Address {
				r.Path = st.path // an older path of the same destination beats none
			}
			continue
		}
		p := t.opts.Trace(ctx, *r)
		<-t.sem
		if ctx.Err() != nil {
			continue // cut short by a reload or by stopping: it observed nothing
		}
		r.Path = p
		t.mu.Lock()
		t.last[k] = traceState{reason: r.Reason, address: r.Address, at: t.now(), path: p}
		t.mu.Unlock()
	}
}

func (t *tracer) acquire(ctx context.Context, wait bool) bool {
	if !wait {
		select {
		case t.sem <- struct{}{}:
			return true
		default:
			return false
		}
	}
	select {
	case t.sem <- struct{}{}:
	case <-ctx.Done():
		return false
	}
	if ctx.Err() != nil { // select picks at random among ready cases
		<-t.sem
		return false
	}
	return true
}

func (t *tracer) forget(k traceKey) {
	t.mu.Lock()
	delete(t.last, k)
	t.mu.Unlock()
}

// prune forgets the state of checks that are no longer configured.
func (t *tracer) prune(keep map[probe.Key]bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for k := range t.last {
		if !keep[k.check] {
			delete(t.last, k)
		}
	}
}

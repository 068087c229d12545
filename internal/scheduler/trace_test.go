package scheduler

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/connprobe/connprobe/probe"
)

// fakeTrace records the traces asked for and answers a path naming the
// result's reason, so a test can tell which trace a path came from. It sends
// nothing.
type fakeTrace struct {
	calls atomic.Int32
	block chan struct{} // if set, each trace waits for it
}

func (f *fakeTrace) trace(ctx context.Context, r probe.Result) *probe.Path {
	f.calls.Add(1)
	if f.block != nil {
		select {
		case <-f.block:
		case <-ctx.Done():
			return nil
		}
	}
	return &probe.Path{Location: probe.PathGateway, Hop: 1, Address: "192.0.2.1", Control: string(r.Reason)}
}

func failing(c *probe.Check, reason probe.Reason) []probe.Result {
	return []probe.Result{{Check: c, Address: "192.0.2.80", IPFamily: probe.FamilyIPv4, Reason: reason, Phase: probe.PhaseConnect}}
}

func tcpCheck(name string) *probe.Check {
	return &probe.Check{Name: name, Kind: "tcp", Host: "192.0.2.80", Port: 443, Network: "tcp"}
}

func TestTracePolicyAgent(t *testing.T) {
	f := &fakeTrace{}
	tr := newTracer(TraceOptions{Trace: f.trace, MinInterval: 10 * time.Minute})
	now := time.Unix(1_700_000_000, 0)
	tr.now = func() time.Time { return now }
	c := tcpCheck("a")
	ctx := context.Background()

	run := func(reason probe.Reason, wantCalls int32, wantPath bool) []probe.Result {
		t.Helper()
		var rs []probe.Result
		if reason == probe.ReasonOK {
			rs = []probe.Result{{Check: c, Address: "192.0.2.80", IPFamily: probe.FamilyIPv4, Up: true, Reason: probe.ReasonOK, Phase: probe.PhaseConnect}}
		} else {
			rs = failing(c, reason)
		}
		tr.apply(ctx, c, rs, false)
		if got := f.calls.Load(); got != wantCalls {
			t.Fatalf("after a %s run: %d traces, want %d", reason, got, wantCalls)
		}
		if (rs[0].Path != nil) != wantPath {
			t.Fatalf("after a %s run: path %+v, want a path: %v", reason, rs[0].Path, wantPath)
		}
		if rs[0].Reason != reason || rs[0].Up != (reason == probe.ReasonOK) {
			t.Fatalf("the trace changed the verdict: %+v", rs[0])
		}
		return rs
	}

	run(probe.ReasonTimeout, 1, true) // starts failing: traced
	now = now.Add(time.Minute)
	rs := run(probe.ReasonTimeout, 1, true) // same reason within the interval: the last path, no trace
	if rs[0].Path.Control != string(probe.ReasonTimeout) {
		t.Errorf("kept path %+v is not the last trace's", rs[0].Path)
	}
	now = now.Add(time.Minute)
	rs = run(probe.ReasonRejected, 2, true) // the reason changed: traced again
	if rs[0].Path.Control != string(probe.ReasonRejected) {
		t.Errorf("path %+v is not the new trace's", rs[0].Path)
	}
	now = now.Add(9*time.Minute + 59*time.Second)
	run(probe.ReasonRejected, 2, true) // just under 10 minutes since the last trace
	now = now.Add(time.Second)
	run(probe.ReasonRejected, 3, true) // 10 minutes: traced again
	run(probe.ReasonOK, 3, false)      // up: never traced, state forgotten
	run(probe.ReasonRejected, 4, true) // fails again: traced at once
	run(probe.ReasonRefused, 4, false) // failed at the target: no path, no trace
	run(probe.ReasonRefused, 4, false)
	run(probe.ReasonTimeout, 5, true) // a traceable failure again: traced
}

func TestTracePolicyDisabled(t *testing.T) {
	tr := newTracer(TraceOptions{})
	c := tcpCheck("a")
	rs := failing(c, probe.ReasonTimeout)
	tr.apply(context.Background(), c, rs, true)
	if rs[0].Path != nil {
		t.Errorf("tracing off, got path %+v", rs[0].Path)
	}
}

// The agent never waits for a trace slot: a trace that finds the cap full is
// skipped and the check's next run tries again.
func TestTracePolicyCapAgentSkips(t *testing.T) {
	f := &fakeTrace{block: make(chan struct{})}
	tr := newTracer(TraceOptions{Trace: f.trace, MaxConcurrent: 1})
	a, b := tcpCheck("a"), tcpCheck("b")
	done := make(chan struct{})
	go func() {
		tr.apply(context.Background(), a, failing(a, probe.ReasonTimeout), false)
		close(done)
	}()
	deadline := time.Now().Add(5 * time.Second)
	for f.calls.Load() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the first trace never started")
		}
		time.Sleep(time.Millisecond)
	}
	rs := failing(b, probe.ReasonTimeout)
	tr.apply(context.Background(), b, rs, false)
	if f.calls.Load() != 1 || rs[0].Path != nil {
		t.Fatalf("with the cap full: %d traces, path %+v; want the second skipped", f.calls.Load(), rs[0].Path)
	}
	close(f.block)
	<-done
	// Not traced, so not remembered: the next run traces.
	rs = failing(b, probe.ReasonTimeout)
	tr.apply(context.Background(), b, rs, false)
	if f.calls.Load() != 2 || rs[0].Path == nil {
		t.Fatalf("next run: %d traces, path %+v; want it traced", f.calls.Load(), rs[0].Path)
	}
}

// RunOnce (`probe check`) traces every failing check once, waiting for a
// slot, never more than MaxConcurrent at a time, and the Sink sees the path.
func TestTracePolicyRunOnce(t *testing.T) {
	var inFlight, most atomic.Int32
	var calls atomic.Int32
	trace := func(ctx context.Context, r probe.Result) *probe.Path {
		calls.Add(1)
		n := inFlight.Add(1)
		for {
			m := most.Load()
			if n <= m || most.CompareAndSwap(m, n) {
				break
			}
		}
		time.Sleep(20 * time.Millisecond)
		inFlight.Add(-1)
		return &probe.Path{Location: probe.PathUpstream, Hop: 2, Address: "192.0.2.9"}
	}
	var mu sync.Mutex
	got := map[string]*probe.Path{}
	var checks []*probe.Check
	for i := range 6 {
		c := tcpCheck(string(rune('a' + i)))
		c.Host = "192.0.2." + string(rune('1'+i)) // one lane each: they run side by side
		checks = append(checks, c)
	}
	up := &probe.Check{Name: "up", Kind: "tcp", Host: "192.0.2.70", Port: 443, Network: "tcp"}
	checks = append(checks, up)
	s := New(Options{
		Run: func(_ context.Context, c *probe.Check) []probe.Result {
			if c == up {
				return []probe.Result{{Check: c, Address: c.Host, IPFamily: probe.FamilyIPv4, Up: true, Reason: probe.ReasonOK, Phase: probe.PhaseConnect}}
			}
			return []probe.Result{{Check: c, Address: c.Host, IPFamily: probe.FamilyIPv4, Reason: probe.ReasonTimeout, Phase: probe.PhaseConnect}}
		},
		Sink: func(c *probe.Check, rs []probe.Result) {
			mu.Lock()
			got[c.Name] = rs[0].Path
			mu.Unlock()
		},
		Trace: TraceOptions{Trace: trace, MaxConcurrent: 2},
	})
	if notRun := s.RunOnce(context.Background(), checks); len(notRun) != 0 {
		t.Fatalf("not run: %v", notRun)
	}
	if calls.Load() != 6 {
		t.Errorf("%d traces, want one per failing check (6)", calls.Load())
	}
	if most.Load() > 2 {
		t.Errorf("%d traces at once, cap 2", most.Load())
	}
	for _, c := range checks {
		if p := got[c.Name]; (p != nil) != (c != up) {
			t.Errorf("%s: path %+v", c.Name, p)
		}
	}
}

// A reload forgets the trace state of checks no longer configured.
func TestTracePolicyPrunedOnApply(t *testing.T) {
	f := &fakeTrace{}
	s := New(Options{Trace: TraceOptions{Trace: f.trace}})
	a, b := tcpCheck("a"), tcpCheck("b")
	s.Apply([]*probe.Check{a, b})
	s.tracer.apply(context.Background(), a, failing(a, probe.ReasonTimeout), false)
	s.tracer.apply(context.Background(), b, failing(b, probe.ReasonTimeout), false)
	s.Apply([]*probe.Check{a})
	s.tracer.mu.Lock()
	n := len(s.tracer.last)
	_, kept := s.tracer.last[traceKey{check: a.Key(), family: probe.FamilyIPv4}]
	s.tracer.mu.Unlock()
	if n != 1 || !kept {
		t.Errorf("after the reload %d entries (a kept: %v), want only a's", n, kept)
	}
}

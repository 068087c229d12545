// Package scheduler runs each configured check on its own interval: one timer
// per check, first runs spread over the interval, no check overlapping
// itself, a global cap on probes in flight and pacing per destination host.
package scheduler

import (
	"context"
	"fmt"
	"hash/fnv"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/connprobe/connprobe/probe"
)

// Defaults for zero Options fields.
const (
	DefaultMaxConcurrent  = 16
	DefaultPerHostSpacing = 100 * time.Millisecond
	DefaultInterval       = time.Minute
	DefaultStopTimeout    = 10 * time.Second
)

// Options configure a Scheduler.
type Options struct {
	// MaxConcurrent caps probes in flight across all checks.
	MaxConcurrent int
	// PerHostSpacing is the least time between two probe starts towards the
	// same host, so many checks of one host (a port range) do not burst it.
	PerHostSpacing time.Duration
	// StopTimeout bounds how long Stop waits for probes in flight.
	StopTimeout time.Duration
	// Run probes one check (probe.Run in production). It must honour ctx.
	Run func(ctx context.Context, c *probe.Check) []probe.Result
	// Sink receives the results of every completed run (the results store
	// and the metrics' Record). Called from the run's goroutine.
	Sink   func(c *probe.Check, rs []probe.Result)
	Logger *slog.Logger
}

// Scheduler is safe for concurrent use. Apply may be called before or after
// Start, as often as the configuration is reloaded.
type Scheduler struct {
	opts   Options
	sem    chan struct{}
	pacer  *hostPacer
	logger *slog.Logger

	mu      sync.Mutex
	jobs    map[string]*job // by check ID
	ctx     context.Context // nil until Start
	cancel  context.CancelFunc
	stopped bool
	// inflight counts runs in progress; Add happens under mu while not
	// stopped, so it never races with Stop's Wait.
	inflight sync.WaitGroup
}

// job is the schedule of one check.
type job struct {
	id          string
	fingerprint string // every setting; a change restarts the schedule
	check       *probe.Check
	interval    time.Duration
	timer       *time.Timer
	next        time.Time // the slot the timer is armed for
	ctx         context.Context
	cancel      context.CancelFunc
	removed     bool
	overruns    atomic.Uint64
}

// New returns a scheduler; nothing runs before Start.
func New(opts Options) *Scheduler {
	if opts.MaxConcurrent <= 0 {
		opts.MaxConcurrent = DefaultMaxConcurrent
	}
	if opts.PerHostSpacing <= 0 {
		opts.PerHostSpacing = DefaultPerHostSpacing
	}
	if opts.StopTimeout <= 0 {
		opts.StopTimeout = DefaultStopTimeout
	}
	if opts.Run == nil {
		opts.Run = probe.Run
	}
	if opts.Sink == nil {
		opts.Sink = func(*probe.Check, []probe.Result) {}
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Scheduler{
		opts:   opts,
		sem:    make(chan struct{}, opts.MaxConcurrent),
		pacer:  newHostPacer(opts.PerHostSpacing),
		logger: logger,
		jobs:   map[string]*job{},
	}
}

// Offset is where in its interval a check first runs: derived from an FNV
// hash of its ID, so it is the same on every start (no burst after a restart)
// and different checks spread over the interval.
func Offset(id string, interval time.Duration) time.Duration {
	if interval <= 0 {
		return 0
	}
	h := fnv.New64a()
	h.Write([]byte(id))
	return time.Duration(h.Sum64() % uint64(interval))
}

func fingerprint(c *probe.Check) string {
	// %#v spells out every field, nested options included; Check holds no
	// pointers, so equal settings give equal strings.
	return fmt.Sprintf("%#v", *c)
}

func intervalOf(c *probe.Check) time.Duration {
	if c.Interval <= 0 {
		return DefaultInterval
	}
	return c.Interval
}

// Apply replaces the set of checks. A check with the same ID and the same
// settings keeps its timer (and overrun count); removed checks stop, their
// probe in flight is cancelled; new or changed checks start at their offset
// from now.
func (s *Scheduler) Apply(checks []*probe.Check) {
	s.mu.Lock()
	defer s.mu.Unlock()
	keep := make(map[string]bool, len(checks))
	var added, changed, unchanged int
	for _, c := range checks {
		id := c.ID()
		if keep[id] {
			s.logger.Warn("duplicate check ID ignored", "check", id)
			continue
		}
		keep[id] = true
		fp := fingerprint(c)
		if old, ok := s.jobs[id]; ok {
			if old.fingerprint == fp {
				old.check = c // same settings; later runs report the current pointer
				unchanged++
				continue
			}
			s.removeLocked(old)
			changed++
		} else {
			added++
		}
		j := &job{id: id, fingerprint: fp, check: c, interval: intervalOf(c)}
		s.jobs[id] = j
		if s.ctx != nil && !s.stopped {
			s.armLocked(j, time.Now())
		}
	}
	var removed int
	for id, j := range s.jobs {
		if !keep[id] {
			s.removeLocked(j)
			delete(s.jobs, id)
			removed++
		}
	}
	s.pacer.prune(time.Now())
	s.logger.Info("checks scheduled", "added", added, "changed", changed,
		"unchanged", unchanged, "removed", removed)
}

// Start arms every check's timer. Cancelling ctx stops scheduling new runs
// and cancels runs in flight; call Stop to wait for them.
func (s *Scheduler) Start(ctx context.Context) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ctx != nil || s.stopped {
		return
	}
	s.ctx, s.cancel = context.WithCancel(ctx)
	now := time.Now()
	for _, j := range s.jobs {
		s.armLocked(j, now)
	}
}

// Stop disarms every timer, cancels runs in flight and waits for them, at
// most StopTimeout. The scheduler cannot be started again.
func (s *Scheduler) Stop() {
	s.mu.Lock()
	if s.stopped {
		s.mu.Unlock()
		return
	}
	s.stopped = true
	for _, j := range s.jobs {
		s.removeLocked(j)
	}
	if s.cancel != nil {
		s.cancel()
	}
	s.mu.Unlock()

	done := make(chan struct{})
	go func() {
		s.inflight.Wait()
		close(done)
	}()
	t := time.NewTimer(s.opts.StopTimeout)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
		s.logger.Warn("probes still in flight after stop timeout", "timeout", s.opts.StopTimeout)
	}
}

// Overruns is how many slots of a check were skipped because its previous
// run (or its wait for a free probe slot) lasted past them. Zero for an
// unknown ID; restarts from zero when the check's settings change.
func (s *Scheduler) Overruns(id string) uint64 {
	s.mu.Lock()
	j := s.jobs[id]
	s.mu.Unlock()
	if j == nil {
		return 0
	}
	return j.overruns.Load()
}

// armLocked schedules the first run of j at its offset from now.
func (s *Scheduler) armLocked(j *job, now time.Time) {
	j.ctx, j.cancel = context.WithCancel(s.ctx)
	j.next = now.Add(Offset(j.id, j.interval))
	j.timer = time.AfterFunc(time.Until(j.next), func() { s.fire(j) })
}

func (s *Scheduler) removeLocked(j *job) {
	j.removed = true
	if j.timer != nil {
		j.timer.Stop()
	}
	if j.cancel != nil {
		j.cancel()
	}
}

// fire runs in the timer's goroutine. The timer is re-armed only after the
// run completes, so a check never overlaps itself.
func (s *Scheduler) fire(j *job) {
	s.mu.Lock()
	if s.stopped || j.removed || s.ctx.Err() != nil {
		s.mu.Unlock()
		return
	}
	s.inflight.Add(1)
	c, ctx, slot := j.check, j.ctx, j.next
	s.mu.Unlock()
	defer s.inflight.Done()

	s.runOnce(ctx, c)

	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped || j.removed || ctx.Err() != nil {
		return
	}
	// Skip every slot that passed while this run was waiting or running.
	now := time.Now()
	missed := uint64(0)
	if now.After(slot) {
		missed = uint64(now.Sub(slot) / j.interval)
	}
	if missed > 0 {
		j.overruns.Add(missed)
		s.logger.Debug("check overran its interval", "check", j.id, "skipped", missed)
	}
	j.next = slot.Add(time.Duration(missed+1) * j.interval)
	j.timer.Reset(time.Until(j.next))
}

// runOnce takes a probe slot, waits for the host's pacing, runs and delivers.
func (s *Scheduler) runOnce(ctx context.Context, c *probe.Check) {
	select {
	case s.sem <- struct{}{}:
	case <-ctx.Done():
		return
	}
	defer func() { <-s.sem }()

	// Pace after taking the slot, so the reserved start is the real start.
	if wait := s.pacer.reserve(c.Host, time.Now()); wait > 0 {
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return
		}
	}

	rs := s.opts.Run(ctx, c)
	if ctx.Err() != nil {
		// Removed by a reload or stopping: the result says nothing about the
		// destination.
		return
	}
	s.opts.Sink(c, rs)
}

// hostPacer hands out probe start times at least spacing apart per host.
type hostPacer struct {
	spacing time.Duration
	mu      sync.Mutex
	next    map[string]time.Time // earliest next start per host
}

func newHostPacer(spacing time.Duration) *hostPacer {
	return &hostPacer{spacing: spacing, next: map[string]time.Time{}}
}

// reserve books the earliest start for host and returns how long to wait.
func (p *hostPacer) reserve(host string, now time.Time) time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	at := now
	if n, ok := p.next[host]; ok && n.After(now) {
		at = n
	}
	p.next[host] = at.Add(p.spacing)
	return at.Sub(now)
}

// prune forgets hosts whose spacing has elapsed, so the map stays bounded
// by the hosts probed recently.
func (p *hostPacer) prune(now time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for h, n := range p.next {
		if !n.After(now) {
			delete(p.next, h)
		}
	}
}

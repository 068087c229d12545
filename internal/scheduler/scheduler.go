// Package scheduler runs each configured check on its own interval: one timer
// per check, first runs spread over the interval, no check overlapping
// itself, a global cap on probes in flight and pacing per destination host.
//
// Checks expanded from one port range form a range group with one timer: each
// interval probes only a rotating sample of the group's ports, because a UDP
// sweep faster than the destination's ICMP rate limit (Linux: a burst of about
// six errors, then one per second per destination) turns closed ports into
// silence. Servers that ask to be polled less (an NTP kiss-o'-death) are
// backed off or stopped.
//
// RunOnce is the same machinery for `probe check`: every check once, ranges
// swept in full, with the same slots and pacing. Every finished run of either
// mode passes through finish.
package scheduler

import (
	"context"
	"hash/fnv"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/connprobe/connprobe/probe"
)

// Defaults for zero Options fields.
const (
	DefaultMaxConcurrent  = 16
	DefaultPerHostSpacing = 100 * time.Millisecond
	// DefaultUDPHostSpacing matches Linux's ICMP error rate limit (one per
	// second per destination once the burst is spent): UDP probes any closer
	// together would make "refused" ports look silent.
	DefaultUDPHostSpacing = time.Second
	DefaultRangeSample    = 8
	DefaultInterval       = time.Minute
	DefaultStopTimeout    = 10 * time.Second
	// DefaultFirstRunSpread is the window over which first runs are spread
	// after a start (or when a reload adds a check), so the agent is ready
	// within seconds rather than after a whole interval.
	DefaultFirstRunSpread = 5 * time.Second
)

// MaxBackoff caps a throttled check's interval at this multiple of its
// configured interval, so a server that keeps sending RATE is still probed.
const MaxBackoff = 16

// Options configure a Scheduler.
type Options struct {
	// MaxConcurrent caps probes in flight across all checks.
	MaxConcurrent int
	// PerHostSpacing is the least time between two TCP probe starts towards
	// the same host, so many checks of one host do not burst it.
	PerHostSpacing time.Duration
	// UDPHostSpacing is the least time between two UDP probe starts towards
	// the same host (default 1s): the ICMP errors that tell "refused" from
	// silence are rate-limited per destination by the remote kernel.
	UDPHostSpacing time.Duration
	// RangeSample is how many ports of a range group one interval probes
	// (default 8); the sample rotates, so every port is probed within
	// ceil(ports/RangeSample) intervals.
	RangeSample int
	// StopTimeout bounds how long Stop waits for probes in flight.
	StopTimeout time.Duration
	// FirstRunSpread is the window the first runs are spread over (default
	// 5s, at most the interval). A range group's first run sweeps every
	// port, a sample after another; later runs follow the regular schedule.
	FirstRunSpread time.Duration
	// Run probes one check (probe.Run in production). It must honour ctx.
	Run func(ctx context.Context, c *probe.Check) []probe.Result
	// Sink receives the results of every completed run (the results store
	// and the metrics' Record). Called from the run's goroutine; for a range
	// group, once per port probed.
	Sink func(c *probe.Check, rs []probe.Result)
	// Started, if set, is called as each probe starts (after its pacing and
	// slot), from the probe's goroutine: progress for `probe check`.
	Started func(c *probe.Check)
	// Trace is the policy for tracing the path of failing checks (trace.go).
	Trace  TraceOptions
	Logger *slog.Logger
}

// Scheduler is safe for concurrent use. Apply may be called before or after
// Start, as often as the configuration is reloaded.
type Scheduler struct {
	opts   Options
	sem    chan struct{}
	pacer  *pacer
	tracer *tracer
	logger *slog.Logger

	mu   sync.Mutex
	jobs map[string]*job // by job ID: the members' probe.Check.GroupID
	// byCheck finds the job of a range member by its check ID, for the
	// per-check accessors; a single check's job is jobs[its ID] (one map
	// entry per check, not two, at 10,000 checks).
	byCheck map[string]*job
	ctx     context.Context // nil until Start
	cancel  context.CancelFunc
	stopped bool
	// inflight counts runs in progress; Add happens under mu while not
	// stopped, so it never races with Stop's Wait.
	inflight sync.WaitGroup

	work chan *job     // hands a due job to an idle worker (dispatch)
	quit chan struct{} // closed by Stop: idle workers end
	idle atomic.Int32  // workers waiting on work
}

// job is the schedule of one check, or of the ports of one range group.
//
// A job holds no context of its own: each run gets one, cancelled when the
// run ends, so that 10,000 idle checks do not each keep a cancelCtx, its
// channel and an entry in the scheduler's context (about 0.2 KB per check,
// issue 10).
type job struct {
	id       string
	members  []*probe.Check // a change of their settings restarts the schedule
	interval time.Duration
	timer    *time.Timer
	next     time.Time // the slot the timer is armed for
	// cancel ends the run in flight; nil while none is. Guarded by
	// Scheduler.mu.
	cancel   context.CancelFunc
	overruns atomic.Uint64

	// Guarded by Scheduler.mu.
	phase   time.Time // the regular schedule's first slot, at the check's offset in its interval
	cursor  int       // the range member the next sample starts at
	factor  int       // interval multiplier while a server asks to back off; 1 normally
	removed bool
	first   bool // the next run is the first: soon after arming, every member
	halted  bool // a server asked to stop; only a changed configuration restarts it
}

// New returns a scheduler; nothing runs before Start.
func New(opts Options) *Scheduler {
	if opts.MaxConcurrent <= 0 {
		opts.MaxConcurrent = DefaultMaxConcurrent
	}
	if opts.PerHostSpacing <= 0 {
		opts.PerHostSpacing = DefaultPerHostSpacing
	}
	if opts.UDPHostSpacing <= 0 {
		opts.UDPHostSpacing = DefaultUDPHostSpacing
	}
	if opts.RangeSample <= 0 {
		opts.RangeSample = DefaultRangeSample
	}
	if opts.StopTimeout <= 0 {
		opts.StopTimeout = DefaultStopTimeout
	}
	if opts.FirstRunSpread <= 0 {
		opts.FirstRunSpread = DefaultFirstRunSpread
	}
	if opts.Run == nil {
		opts.Run = probe.Run
	}
	if opts.Sink == nil {
		opts.Sink = func(*probe.Check, []probe.Result) {}
	}
	if opts.Started == nil {
		opts.Started = func(*probe.Check) {}
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Scheduler{
		opts:    opts,
		sem:     make(chan struct{}, opts.MaxConcurrent),
		pacer:   newPacer(),
		tracer:  newTracer(opts.Trace),
		logger:  logger,
		jobs:    map[string]*job{},
		byCheck: map[string]*job{},
		work:    make(chan *job),
		quit:    make(chan struct{}),
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

func intervalOf(c *probe.Check) time.Duration {
	if c.Interval <= 0 {
		return DefaultInterval
	}
	return c.Interval
}

// unit is one schedulable thing of a configuration: a single check or the
// members of a range group, in config order.
type unit struct {
	id      string
	members []*probe.Check
	ids     []string // the members' check IDs
}

// units groups checks into single checks and range groups (by
// probe.Check.GroupID), dropping repeated check IDs.
func (s *Scheduler) units(checks []*probe.Check) []*unit {
	seen := make(map[string]bool, len(checks))
	groups := map[string]*unit{}
	var out []*unit
	for _, c := range checks {
		id := c.ID()
		if seen[id] {
			s.logger.Warn("duplicate check ID ignored", "check", id)
			continue
		}
		seen[id] = true
		key := id // a single check is its own group: one string for both
		if c.Range != "" {
			key = c.GroupID()
		}
		g, ok := groups[key]
		if !ok {
			g = &unit{id: key}
			groups[key] = g
			out = append(out, g)
		}
		g.members = append(g.members, c)
		g.ids = append(g.ids, id)
	}
	return out
}

// sameSettings reports whether the job probes exactly the members of u,
// in the same order, with the same settings.
func (j *job) sameSettings(u *unit) bool {
	return slices.EqualFunc(j.members, u.members, (*probe.Check).SameSettings)
}

// Apply replaces the set of checks. A check (or range group) with the same
// ID and the same settings keeps its timer, overrun count, sample rotation
// and throttle state, so a reload that changes nothing does not restart a
// check that a server told to stop; removed checks stop, their probe in
// flight is cancelled; new or changed checks start at their offset from now.
func (s *Scheduler) Apply(checks []*probe.Check) {
	s.mu.Lock()
	defer s.mu.Unlock()
	units := s.units(checks)
	keep := make(map[string]bool, len(units))
	byCheck := map[string]*job{}
	var added, changed, unchanged int
	for _, u := range units {
		keep[u.id] = true
		j := s.jobs[u.id]
		switch {
		case j != nil && j.sameSettings(u):
			j.members = u.members // same settings; later runs report the current pointers
			unchanged++
		default:
			if j != nil {
				s.removeLocked(j)
				changed++
			} else {
				added++
			}
			j = &job{id: u.id, members: u.members, interval: intervalOf(u.members[0]), factor: 1}
			s.jobs[u.id] = j
			if s.ctx != nil && !s.stopped {
				s.armLocked(j, time.Now())
			}
		}
		if u.members[0].Range != "" {
			for _, id := range u.ids {
				byCheck[id] = j
			}
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
	s.byCheck = byCheck
	s.pacer.prune(time.Now())
	configured := make(map[probe.Key]bool, len(checks))
	for _, c := range checks {
		configured[c.Key()] = true
	}
	s.tracer.prune(configured)
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
	close(s.quit)
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
// unknown ID; restarts from zero when the check's settings change. The ports
// of a range group share the group's count.
func (s *Scheduler) Overruns(id string) uint64 {
	s.mu.Lock()
	j := s.jobLocked(id)
	s.mu.Unlock()
	if j == nil {
		return 0
	}
	return j.overruns.Load()
}

// jobLocked is the job that runs the check id; nil for an unknown ID (or
// a range group's ID, which names no check).
func (s *Scheduler) jobLocked(id string) *job {
	if j := s.jobs[id]; j != nil && j.members[0].Range == "" {
		return j
	}
	return s.byCheck[id]
}

// Throttled reports how a server's request to be probed less (an NTP
// kiss-o'-death) affects a check: factor is the current multiple of its
// interval (1 normally; 2 to MaxBackoff while backing off), stopped is true
// once the server asked to stop, until the check's settings change. The ports
// of a range group share the group's state. Zero and false for an unknown ID.
func (s *Scheduler) Throttled(id string) (factor int, stopped bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	j := s.jobLocked(id)
	if j == nil {
		return 0, false
	}
	return j.factor, j.halted
}

// armLocked schedules the first run of j soon, at its offset within the
// first-run spread; the regular schedule then continues at its offset within
// the interval, so checks stay spread over it.
func (s *Scheduler) armLocked(j *job, now time.Time) {
	j.first = true
	j.phase = now.Add(Offset(j.id, j.interval))
	j.next = now.Add(Offset(j.id, min(j.interval, s.opts.FirstRunSpread)))
	j.timer = time.AfterFunc(time.Until(j.next), func() { s.dispatch(j) })
}

// dispatch runs a due job on an idle worker, or on a new one when none is
// idle. Workers outlive their run so that their stacks, grown through a
// probe, serve the next run: a goroutine per run grew its stack anew every
// time (runtime.newstack was 4-7% of the agent's CPU per probe).
func (s *Scheduler) dispatch(j *job) {
	select {
	case s.work <- j:
	default:
		go s.worker(j)
	}
}

// worker fires j, then waits for the next due job. It ends when Stop is
// called, or instead of waiting when MaxConcurrent workers already wait (so
// a burst leaves no more idle goroutines than the cap of probes in flight).
func (s *Scheduler) worker(j *job) {
	for {
		s.fire(j)
		if s.idle.Add(1) > int32(s.opts.MaxConcurrent) {
			s.idle.Add(-1)
			return
		}
		select {
		case j = <-s.work:
			s.idle.Add(-1)
		case <-s.quit:
			s.idle.Add(-1)
			return
		}
	}
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

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// sampleLocked returns the members the next run probes and advances the
// rotation: a single check is its own sample; a range group yields the next
// n ports after the previous sample, wrapping, so every port is probed within
// ceil(len/n) runs and no port twice before all have been probed once.
func (j *job) sampleLocked(n int) []*probe.Check {
	if len(j.members) <= n {
		return j.members
	}
	out := make([]*probe.Check, 0, n)
	for i := range n {
		out = append(out, j.members[(j.cursor+i)%len(j.members)])
	}
	j.cursor = (j.cursor + n) % len(j.members)
	return out
}

// fire runs in the timer's goroutine. The timer is re-armed only after the
// run completes, so a check never overlaps itself.
func (s *Scheduler) fire(j *job) {
	s.mu.Lock()
	if s.stopped || j.removed || j.halted || s.ctx.Err() != nil {
		s.mu.Unlock()
		return
	}
	s.inflight.Add(1)
	ctx, cancel := context.WithCancel(s.ctx)
	defer cancel()
	j.cancel = cancel
	first, slot := j.first, j.next
	j.first = false
	var samples [][]*probe.Check
	if first {
		// Every member once, a sample after another: readiness needs a
		// result for every port, and at most a sample is in flight.
		for i := 0; i < len(j.members); i += s.opts.RangeSample {
			samples = append(samples, j.members[i:min(i+s.opts.RangeSample, len(j.members))])
		}
	} else {
		samples = [][]*probe.Check{j.sampleLocked(s.opts.RangeSample)}
	}
	s.mu.Unlock()
	defer s.inflight.Done()

	throttle := probe.ThrottleNone
	for _, sample := range samples {
		if ctx.Err() != nil || throttle == probe.ThrottleStop {
			break // a server that asked to stop gets no more of the sweep
		}
		throttle = max(throttle, s.runSample(ctx, sample))
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	j.cancel = nil // the run is over: cancelled by the deferred call
	if s.stopped || j.removed || ctx.Err() != nil {
		return
	}
	switch throttle {
	case probe.ThrottleStop:
		// The timer is simply not re-armed; the last results stay in the
		// store, so the metrics keep showing why.
		j.halted = true
		s.logger.Warn("server asked to stop probing; stopped until the configuration changes", "check", j.id)
		return
	case probe.ThrottleBackoff:
		j.factor = min(j.factor*2, MaxBackoff)
		s.logger.Info("server asked to back off", "check", j.id, "interval", j.interval*time.Duration(j.factor))
	default:
		j.factor = 1
	}
	period := j.interval * time.Duration(j.factor)
	now := time.Now()
	if first {
		// On to the regular schedule: its first slot after now (and, when
		// a server asked to back off, at least a period after this run's
		// slot). Slots that passed during the first run are no overrun.
		earliest := now
		if j.factor > 1 {
			earliest = later(now, slot.Add(period))
		}
		j.next = j.phase
		if j.next.Before(earliest) {
			j.next = j.next.Add((earliest.Sub(j.next)/period + 1) * period)
		}
		j.timer.Reset(time.Until(j.next))
		return
	}
	// Skip every slot that passed while this run was waiting or running.
	missed := uint64(0)
	if now.After(slot) {
		missed = uint64(now.Sub(slot) / period)
	}
	if missed > 0 {
		j.overruns.Add(missed)
		s.logger.Debug("check overran its interval", "check", j.id, "skipped", missed)
	}
	j.next = slot.Add(time.Duration(missed+1) * period)
	j.timer.Reset(time.Until(j.next))
}

// runSample probes each check of a sample (one job: one lane) and returns
// the strongest throttle any result asked for. Results of a run cancelled by
// a reload or by stopping say nothing about the destination and are dropped.
func (s *Scheduler) runSample(ctx context.Context, sample []*probe.Check) probe.Throttle {
	var (
		mu    sync.Mutex
		worst = probe.ThrottleNone
	)
	s.runLane(ctx, sample, func(c *probe.Check, rs []probe.Result) {
		if ctx.Err() != nil {
			return
		}
		s.finish(ctx, c, rs, false)
		mu.Lock()
		for _, r := range rs {
			worst = max(worst, r.Throttle)
		}
		mu.Unlock()
	})
	return worst
}

// RunOnce runs every check exactly once, for `probe check`: a port range is
// swept in full, one probe per port, with the same concurrency cap and
// pacing as the schedule. Each finished check's results go through finish
// (Options.Sink) as soon as it completes. Lanes (transport and host) proceed
// side by side; within a lane, checks start in the given order.
//
// When ctx ends, RunOnce stops starting probes and returns, in the given
// order, the checks that never ran, including those whose probe was cut
// short (unless every result was already up: that was observed).
//
// Each name is resolved once per run (probe.WithResolveOnce), so a name that
// does not resolve fails all its checks at the cost of one lookup, and those
// probes, having sent nothing, do not wait for pacing.
func (s *Scheduler) RunOnce(ctx context.Context, checks []*probe.Check) (notRun []*probe.Check) {
	ctx = probe.WithResolveOnce(ctx)
	var lanes [][]*probe.Check
	index := map[string]int{}
	for _, c := range checks {
		key := laneOf(c)
		i, ok := index[key]
		if !ok {
			i = len(lanes)
			index[key] = i
			lanes = append(lanes, nil)
		}
		lanes[i] = append(lanes[i], c)
	}
	var (
		mu     sync.Mutex
		missed = map[*probe.Check]bool{}
		wg     sync.WaitGroup
	)
	for _, l := range lanes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rest := s.runLane(ctx, l, func(c *probe.Check, rs []probe.Result) {
				if ctx.Err() != nil && !allUp(rs) {
					mu.Lock()
					missed[c] = true
					mu.Unlock()
					return
				}
				s.finish(ctx, c, rs, true)
			})
			mu.Lock()
			for _, c := range rest {
				missed[c] = true
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	for _, c := range checks {
		if missed[c] {
			notRun = append(notRun, c)
		}
	}
	return notRun
}

func allUp(rs []probe.Result) bool {
	for _, r := range rs {
		if !r.Up {
			return false
		}
	}
	return len(rs) > 0
}

// finish is the one step every completed run passes through, scheduled or
// run-once: policies that act on a run's results (the path trace of a
// failing check, for one) belong here so both modes share them. once says
// the run is RunOnce's: a trace then waits for a free trace slot.
func (s *Scheduler) finish(ctx context.Context, c *probe.Check, rs []probe.Result, once bool) {
	s.tracer.apply(ctx, c, rs, once)
	s.opts.Sink(c, rs)
}

// runLane starts the checks of one lane in order, each after the lane's
// pacing and then a probe slot, and lets them overlap (eight silent UDP ports
// take about eight seconds plus one timeout, not eight timeouts). done gets
// each probe's results, called while the probe still holds its slot. It
// returns when every started probe has finished, with the checks that ctx
// ended before they could start.
func (s *Scheduler) runLane(ctx context.Context, checks []*probe.Check, done func(*probe.Check, []probe.Result)) (notStarted []*probe.Check) {
	var wg sync.WaitGroup
	var step func(i int)
	// Each step books its start, hands the rest of the lane to a new
	// goroutine and then probes in its own, so no goroutine launch sits
	// between the recorded start and the real one.
	step = func(i int) {
		defer wg.Done()
		if i == len(checks) {
			return
		}
		c := checks[i]
		b, ok := s.pacer.acquire(ctx, laneOf(c), s.spacing(c), s.sem)
		if !ok {
			notStarted = checks[i:] // read only after wg.Wait
			return
		}
		defer func() { <-s.sem }()
		if i+1 < len(checks) { // a single check (the usual case) starts no goroutine
			wg.Add(1)
			go step(i + 1)
		}
		s.opts.Started(c)
		rs := s.opts.Run(ctx, c)
		if sentNothing(rs) {
			s.pacer.giveBack(b)
		}
		done(c, rs)
	}
	wg.Add(1)
	step(0)
	wg.Wait()
	return notStarted
}

// spacing is the pacing of c's transport.
func (s *Scheduler) spacing(c *probe.Check) time.Duration {
	if c.Network == probe.NetworkUDP {
		return s.opts.UDPHostSpacing
	}
	return s.opts.PerHostSpacing
}

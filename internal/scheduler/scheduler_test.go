package scheduler

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/connprobe/connprobe/probe"
)

// waitFor polls cond every few milliseconds until it holds or limit passes.
func waitFor(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", limit, what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func testCheck(name, host string, interval time.Duration) *probe.Check {
	return &probe.Check{Name: name, Kind: "tcp", Host: host, Port: 443, Network: "tcp", Interval: interval}
}

// recorder is a fake Run that counts runs per check and tracks concurrency.
type recorder struct {
	hold        time.Duration // how long each run blocks (or until ctx ends)
	mu          sync.Mutex
	runs        map[string]int
	running     map[string]int
	overlap     bool
	inFlight    int
	maxInFlight int
	starts      map[string][]time.Time // by host
}

func newRecorder(hold time.Duration) *recorder {
	return &recorder{hold: hold, runs: map[string]int{}, running: map[string]int{}, starts: map[string][]time.Time{}}
}

func (r *recorder) run(ctx context.Context, c *probe.Check) []probe.Result {
	id := c.ID()
	started := time.Now() // before the lock, which other runs contend for
	r.mu.Lock()
	r.running[id]++
	if r.running[id] > 1 {
		r.overlap = true
	}
	r.inFlight++
	r.maxInFlight = max(r.maxInFlight, r.inFlight)
	r.starts[c.Host] = append(r.starts[c.Host], started)
	r.mu.Unlock()

	t := time.NewTimer(r.hold)
	select {
	case <-t.C:
	case <-ctx.Done():
		t.Stop()
	}

	r.mu.Lock()
	r.running[id]--
	r.inFlight--
	r.runs[id]++
	r.mu.Unlock()
	return []probe.Result{{Check: c, Up: true, Reason: probe.ReasonOK, IPFamily: probe.FamilyIPv4}}
}

func (r *recorder) count(id string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.runs[id]
}

func (r *recorder) total() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, v := range r.runs {
		n += v
	}
	return n
}

func TestOffsetDeterministicAndWithinInterval(t *testing.T) {
	interval := 30 * time.Second
	distinct := map[time.Duration]bool{}
	for i := range 200 {
		id := fmt.Sprintf("profile/check-%d/tcp/host%d.example/443", i, i)
		o := Offset(id, interval)
		if o < 0 || o >= interval {
			t.Fatalf("offset %v of %q outside [0, %v)", o, id, interval)
		}
		if o2 := Offset(id, interval); o2 != o {
			t.Fatalf("offset of %q not deterministic: %v then %v", id, o, o2)
		}
		distinct[o] = true
	}
	if len(distinct) < 190 {
		t.Errorf("only %d distinct offsets for 200 checks: starts are not spread", len(distinct))
	}
	if Offset("x", 0) != 0 {
		t.Error("offset for a zero interval must be 0")
	}
}

func TestRunsRepeatedlyAndDeliversToSink(t *testing.T) {
	rec := newRecorder(0)
	var delivered atomic.Int64
	s := New(Options{Run: rec.run, Sink: func(*probe.Check, []probe.Result) { delivered.Add(1) }})
	c := testCheck("a", "192.0.2.1", 5*time.Millisecond)
	s.Apply([]*probe.Check{c})
	s.Start(context.Background())
	defer s.Stop()
	waitFor(t, 5*time.Second, "five runs", func() bool { return rec.count(c.ID()) >= 5 })
	waitFor(t, 5*time.Second, "five deliveries", func() bool { return delivered.Load() >= 5 })
}

func TestNoOverlapAndOverrunsCounted(t *testing.T) {
	// Each run blocks for ~10 intervals: slots are skipped, never doubled.
	rec := newRecorder(50 * time.Millisecond)
	s := New(Options{Run: rec.run, PerHostSpacing: time.Millisecond})
	c := testCheck("slow", "192.0.2.1", 5*time.Millisecond)
	s.Apply([]*probe.Check{c})
	s.Start(context.Background())
	waitFor(t, 5*time.Second, "three slow runs", func() bool { return rec.count(c.ID()) >= 3 })
	s.Stop()

	rec.mu.Lock()
	overlap := rec.overlap
	rec.mu.Unlock()
	if overlap {
		t.Error("a check ran twice concurrently")
	}
	if n := s.Overruns(c.ID()); n < 3 {
		t.Errorf("overruns = %d after three runs each longer than several intervals, want >= 3", n)
	}
	if s.Overruns("no/such/check") != 0 {
		t.Error("overruns of an unknown check must be 0")
	}
}

func TestConcurrencyCap(t *testing.T) {
	rec := newRecorder(20 * time.Millisecond)
	s := New(Options{Run: rec.run, MaxConcurrent: 2, PerHostSpacing: time.Millisecond})
	var checks []*probe.Check
	for i := range 10 {
		checks = append(checks, testCheck(fmt.Sprintf("c%d", i), fmt.Sprintf("192.0.2.%d", i+1), 5*time.Millisecond))
	}
	s.Apply(checks)
	s.Start(context.Background())
	waitFor(t, 10*time.Second, "thirty runs", func() bool { return rec.total() >= 30 })
	s.Stop()

	rec.mu.Lock()
	defer rec.mu.Unlock()
	if rec.maxInFlight > 2 {
		t.Errorf("%d probes in flight, cap is 2", rec.maxInFlight)
	}
	if rec.maxInFlight < 1 {
		t.Error("nothing ran")
	}
}

func TestPerHostSpacing(t *testing.T) {
	const spacing = 30 * time.Millisecond
	rec := newRecorder(0)
	s := New(Options{Run: rec.run, PerHostSpacing: spacing})
	// Four checks of one host, each wanting to run every 2ms.
	var checks []*probe.Check
	for i := range 4 {
		c := testCheck(fmt.Sprintf("p%d", i), "192.0.2.9", 2*time.Millisecond)
		c.Port = 1000 + i
		checks = append(checks, c)
	}
	s.Apply(checks)
	s.Start(context.Background())
	waitFor(t, 10*time.Second, "eight runs", func() bool { return rec.total() >= 8 })
	s.Stop()

	rec.mu.Lock()
	defer rec.mu.Unlock()
	starts := rec.starts["192.0.2.9"]
	assertPaced(t, "towards one host", starts, spacing)
}

// assertPaced fails when starts came faster than spacing allows. Booked
// starts are exactly spaced and timers never fire early, but a probe can be
// preempted between its booked start and the call to Run on a loaded
// machine, which can shorten any single gap to nearly nothing. So it bounds
// the span instead: n starts after the first need (n-1) spacings, and half of
// that still leaves room for a lot of preemption while unpaced starts (a few
// milliseconds apart) fail it.
func assertPaced(t *testing.T, what string, starts []time.Time, spacing time.Duration) {
	t.Helper()
	if len(starts) < 3 {
		t.Fatalf("%d starts %s, want at least 3", len(starts), what)
	}
	// From the second start: the first one's timing is the spread's, not the pacing's.
	span, gaps := starts[len(starts)-1].Sub(starts[1]), time.Duration(len(starts)-2)
	if want := gaps * spacing / 2; span < want {
		t.Errorf("%d starts %s within %v, want at least %v (spacing %v)", len(starts)-1, what, span, want, spacing)
	}
}

func TestApplyKeepsUnchangedStopsRemovedStartsNew(t *testing.T) {
	rec := newRecorder(0)
	s := New(Options{Run: rec.run, PerHostSpacing: time.Millisecond})
	keep := testCheck("keep", "192.0.2.1", 5*time.Millisecond)
	gone := testCheck("gone", "192.0.2.2", 5*time.Millisecond)
	changed := testCheck("changed", "192.0.2.3", 5*time.Millisecond)
	s.Apply([]*probe.Check{keep, gone, changed})
	s.Start(context.Background())
	defer s.Stop()
	waitFor(t, 5*time.Second, "every check to run", func() bool {
		return rec.count(keep.ID()) > 0 && rec.count(gone.ID()) > 0 && rec.count(changed.ID()) > 0
	})

	s.mu.Lock()
	keepJob, changedJob := s.jobs[keep.ID()], s.jobs[changed.ID()]
	s.mu.Unlock()

	// A reload parses the config again: new pointers, same settings for keep.
	keep2 := testCheck("keep", "192.0.2.1", 5*time.Millisecond)
	changed2 := testCheck("changed", "192.0.2.3", 5*time.Millisecond)
	changed2.Timeout = time.Second
	added := testCheck("added", "192.0.2.4", 5*time.Millisecond)
	s.Apply([]*probe.Check{keep2, changed2, added})

	s.mu.Lock()
	if s.jobs[keep.ID()] != keepJob {
		t.Error("an unchanged check was rescheduled")
	}
	if s.jobs[keep.ID()].members[0] != keep2 {
		t.Error("an unchanged check does not run with the current config's pointer")
	}
	if s.jobs[changed.ID()] == changedJob || !changedJob.removed {
		t.Error("a check with changed settings kept its old schedule")
	}
	if _, ok := s.jobs[gone.ID()]; ok {
		t.Error("a removed check is still scheduled")
	}
	s.mu.Unlock()

	waitFor(t, 5*time.Second, "the added check to run", func() bool { return rec.count(added.ID()) > 0 })
	// A run of the removed check may have been in flight during Apply; after
	// that, its count must not move while the others keep running.
	goneRuns := rec.count(gone.ID())
	keepRuns := rec.count(keep.ID())
	waitFor(t, 5*time.Second, "the kept check to run again", func() bool { return rec.count(keep.ID()) >= keepRuns+5 })
	if n := rec.count(gone.ID()); n > goneRuns {
		t.Errorf("removed check ran %d more times", n-goneRuns)
	}
}

func TestStopCancelsInFlightAndEndsGoroutines(t *testing.T) {
	before := runtime.NumGoroutine()
	rec := newRecorder(time.Hour) // blocks until its context is cancelled
	s := New(Options{Run: rec.run, PerHostSpacing: time.Millisecond, StopTimeout: 5 * time.Second})
	var checks []*probe.Check
	for i := range 5 {
		checks = append(checks, testCheck(fmt.Sprintf("s%d", i), fmt.Sprintf("192.0.2.%d", i+1), 5*time.Millisecond))
	}
	s.Apply(checks)
	s.Start(context.Background())
	waitFor(t, 5*time.Second, "probes in flight", func() bool {
		rec.mu.Lock()
		defer rec.mu.Unlock()
		return rec.inFlight >= 3
	})

	stopped := make(chan struct{})
	go func() { s.Stop(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(5 * time.Second):
		t.Fatal("Stop did not return")
	}
	rec.mu.Lock()
	inFlight := rec.inFlight
	rec.mu.Unlock()
	if inFlight != 0 {
		t.Errorf("%d runs still in flight after Stop", inFlight)
	}
	total := rec.total()
	time.Sleep(30 * time.Millisecond)
	if rec.total() != total {
		t.Error("checks ran after Stop")
	}
	s.Stop() // idempotent
	s.Apply(checks)
	waitFor(t, 5*time.Second, "goroutines to end", func() bool { return runtime.NumGoroutine() <= before })
}

func TestParentContextCancelStopsScheduling(t *testing.T) {
	rec := newRecorder(0)
	s := New(Options{Run: rec.run, PerHostSpacing: time.Millisecond})
	c := testCheck("a", "192.0.2.1", 2*time.Millisecond)
	s.Apply([]*probe.Check{c})
	ctx, cancel := context.WithCancel(context.Background())
	s.Start(ctx)
	waitFor(t, 5*time.Second, "a run", func() bool { return rec.count(c.ID()) > 0 })
	cancel()
	s.Stop()
	n := rec.count(c.ID())
	time.Sleep(20 * time.Millisecond)
	if rec.count(c.ID()) != n {
		t.Error("check ran after its context was cancelled")
	}
}

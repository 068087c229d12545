package scheduler

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/connprobe/connprobe/probe"
)

// throttler is a fake Run whose results carry a settable throttle request,
// as an NTP server's kiss-o'-death would.
type throttler struct {
	mode   atomic.Int32 // a probe.Throttle
	mu     sync.Mutex
	starts []time.Time
}

func (f *throttler) run(_ context.Context, c *probe.Check) []probe.Result {
	f.mu.Lock()
	f.starts = append(f.starts, time.Now())
	f.mu.Unlock()
	r := probe.Result{Check: c, IPFamily: probe.FamilyIPv4, Up: true, Reason: probe.ReasonOK,
		Throttle: probe.Throttle(f.mode.Load())}
	if r.Throttle != probe.ThrottleNone {
		r.Up, r.Reason = false, probe.ReasonProtocol
	}
	return []probe.Result{r}
}

func (f *throttler) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.starts)
}

func ntpCheck(interval time.Duration) *probe.Check {
	return &probe.Check{Name: "time", Kind: "ntp", Host: "192.0.2.123", Port: 123, Network: "udp", Interval: interval}
}

func TestBackoffDoublesUpToCapAndRecovers(t *testing.T) {
	// The bounds below hold with hundreds of milliseconds of timer lateness
	// (a loaded CI machine) and still fail without a backoff.
	const interval = 50 * time.Millisecond
	f := &throttler{}
	f.mode.Store(int32(probe.ThrottleBackoff))
	s := New(Options{Run: f.run, UDPHostSpacing: time.Millisecond})
	c := ntpCheck(interval)
	s.Apply([]*probe.Check{c})
	s.Start(context.Background())
	defer s.Stop()

	// Runs 1-4 ask to back off: the factor goes 2, 4, 8, 16 and stays capped.
	waitFor(t, 10*time.Second, "the backoff cap", func() bool { factor, _ := s.Throttled(c.ID()); return factor == MaxBackoff })
	f.mu.Lock()
	starts := append([]time.Time(nil), f.starts...)
	f.mu.Unlock()
	if len(starts) < 4 {
		t.Fatalf("%d runs before the cap, want at least 4", len(starts))
	}
	// Runs 2, 3 and 4 wait 2, 4 and 8 intervals after the slot of the one
	// before: 14 intervals in all, 3 without a backoff. A run's start can be
	// late by however long its timer fired late, so only half is asserted.
	if span, want := starts[3].Sub(starts[0]), 14*interval/2; span < want {
		t.Errorf("runs 1 to 4 took %v, want at least %v (%v without a backoff)", span, want, 3*interval)
	}
	// At 16 x 50ms a slot comes every 800ms: an 800ms window holds at most
	// two runs (a late one and the next on time); unthrottled it holds 16.
	n := f.count()
	time.Sleep(16 * interval)
	if got := f.count(); got > n+2 {
		t.Errorf("%d runs in %v at the backoff cap, want at most 2", got-n, 16*interval)
	}
	if _, stopped := s.Throttled(c.ID()); stopped {
		t.Error("a backoff request stopped the check")
	}

	// One normal reply restores the interval.
	f.mode.Store(int32(probe.ThrottleNone))
	waitFor(t, 10*time.Second, "the factor to reset", func() bool { factor, _ := s.Throttled(c.ID()); return factor == 1 })
	n = f.count()
	waitFor(t, 5*time.Second, "runs at the normal interval", func() bool { return f.count() >= n+5 })
}

func TestStopUntilTheConfigurationChanges(t *testing.T) {
	f := &throttler{}
	f.mode.Store(int32(probe.ThrottleStop))
	var delivered atomic.Int64
	s := New(Options{Run: f.run, UDPHostSpacing: time.Millisecond,
		Sink: func(*probe.Check, []probe.Result) { delivered.Add(1) }})
	c := ntpCheck(5 * time.Millisecond)
	s.Apply([]*probe.Check{c})
	s.Start(context.Background())
	defer s.Stop()

	waitFor(t, 5*time.Second, "the stop", func() bool { _, stopped := s.Throttled(c.ID()); return stopped })
	time.Sleep(60 * time.Millisecond)
	if n := f.count(); n != 1 {
		t.Errorf("%d runs after a stop request, want 1", n)
	}
	if delivered.Load() != 1 {
		t.Error("the result that asked to stop was not delivered (metrics must show why)")
	}

	// A reload with the same settings keeps it stopped.
	s.Apply([]*probe.Check{ntpCheck(5 * time.Millisecond)})
	time.Sleep(60 * time.Millisecond)
	if _, stopped := s.Throttled(c.ID()); !stopped || f.count() != 1 {
		t.Errorf("an unchanged reload restarted a stopped check (runs %d, stopped %v)", f.count(), stopped)
	}

	// Changed settings start it again, with a clean throttle state.
	f.mode.Store(int32(probe.ThrottleNone))
	changed := ntpCheck(5 * time.Millisecond)
	changed.Timeout = time.Second
	s.Apply([]*probe.Check{changed})
	waitFor(t, 5*time.Second, "runs after the change", func() bool { return f.count() >= 4 })
	if factor, stopped := s.Throttled(c.ID()); factor != 1 || stopped {
		t.Errorf("Throttled = %d, %v after a changed reload, want 1, false", factor, stopped)
	}
	if factor, stopped := s.Throttled("no/such/check"); factor != 0 || stopped {
		t.Error("an unknown check must report 0, false")
	}
}

func rangeChecks(n int, host, proto string, interval time.Duration) []*probe.Check {
	var out []*probe.Check
	for i := range n {
		out = append(out, &probe.Check{Name: "media", Kind: "udp", Host: host, Port: 10000 + i,
			Network: proto, Interval: interval, Range: fmt.Sprintf("10000-%d", 10000+n-1)})
	}
	return out
}

func TestSampleRotationCoversEveryPort(t *testing.T) {
	j := &job{members: rangeChecks(100, "h", "udp", time.Minute)}
	seen := map[int]int{}
	for cycle := range 13 { // ceil(100/8)
		sample := j.sampleLocked(8)
		if len(sample) != 8 {
			t.Fatalf("cycle %d probes %d ports, want 8", cycle, len(sample))
		}
		for _, c := range sample {
			seen[c.Port]++
		}
	}
	if len(seen) != 100 {
		t.Errorf("13 cycles covered %d of 100 ports", len(seen))
	}
	for port, n := range seen {
		if n > 1 && port >= 10004 {
			t.Errorf("port %d probed %d times in one sweep", port, n)
		}
	}
	small := &job{members: rangeChecks(3, "h", "udp", time.Minute)}
	if got := len(small.sampleLocked(8)); got != 3 {
		t.Errorf("a 3-port range probes %d ports per cycle", got)
	}
}

func TestRangeGroupIsOneJobProbingASamplePerInterval(t *testing.T) {
	var (
		mu          sync.Mutex
		ports       []int
		inFlight    int
		maxInFlight int
	)
	run := func(_ context.Context, c *probe.Check) []probe.Result {
		mu.Lock()
		ports = append(ports, c.Port)
		inFlight++
		maxInFlight = max(maxInFlight, inFlight)
		mu.Unlock()
		time.Sleep(time.Millisecond)
		mu.Lock()
		inFlight--
		mu.Unlock()
		return []probe.Result{{Check: c, IPFamily: probe.FamilyIPv4, Reason: probe.ReasonRefused}}
	}
	var delivered sync.Map
	s := New(Options{Run: run, PerHostSpacing: time.Millisecond, UDPHostSpacing: time.Millisecond,
		Sink: func(c *probe.Check, _ []probe.Result) { delivered.Store(c.ID(), true) }})
	checks := rangeChecks(100, "192.0.2.77", "udp", 5*time.Millisecond)
	single := testCheck("single", "192.0.2.77", time.Hour)
	s.Apply(append(checks, single))
	s.mu.Lock()
	if n := len(s.jobs); n != 2 {
		t.Errorf("%d jobs for one range group and one check, want 2", n)
	}
	s.mu.Unlock()
	s.Start(context.Background())
	waitFor(t, 10*time.Second, "104 range probes", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(ports) >= 104
	})
	s.Stop()

	mu.Lock()
	defer mu.Unlock()
	// Samples run one after the other, so the first 100 probes are one full
	// sweep: every port once.
	first := map[int]bool{}
	for _, p := range ports[:100] {
		first[p] = true
	}
	if len(first) != 100 {
		t.Errorf("the first 100 probes covered %d distinct ports, want all 100", len(first))
	}
	if maxInFlight > DefaultRangeSample {
		t.Errorf("%d probes of one range in flight, want at most the sample of %d", maxInFlight, DefaultRangeSample)
	}
	for _, c := range checks {
		if _, ok := delivered.Load(c.ID()); !ok {
			t.Errorf("no results delivered for port %d", c.Port)
			break
		}
	}
	if factor, _ := s.Throttled(checks[42].ID()); factor != 1 {
		t.Errorf("a range member's throttle factor = %d, want the group's 1", factor)
	}
}

func TestUDPStartsToOneHostPacedSeparatelyFromTCP(t *testing.T) {
	if got := New(Options{}).opts.UDPHostSpacing; got != time.Second {
		t.Errorf("default UDP spacing %v, want 1s (the ICMP error rate limit)", got)
	}
	const spacing = 60 * time.Millisecond
	rec := newRecorder(0)
	s := New(Options{Run: rec.run, PerHostSpacing: time.Millisecond, UDPHostSpacing: spacing})
	var checks []*probe.Check
	for i := range 3 {
		c := testCheck(fmt.Sprintf("u%d", i), "192.0.2.8", 2*time.Millisecond)
		c.Kind, c.Network, c.Port = "udp", "udp", 5000+i
		checks = append(checks, c)
	}
	tcp := testCheck("t", "192.0.2.8", 2*time.Millisecond)
	s.Apply(append(checks, tcp))

	var mu sync.Mutex
	var udpStarts []time.Time
	s.opts.Run = func(ctx context.Context, c *probe.Check) []probe.Result {
		if c.Network == "udp" {
			started := time.Now()
			mu.Lock()
			udpStarts = append(udpStarts, started)
			mu.Unlock()
		}
		return rec.run(ctx, c)
	}
	s.Start(context.Background())
	waitFor(t, 10*time.Second, "six UDP probes", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(udpStarts) >= 6
	})
	s.Stop()

	mu.Lock()
	defer mu.Unlock()
	assertPaced(t, "of UDP to one host", udpStarts, spacing)
	// Six UDP probes took >= 300ms; the TCP check, on its own lane at 2ms,
	// ran far more often than the UDP pacing would allow it.
	if n := rec.count(tcp.ID()); n < 10 {
		t.Errorf("the TCP check ran %d times: it was held back by the UDP pacing", n)
	}
}

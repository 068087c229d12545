package scheduler

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/connprobe/connprobe/probe"
)

// starts records each run's start by check ID.
type starts struct {
	mu sync.Mutex
	at map[string][]time.Time
}

func (s *starts) run(_ context.Context, c *probe.Check) []probe.Result {
	s.mu.Lock()
	s.at[c.ID()] = append(s.at[c.ID()], time.Now())
	s.mu.Unlock()
	return []probe.Result{{Check: c, Up: true, Reason: probe.ReasonOK, IPFamily: probe.FamilyIPv4}}
}

func (s *starts) get(id string) []time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Time(nil), s.at[id]...)
}

// Checks of a long interval run once within the first-run spread after
// start, a range group sweeps every port in that first run, and then each
// check continues at its regular offset within its interval.
func TestFirstRunsSoonThenOnSchedule(t *testing.T) {
	const spread = 300 * time.Millisecond
	rec := &starts{at: map[string][]time.Time{}}
	s := New(Options{Run: rec.run, FirstRunSpread: spread, PerHostSpacing: time.Millisecond, UDPHostSpacing: time.Millisecond})
	var hourly []*probe.Check
	for i := range 10 {
		hourly = append(hourly, testCheck(fmt.Sprintf("h%d", i), fmt.Sprintf("192.0.2.%d", 100+i), time.Hour))
	}
	rng := rangeChecks(20, "192.0.2.120", "udp", time.Hour) // more than a sample of 8
	// Two-second checks: their second run is at their regular offset.
	var short []*probe.Check
	for i := range 6 {
		short = append(short, testCheck(fmt.Sprintf("s%d", i), fmt.Sprintf("192.0.2.%d", 130+i), 2*time.Second))
	}
	all := append(append(append([]*probe.Check{}, hourly...), rng...), short...)
	s.Apply(all)
	armed := time.Now()
	s.Start(context.Background())
	defer s.Stop()

	// Every check (every port of the range included) runs within the spread
	// and a margin for a loaded machine, not within the hour.
	waitFor(t, spread+3*time.Second, "every check's first run", func() bool {
		for _, c := range all {
			if len(rec.get(c.ID())) == 0 {
				return false
			}
		}
		return true
	})
	for _, c := range hourly {
		first := rec.get(c.ID())[0]
		if want := armed.Add(Offset(c.ID(), spread)); first.Before(want) {
			t.Errorf("%s ran at %v, before its offset %v in the spread", c.Name, first.Sub(armed), want.Sub(armed))
		}
	}

	// The two-second checks run again at armed+Offset(id, 2s) (+2s when that
	// came before their first run); the hourly ones and the range not again.
	time.Sleep(5 * time.Second)
	for _, c := range short {
		runs := rec.get(c.ID())
		if len(runs) < 2 {
			t.Errorf("%s ran %d times in 5s at a 2s interval", c.Name, len(runs))
			continue
		}
		want := armed.Add(Offset(c.ID(), 2*time.Second))
		if !want.After(runs[0]) {
			want = want.Add(2 * time.Second)
		}
		// Timers never fire early; allow a loaded machine (CI shares two
		// cores) a second late, half the interval: a second run timed from
		// the first instead of the offset still misses that window for most
		// of the six checks.
		if d := runs[1].Sub(want); d < 0 || d > time.Second {
			t.Errorf("%s: second run %v after its regular slot, want within [0, 1s]", c.Name, d)
		}
	}
	for _, c := range append(hourly, rng...) {
		if n := len(rec.get(c.ID())); n != 1 {
			t.Errorf("%s port %d ran %d times, want once in the first seconds of an hourly interval", c.Name, c.Port, n)
		}
	}
}

// A check added by a reload also runs soon, not at its offset in the hour.
func TestCheckAddedByReloadRunsSoon(t *testing.T) {
	rec := &starts{at: map[string][]time.Time{}}
	s := New(Options{Run: rec.run, FirstRunSpread: 200 * time.Millisecond})
	a := testCheck("a", "192.0.2.140", time.Hour)
	s.Apply([]*probe.Check{a})
	s.Start(context.Background())
	defer s.Stop()
	waitFor(t, 5*time.Second, "the first check", func() bool { return len(rec.get(a.ID())) == 1 })
	b := testCheck("b", "192.0.2.141", time.Hour)
	s.Apply([]*probe.Check{a, b})
	waitFor(t, 5*time.Second, "the added check", func() bool { return len(rec.get(b.ID())) == 1 })
	if n := len(rec.get(a.ID())); n != 1 {
		t.Errorf("the unchanged check ran %d times: a reload restarted it", n)
	}
}

// A server that asks to stop during a range's first sweep gets no more of it.
func TestFirstSweepStopsWhenAServerAsksTo(t *testing.T) {
	f := &throttler{}
	f.mode.Store(int32(probe.ThrottleStop))
	s := New(Options{Run: f.run, FirstRunSpread: 50 * time.Millisecond, UDPHostSpacing: time.Millisecond, RangeSample: 4})
	checks := rangeChecks(20, "192.0.2.150", "udp", time.Hour)
	s.Apply(checks)
	s.Start(context.Background())
	defer s.Stop()
	waitFor(t, 5*time.Second, "the group to stop", func() bool { _, stopped := s.Throttled(checks[0].ID()); return stopped })
	time.Sleep(200 * time.Millisecond)
	if n := f.count(); n != 4 {
		t.Errorf("%d probes after the first sample of 4 asked to stop, want 4", n)
	}
}

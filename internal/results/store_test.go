package results

import (
	"sync"
	"testing"

	"github.com/connprobe/connprobe/probe"
)

func check(name string) *probe.Check {
	return &probe.Check{Name: name, Kind: "tcp", Host: "192.0.2.1", Port: 443, Protocol: "tcp"}
}

func TestStoreKeepsConfigOrderAndPendingChecks(t *testing.T) {
	s := New()
	a, b, c := check("a"), check("b"), check("c")
	s.SetChecks([]*probe.Check{c, a, b})
	if s.Ready() {
		t.Fatal("ready before any check ran")
	}
	s.Put(a, []probe.Result{{Check: a, Up: true, Reason: probe.ReasonOK, IPFamily: probe.FamilyIPv4}})

	snap := s.Snapshot()
	if len(snap) != 3 {
		t.Fatalf("snapshot has %d entries, want 3", len(snap))
	}
	for i, want := range []string{"c", "a", "b"} {
		if snap[i].Check.Name != want {
			t.Errorf("entry %d is %q, want %q", i, snap[i].Check.Name, want)
		}
	}
	if snap[0].Results != nil || snap[0].Ran() {
		t.Errorf("check c has not run but has results %v", snap[0].Results)
	}
	if len(snap[1].Results) != 1 || !snap[1].Results[0].Up || !snap[1].Ran() {
		t.Errorf("check a results = %+v", snap[1])
	}

	s.Put(b, nil)
	s.Put(c, []probe.Result{{Check: c, Reason: probe.ReasonTimeout}})
	if !s.Ready() {
		t.Error("not ready after every check ran once")
	}
}

func TestSetChecksKeepsRemainingAndDropsRemoved(t *testing.T) {
	s := New()
	a, b := check("a"), check("b")
	s.SetChecks([]*probe.Check{a, b})
	s.Put(a, []probe.Result{{Check: a, Up: true, Reason: probe.ReasonOK}})
	s.Put(b, []probe.Result{{Check: b, Reason: probe.ReasonRefused}})

	// Reload: a new pointer with the same ID keeps its results, b goes.
	a2, d := check("a"), check("d")
	s.SetChecks([]*probe.Check{d, a2})
	snap := s.Snapshot()
	if len(snap) != 2 || snap[0].Check != d || snap[1].Check != a2 {
		t.Fatalf("snapshot after reload = %+v", snap)
	}
	if len(snap[1].Results) != 1 || !snap[1].Results[0].Up {
		t.Errorf("results of a kept check were lost: %+v", snap[1])
	}
	// A late result of the removed check must not bring it back.
	s.Put(b, []probe.Result{{Check: b, Up: true}})
	if n := s.Len(); n != 2 {
		t.Errorf("store has %d checks after late put of removed check, want 2", n)
	}
}

func TestPutCopiesResults(t *testing.T) {
	s := New()
	a := check("a")
	s.SetChecks([]*probe.Check{a})
	rs := []probe.Result{{Check: a, Up: true, Reason: probe.ReasonOK}}
	s.Put(a, rs)
	rs[0].Up = false
	if !s.Snapshot()[0].Results[0].Up {
		t.Error("store shares the caller's slice")
	}
}

func TestConcurrentUse(t *testing.T) {
	s := New()
	checks := []*probe.Check{check("a"), check("b"), check("c")}
	s.SetChecks(checks)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 200 {
				c := checks[(i+j)%len(checks)]
				s.Put(c, []probe.Result{{Check: c, Up: j%2 == 0}})
				_ = s.Snapshot()
				_ = s.Ready()
				if j%50 == 0 {
					s.SetChecks(checks)
				}
			}
		}()
	}
	wg.Wait()
	if !s.Ready() {
		t.Error("not ready after concurrent puts")
	}
}

package results

import (
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/connprobe/connprobe/probe"
)

func check(name string) *probe.Check {
	return &probe.Check{Name: name, Kind: "tcp", Host: "192.0.2.1", Port: 443, Network: "tcp"}
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

// clock is a fake time source that moves one second per call.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { c.t = c.t.Add(time.Second); return c.t }

func TestSinceMovesOnlyOnStateChange(t *testing.T) {
	clk := &clock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	s := NewWithClock(clk.now)
	a := check("a")
	s.SetChecks([]*probe.Check{a})
	if e := s.Snapshot()[0]; !e.Since.IsZero() || e.History.Len() != 0 {
		t.Fatalf("a check that never ran has since %v, history %v", e.Since, e.History)
	}
	ok := []probe.Result{{Check: a, Up: true, Reason: probe.ReasonOK, IPFamily: probe.FamilyIPv4}}
	refused := []probe.Result{ok[0], {Check: a, Reason: probe.ReasonRefused, IPFamily: probe.FamilyIPv6}}
	timeout := []probe.Result{{Check: a, Reason: probe.ReasonTimeout}}

	steps := []struct {
		rs        []probe.Result
		sinceStep int // index of the step whose time Since must be
		up        bool
		reason    probe.Reason
	}{
		{ok, 0, true, probe.ReasonOK},
		{ok, 0, true, probe.ReasonOK},
		{refused, 2, false, probe.ReasonRefused}, // one family down: the check is down
		{refused, 2, false, probe.ReasonRefused},
		{timeout, 4, false, probe.ReasonTimeout}, // another reason is another state
		{ok, 5, true, probe.ReasonOK},
		{nil, 6, false, probe.ReasonInternalError}, // no results is never ok
	}
	var times []time.Time
	for i, st := range steps {
		s.Put(a, st.rs)
		e := s.Snapshot()[0]
		times = append(times, e.Updated)
		if !e.Since.Equal(times[st.sinceStep]) {
			t.Errorf("step %d: since %v, want %v", i, e.Since, times[st.sinceStep])
		}
		o, ran := e.Outcome()
		if !ran || o.Up != st.up || o.Reason != st.reason || !o.At.Equal(e.Updated) {
			t.Errorf("step %d: outcome %+v (ran %v), want up %v reason %s at %v", i, o, ran, st.up, st.reason, e.Updated)
		}
	}
	// A reload keeps the state and its history.
	before := s.Snapshot()[0]
	s.SetChecks([]*probe.Check{check("a")})
	after := s.Snapshot()[0]
	if !after.Since.Equal(before.Since) || *after.History != *before.History {
		t.Errorf("reload lost the state: since %v -> %v, history %d -> %d",
			before.Since, after.Since, before.History.Len(), after.History.Len())
	}
}

func TestHistoryIsBoundedAndSnapshotsStable(t *testing.T) {
	s := New()
	a := check("a")
	s.SetChecks([]*probe.Check{a})
	var early []Outcome
	for i := range 3 * HistoryLen {
		s.Put(a, []probe.Result{{Check: a, Up: i%3 == 0, Reason: map[bool]probe.Reason{true: probe.ReasonOK, false: probe.ReasonNoReply}[i%3 == 0]}})
		if i == 4 {
			early = s.Snapshot()[0].History.Outcomes()
		}
	}
	h := s.Snapshot()[0].History.Outcomes()
	if len(h) != HistoryLen {
		t.Fatalf("history holds %d outcomes, want %d", len(h), HistoryLen)
	}
	// Oldest first: the last outcome is run 3*HistoryLen-1, which is down
	// (3*HistoryLen-1 is not a multiple of 3).
	for i, o := range h {
		run := 2*HistoryLen + i
		if o.Up != (run%3 == 0) {
			t.Errorf("history[%d] up=%v, want the outcome of run %d", i, o.Up, run)
		}
		if i > 0 && o.At.Before(h[i-1].At) {
			t.Errorf("history not in time order at %d", i)
		}
	}
	// A snapshot taken earlier is never modified by later puts.
	if len(early) != 5 || !early[0].Up || early[1].Up || early[3].Up != true {
		t.Errorf("an earlier snapshot's history changed: %+v", early)
	}
}

func TestHistoryRingRoundTripsEveryReason(t *testing.T) {
	var h History
	base := time.Date(2026, 12, 5, 14, 0, 0, 123456789, time.UTC)
	reasons := append(probe.Reasons(), probe.ReasonOK, probe.ReasonTimeout, probe.ReasonTLSExpired)
	for i, r := range reasons {
		h.add(Outcome{At: base.Add(time.Duration(i) * time.Second), Up: r == probe.ReasonOK, Reason: r})
	}
	if h.Len() != HistoryLen {
		t.Fatalf("len %d, want %d", h.Len(), HistoryLen)
	}
	kept := reasons[len(reasons)-HistoryLen:]
	for i, o := range h.Outcomes() {
		j := len(reasons) - HistoryLen + i
		if o.Reason != kept[i] || o.Up != (kept[i] == probe.ReasonOK) || !o.At.Equal(base.Add(time.Duration(j)*time.Second)) {
			t.Errorf("outcome %d: %+v, want reason %s at +%ds", i, o, kept[i], j)
		}
	}
	// An unknown reason is read back as an internal error, never as ok.
	h.add(Outcome{At: base, Up: false, Reason: "made_up"})
	if o, _ := h.Last(); o.Reason != probe.ReasonInternalError {
		t.Errorf("unknown reason read back as %q", o.Reason)
	}
}

// BenchmarkPut is one run stored, with a full history: the history costs
// no allocation.
func BenchmarkPut(b *testing.B) {
	s := New()
	a := check("a")
	s.SetChecks([]*probe.Check{a})
	rs := []probe.Result{{Check: a, Up: true, Reason: probe.ReasonOK}}
	for range HistoryLen {
		s.Put(a, rs)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		s.Put(a, rs)
	}
}

func TestLatestLeavesOutHistoryOnly(t *testing.T) {
	s := New()
	a := check("a")
	s.SetChecks([]*probe.Check{a, check("b")})
	s.Put(a, []probe.Result{{Check: a, Reason: probe.ReasonTimeout}})
	s.Put(a, []probe.Result{{Check: a, Up: true, Reason: probe.ReasonOK}})
	full, latest := s.Snapshot(), s.Latest()
	if len(latest) != 2 || latest[0].Check != a || latest[1].Ran() {
		t.Fatalf("latest: %+v", latest)
	}
	if latest[0].History != nil || full[0].History.Len() != 2 || full[1].History != nil {
		t.Errorf("history: latest %v, snapshot %d and %v", latest[0].History, full[0].History.Len(), full[1].History)
	}
	o, ran := latest[0].Outcome()
	if fo, _ := full[0].Outcome(); !ran || o != fo || !o.Up || o.Reason != probe.ReasonOK {
		t.Errorf("latest outcome %+v (ran %v), snapshot's %+v", o, ran, fo)
	}
	if latest[0].History.Outcomes() != nil {
		t.Error("a nil history has outcomes")
	}
	// A snapshot's history is a copy: later runs leave it alone.
	s.Put(a, []probe.Result{{Check: a, Reason: probe.ReasonRefused}})
	if full[0].History.Len() != 2 {
		t.Errorf("a snapshot's history grew to %d", full[0].History.Len())
	}
	if prev, _ := s.Put(a, nil); prev.History != nil {
		t.Error("Put's previous entry shares the store's history")
	}
}

// TestEachResult: every result of the last runs, in config order, checks
// that have not run contributing none.
func TestEachResult(t *testing.T) {
	s := New()
	a, b, c := check("a"), check("b"), check("c")
	s.SetChecks([]*probe.Check{a, b, c})
	s.Put(c, []probe.Result{{Check: c, IPFamily: probe.FamilyIPv4}, {Check: c, IPFamily: probe.FamilyIPv6}})
	s.Put(a, []probe.Result{{Check: a, Reason: probe.ReasonTimeout}})
	s.Put(a, []probe.Result{{Check: a, Up: true, Reason: probe.ReasonOK}})
	var got []string
	s.EachResult(func(r *probe.Result) { got = append(got, r.Check.Name+"/"+string(r.Reason)+r.IPFamily) })
	want := []string{"a/ok", "c/" + probe.FamilyIPv4, "c/" + probe.FamilyIPv6}
	if !slices.Equal(got, want) {
		t.Errorf("EachResult: %q, want %q", got, want)
	}
}

// TestLatestInto: the entries Latest returns, in a buffer that is reused
// when it is large enough and replaced when it is not.
func TestLatestInto(t *testing.T) {
	s := New()
	a, b, c := check("a"), check("b"), check("c")
	s.SetChecks([]*probe.Check{a, b})
	s.Put(a, []probe.Result{{Check: a, Up: true, Reason: probe.ReasonOK}})
	small := make([]Entry, 1)
	got := s.LatestInto(small)
	if len(got) != 2 || got[0].Check != a || got[1].Check != b || got[0].History != nil || !got[0].Ran() || got[1].Ran() {
		t.Fatalf("LatestInto: %+v", got)
	}
	if &got[0] == &small[0] {
		t.Error("two entries written into an array of one")
	}
	buf := got
	s.Put(b, []probe.Result{{Check: b, Reason: probe.ReasonRefused}})
	again := s.LatestInto(buf)
	if &again[0] != &buf[0] {
		t.Error("a large enough buffer was not reused")
	}
	if len(again) != 2 || !again[1].Ran() || again[1].Results[0].Reason != probe.ReasonRefused {
		t.Errorf("second read: %+v", again)
	}
	// Fewer checks than the buffer holds: only they are returned.
	s.SetChecks([]*probe.Check{c})
	if third := s.LatestInto(again); len(third) != 1 || third[0].Check != c || &third[0] != &again[0] {
		t.Errorf("after a reload to one check: %+v", third)
	}
}

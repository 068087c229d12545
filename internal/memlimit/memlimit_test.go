package memlimit

import (
	"errors"
	"math"
	"runtime"
	"runtime/debug"
	"testing"
	"time"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Setting
		str  string
	}{
		{"auto", Setting{Mode: Auto}, "auto"},
		{"", Setting{Mode: Auto}, "auto"},
		{"off", Setting{Mode: Off}, "off"},
		{"64MiB", Setting{Mode: Fixed, Bytes: 64 << 20}, "64MiB"},
		{"1GiB", Setting{Mode: Fixed, Bytes: 1 << 30}, "1GiB"},
		{"2048KiB", Setting{Mode: Fixed, Bytes: 2 << 20}, "2MiB"},
		{"1500000", Setting{Mode: Fixed, Bytes: 1500000}, "1500000B"},
		{"3000000B", Setting{Mode: Fixed, Bytes: 3000000}, "3000000B"},
	} {
		got, err := Parse(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("Parse(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
			continue
		}
		if got.String() != tc.str {
			t.Errorf("Parse(%q).String() = %q, want %q", tc.in, got.String(), tc.str)
		}
	}
	for _, bad := range []string{"on", "64M", "64 MiB", "-1", "1KiB", "0", "99999999999TiB", "1.5GiB"} {
		if s, err := Parse(bad); err == nil {
			t.Errorf("Parse(%q) = %+v, want an error", bad, s)
		}
	}
}

// Up to SmallHeap the room between collections is at least what GOGC=100
// gives (the live heap, at least Go's 4 MiB minimum heap), so the limit does
// not bind; above, a quarter of the live heap, plus Headroom throughout.
func TestLimit(t *testing.T) {
	const mib = 1 << 20
	for _, tc := range []struct {
		live, nonHeap uint64
		want          int64
	}{
		{0, 5 * mib, 5*mib + 4*mib + Headroom},
		{1 * mib, 5 * mib, 5*mib + 4*mib + Headroom},
		{6 * mib, 5 * mib, 5*mib + 12*mib + Headroom},
		{16 * mib, 5 * mib, 5*mib + 24*mib + Headroom},
		{40 * mib, 7 * mib, 7*mib + 50*mib + Headroom},
	} {
		if got := Limit(tc.live, tc.nonHeap); got != tc.want {
			t.Errorf("Limit(%d MiB live, %d MiB other) = %.1f MiB, want %.1f MiB", tc.live/mib, tc.nonHeap/mib,
				float64(got)/mib, float64(tc.want)/mib)
		}
		if gogc := int64(tc.nonHeap + max(2*tc.live, 4*mib)); tc.live <= SmallHeap && Limit(tc.live, tc.nonHeap) < gogc+Headroom {
			t.Errorf("%d MiB live: the limit is below GOGC=100's goal plus Headroom", tc.live/mib)
		}
	}
}

// A GOGC or GOMEMLIMIT in the environment wins over the flag, whatever it says.
func TestEnvironmentWins(t *testing.T) {
	before := debug.SetMemoryLimit(-1)
	for _, env := range []string{"GOGC", "GOMEMLIMIT"} {
		for _, s := range []Setting{{Mode: Auto}, {Mode: Fixed, Bytes: 32 << 20}} {
			getenv := func(k string) string {
				if k == env {
					return "50"
				}
				return ""
			}
			p, err := Apply(s, getenv)
			if !errors.Is(err, ErrEnvironment) || p != nil {
				t.Errorf("%s set, %v: Apply = %v, %v; want ErrEnvironment", env, s, p, err)
			}
			p.Stop() // nil: nothing to undo
			if got := debug.SetMemoryLimit(-1); got != before {
				t.Errorf("%s set, %v: limit changed to %d", env, s, got)
			}
		}
	}
}

func TestFixedAndOff(t *testing.T) {
	var limit int64 = math.MaxInt64
	set := func(n int64) int64 {
		old := limit
		if n >= 0 {
			limit = n
		}
		return old
	}
	p := apply(Setting{Mode: Fixed, Bytes: 48 << 20}, set)
	if limit != 48<<20 || p.Current() != 48<<20 {
		t.Errorf("fixed: limit %d, Current %d; want %d", limit, p.Current(), 48<<20)
	}
	p.Stop()
	if limit != math.MaxInt64 {
		t.Errorf("after Stop: limit %d, want the previous (none)", limit)
	}
	p = apply(Setting{Mode: Off}, set)
	if limit != math.MaxInt64 || p.Current() != 0 {
		t.Errorf("off: limit %d, Current %d; want no limit", limit, p.Current())
	}
	p.Stop()
}

// The automatic limit follows the live heap after each collection, up and
// down, never below it, and Stop restores the limit in force before.
func TestAutoFollowsLiveHeap(t *testing.T) {
	before := debug.SetMemoryLimit(-1)
	p := apply(Setting{Mode: Auto}, debug.SetMemoryLimit)
	defer p.Stop()

	const big = 64 << 20
	ballast := make([]*[1 << 16]byte, big>>16) // pointers, so it is scanned as a real heap would be
	for i := range ballast {
		ballast[i] = new([1 << 16]byte)
	}
	waitLimit(t, p, "with 64 MiB more live heap", func(l int64) bool { return l >= big*Factor+Headroom })
	if got := debug.SetMemoryLimit(-1); got != p.Current() {
		t.Errorf("runtime limit %d, policy says %d", got, p.Current())
	}
	runtime.KeepAlive(ballast)
	ballast = nil
	waitLimit(t, p, "after the 64 MiB are freed", func(l int64) bool { return l < big })

	p.Stop()
	if got := debug.SetMemoryLimit(-1); got != before {
		t.Errorf("after Stop: limit %d, want %d", got, before)
	}
	// Stopped: a collection no longer moves the limit.
	runtime.GC()
	time.Sleep(50 * time.Millisecond)
	if got := debug.SetMemoryLimit(-1); got != before {
		t.Errorf("a collection after Stop set the limit to %d", got)
	}
}

// waitLimit collects until the policy's limit satisfies ok (the cleanup that
// updates it runs shortly after a collection), at most 5 s.
func waitLimit(t *testing.T, p *Policy, what string, ok func(int64) bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !ok(p.Current()) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: limit %d MiB", what, p.Current()>>20)
		}
		runtime.GC()
		time.Sleep(20 * time.Millisecond)
	}
}

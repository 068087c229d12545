package memlimit

import (
	"errors"
	"math"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"
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

// The bad case: a limit set by hand below the live heap. Go's GC CPU limiter
// caps collection at about half of the CPU, so the process keeps working
// instead of collecting back to back: measured here with a live heap four
// times the limit and a steady stream of garbage.
func TestLimitBelowLiveHeapStaysBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("allocates for 2 s")
	}
	const live = 64 << 20
	// Small objects full of pointers: a heap that costs the collector real
	// marking work, as the agent's per-check state does.
	ballast := make([]*cell, live/unsafe.Sizeof(cell{}))
	for i := range ballast {
		ballast[i] = &cell{}
		if i > 0 {
			ballast[i].a = ballast[i-1]
		}
	}
	p := apply(Setting{Mode: Fixed, Bytes: live / 4}, debug.SetMemoryLimit)
	defer p.Stop()

	gc0, all0, cycles0 := gcStats()
	var wg sync.WaitGroup
	var allocated atomic.Int64
	for range runtime.GOMAXPROCS(0) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var window [64]*node // a little garbage stays live a while, as probe state does
			for i, begin := 0, time.Now(); time.Since(begin) < 2*time.Second; i++ {
				window[i%len(window)] = &node{next: window[(i+1)%len(window)]}
				allocated.Add(int64(unsafe.Sizeof(node{})))
			}
		}()
	}
	wg.Wait()
	gc1, all1, cycles1 := gcStats()
	runtime.KeepAlive(ballast)
	share := (gc1 - gc0) / (all1 - all0)
	t.Logf("with a live heap 4x the limit: GC %.0f%% of the CPU, %d collections; %d MiB allocated in 2 s",
		share*100, cycles1-cycles0, allocated.Load()>>20)
	// Go's default collects about once per live heap allocated (measured
	// with the limit far above the heap: 2 collections, 263 MiB); collecting
	// back to back, several times as often, shows the bad case.
	perLive := float64(cycles1-cycles0) / (float64(allocated.Load()) / live)
	if perLive < 3 {
		t.Errorf("%d collections in 2 s, %.1f per live heap allocated: the limit below the live heap did not make the GC run continuously (not the bad case)",
			cycles1-cycles0, perLive)
	}
	// The limiter's cap is 50% over a window; leave room for the window's edges.
	if share > 0.65 {
		t.Errorf("GC took %.0f%% of the CPU with the limit below the live heap, want about 50%% at most", share*100)
	}
	if allocated.Load() < 32<<20 {
		t.Errorf("only %d MiB allocated in 2 s: the process hardly progressed", allocated.Load()>>20)
	}
}

type cell struct {
	a *cell
	_ [3]*cell
}

type node struct {
	next *node
	_    [504]byte
}

// gcStats is the runtime's estimate of CPU seconds spent in GC and
// available in total (GOMAXPROCS × wall time), as its CPU limiter counts
// them, and the collections so far.
func gcStats() (gc, total float64, cycles uint64) {
	s := []metrics.Sample{{Name: "/cpu/classes/gc/total:cpu-seconds"}, {Name: "/cpu/classes/total:cpu-seconds"},
		{Name: "/gc/cycles/total:gc-cycles"}}
	metrics.Read(s)
	return s[0].Value.Float64(), s[1].Value.Float64(), s[2].Value.Uint64()
}

//go:build unix

package memlimit

import (
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"
)

// The bad case: a limit set by hand below the live heap. Go's GC CPU limiter
// caps collection at about half of the CPU, so the process keeps working
// instead of collecting back to back: measured here with a live heap four
// times the limit and a steady stream of garbage.
func TestLimitBelowLiveHeapStaysBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("allocates for 6 s")
	}
	const live = 64 << 20
	const window = 6 * time.Second
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
			// A little garbage stays live a while, as probe state does; the
			// nodes point nowhere, so the live heap stays the ballast.
			var recent [64]*node
			for i, begin := 0, time.Now(); time.Since(begin) < window; i++ {
				recent[i%len(recent)] = &node{}
				allocated.Add(int64(unsafe.Sizeof(node{})))
			}
		}()
	}
	wg.Wait()
	gc1, all1, cycles1 := gcStats()
	runtime.KeepAlive(ballast)
	share := (gc1 - gc0) / (all1 - all0)
	t.Logf("with a live heap 4x the limit: GC %.0f%% of the CPU, %d collections; %d MiB allocated in %v",
		share*100, cycles1-cycles0, allocated.Load()>>20, window)
	// Go's default collects about once per live heap allocated, or less
	// (GOGC=100: the heap goal is twice the live heap); with the limit
	// below the live heap it collects back to back, 5.8 to 13 times per
	// live heap allocated here (and under -race). Fewer than 3 would not
	// be the bad case.
	perLive := float64(cycles1-cycles0) / (float64(allocated.Load()) / live)
	if perLive < 3 {
		t.Errorf("%d collections in %v, %.1f per live heap allocated: the limit below the live heap did not make the GC run continuously (not the bad case)",
			cycles1-cycles0, window, perLive)
	}
	// The limiter caps GC at 50% once its bucket (GOMAXPROCS CPU-seconds)
	// is full; over the window the share can exceed half by the bucket.
	if max := 0.5 + 1/window.Seconds() + 0.1; share > max {
		t.Errorf("GC took %.0f%% of the CPU with the limit below the live heap, want at most %.0f%%", share*100, max*100)
	}
	if allocated.Load() < 16<<20 {
		t.Errorf("only %d MiB allocated in %v: the process hardly progressed", allocated.Load()>>20, window)
	}
}

type cell struct {
	a *cell
	_ [3]*cell
}

type node struct {
	_ *node
	_ [504]byte
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

//go:build unix

package scheduler

import (
	"context"
	"fmt"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/connprobe/connprobe/probe"
)

// BenchmarkFire measures the scheduler's own cost per run (timer, slot,
// pacing, sample, re-arm) with a Run that returns at once: n checks on
// distinct hosts whose intervals ask for a million runs a second, so the
// scheduler fires as fast as it can. cpu-ns/run is the process's CPU time
// (user and system, all threads) per run; ns/op is wall time.
//
//	go test ./internal/scheduler/ -run '^$' -bench BenchmarkFire -benchmem
func BenchmarkFire(b *testing.B) {
	for _, n := range []int{100, 1000, 10000} {
		b.Run(fmt.Sprintf("checks=%d", n), func(b *testing.B) { benchFire(b, n) })
	}
}

func benchFire(b *testing.B, n int) {
	checks := make([]*probe.Check, n)
	for i := range checks {
		checks[i] = testCheck(fmt.Sprintf("c%d", i), fmt.Sprintf("h%d.example", i), time.Duration(n)*time.Microsecond)
	}
	var runs atomic.Int64
	done := make(chan struct{})
	target := int64(b.N)
	ok := []probe.Result{{Up: true, Reason: probe.ReasonOK, IPFamily: probe.FamilyIPv4}}
	s := New(Options{
		PerHostSpacing: time.Nanosecond,
		Run: func(context.Context, *probe.Check) []probe.Result {
			return ok
		},
		Sink: func(*probe.Check, []probe.Result) {
			if runs.Add(1) == target {
				close(done)
			}
		},
	})
	s.Apply(checks)
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cpuTime(b)
	s.Start(context.Background())
	select {
	case <-done:
	case <-time.After(5 * time.Minute):
		b.Fatalf("only %d of %d runs in 5 minutes", runs.Load(), b.N)
	}
	b.ReportMetric(float64(cpuTime(b)-cpu0)/float64(b.N), "cpu-ns/run")
	b.StopTimer()
	s.Stop()
}

// cpuTime is the user and system time this process has used.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

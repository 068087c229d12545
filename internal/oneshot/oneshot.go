// Package oneshot runs every configured check once, through the
// scheduler's run-once mode (the same pacing and concurrency cap as the
// agent), and reports the results as a table or JSON for a technician.
package oneshot

import (
	"context"
	"sync"

	"github.com/connprobe/connprobe/internal/scheduler"
	"github.com/connprobe/connprobe/probe"
)

// Options bound a one-shot run. Pacing is the scheduler's own.
type Options struct {
	// MaxConcurrent caps probes in flight (default scheduler.DefaultMaxConcurrent).
	MaxConcurrent int
	// Run probes one check; probe.Run by default.
	Run func(ctx context.Context, c *probe.Check) []probe.Result
}

// Run probes every check once and returns the results in check order. A
// port range is swept in full, one result per port. A check that never ran
// because ctx ended first has one "not run" result.
func Run(ctx context.Context, checks []*probe.Check, opts Options) []probe.Result {
	var mu sync.Mutex
	perCheck := make(map[*probe.Check][]probe.Result, len(checks))
	s := scheduler.New(scheduler.Options{
		MaxConcurrent: opts.MaxConcurrent,
		Run:           opts.Run,
		Sink: func(c *probe.Check, rs []probe.Result) {
			mu.Lock()
			perCheck[c] = rs
			mu.Unlock()
		},
	})
	for _, c := range s.RunOnce(ctx, checks) {
		perCheck[c] = cancelled(c)
	}
	var out []probe.Result
	for _, c := range checks {
		out = append(out, perCheck[c]...)
	}
	return out
}

func cancelled(c *probe.Check) []probe.Result {
	return []probe.Result{{Check: c, Reason: probe.ReasonSkipped, Detail: "not run: interrupted"}}
}

// Exit codes of `probe check`.
const (
	ExitOK     = 0 // every essential check passed
	ExitFailed = 1 // an essential check failed
	ExitUsage  = 2 // usage or configuration error
)

// ExitCode agrees with the results: 1 when any essential check is down.
func ExitCode(results []probe.Result) int {
	for _, r := range results {
		if r.Check != nil && r.Check.Essential && !r.Up {
			return ExitFailed
		}
	}
	return ExitOK
}

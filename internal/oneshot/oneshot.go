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
	// Started and Finished, if set, follow the run as it goes (progress,
	// rows printed as they finish). Called from the probes' goroutines.
	Started  func(c *probe.Check)
	Finished func(c *probe.Check, rs []probe.Result)
	// Trace is the path-trace policy: each failing check traced once
	// (Trace.Trace nil: none).
	Trace scheduler.TraceOptions
}

// Outcome is what one run observed.
type Outcome struct {
	// Results in check order. A check that never ran has one result with
	// reason "skipped" and the detail NotRunDetail.
	Results []probe.Result
	// NotRun are the checks that never ran, or were cut short, because the
	// run was interrupted.
	NotRun []*probe.Check
}

// NotRunDetail is the detail of the result standing for a check that never
// ran.
const NotRunDetail = "not run: interrupted"

// Run probes every check once. A port range is swept in full, one result
// per port.
func Run(ctx context.Context, checks []*probe.Check, opts Options) Outcome {
	var mu sync.Mutex
	perCheck := make(map[*probe.Check][]probe.Result, len(checks))
	s := scheduler.New(scheduler.Options{
		MaxConcurrent: opts.MaxConcurrent,
		Run:           opts.Run,
		Started:       opts.Started,
		Trace:         opts.Trace,
		Sink: func(c *probe.Check, rs []probe.Result) {
			mu.Lock()
			perCheck[c] = rs
			mu.Unlock()
			if opts.Finished != nil {
				opts.Finished(c, rs)
			}
		},
	})
	var out Outcome
	out.NotRun = s.RunOnce(ctx, checks)
	for _, c := range out.NotRun {
		perCheck[c] = []probe.Result{notRunResult(c)}
	}
	for _, c := range checks {
		out.Results = append(out.Results, perCheck[c]...)
	}
	return out
}

func notRunResult(c *probe.Check) probe.Result {
	return probe.Result{Check: c, Reason: probe.ReasonSkipped, Detail: NotRunDetail}
}

// Exit codes of `probe check`. When several apply: 1 (a failure observed is
// the strongest news), then 130, then 3.
const (
	ExitOK          = 0   // every essential check ran and passed
	ExitFailed      = 1   // an essential check failed
	ExitUsage       = 2   // usage or configuration error
	ExitIncomplete  = 3   // no essential check failed, but one was skipped (a required --param is not set)
	ExitInterrupted = 130 // interrupted (Ctrl-C, SIGTERM) before every check ran; no essential check failed
)

// Package oneshot runs every configured check once, without the scheduler,
// and reports the results as a table or JSON for a technician.
package oneshot

import (
	"context"
	"sync"
	"time"

	"github.com/connprobe/connprobe/probe"
)

// Options bound a one-shot run.
type Options struct {
	// MaxConcurrent caps probes in flight (default 8).
	MaxConcurrent int
	// PerHostSpacing is the least time between two probe starts towards the
	// same host, so a port range is swept paced (default 50ms).
	PerHostSpacing time.Duration
	// Run probes one check; probe.Run by default.
	Run func(ctx context.Context, c *probe.Check) []probe.Result
}

// Run probes every check once and returns the results in check order.
func Run(ctx context.Context, checks []*probe.Check, opts Options) []probe.Result {
	if opts.MaxConcurrent <= 0 {
		opts.MaxConcurrent = 8
	}
	if opts.PerHostSpacing <= 0 {
		opts.PerHostSpacing = 50 * time.Millisecond
	}
	if opts.Run == nil {
		opts.Run = probe.Run
	}
	// Start times per check: checks of one host are spaced, hosts interleave.
	nextStart := map[string]time.Time{}
	now := time.Now()
	starts := make([]time.Time, len(checks))
	for i, c := range checks {
		at, ok := nextStart[c.Host]
		if !ok || at.Before(now) {
			at = now
		}
		starts[i] = at
		nextStart[c.Host] = at.Add(opts.PerHostSpacing)
	}

	perCheck := make([][]probe.Result, len(checks))
	sem := make(chan struct{}, opts.MaxConcurrent)
	var wg sync.WaitGroup
	for i, c := range checks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if !sleepUntil(ctx, starts[i]) {
				perCheck[i] = cancelled(c)
				return
			}
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				perCheck[i] = cancelled(c)
				return
			}
			defer func() { <-sem }()
			perCheck[i] = opts.Run(ctx, c)
		}()
	}
	wg.Wait()
	var out []probe.Result
	for _, rs := range perCheck {
		out = append(out, rs...)
	}
	return out
}

func sleepUntil(ctx context.Context, at time.Time) bool {
	d := time.Until(at)
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
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

// Package oneshot runs every configured check once, without the scheduler,
// and reports the results as a table or JSON for a technician.
package oneshot

import (
	"context"
	"sync"
	"time"

	"github.com/connprobe/connprobe/probe"
)

// Default pacing of probe starts towards one host.
const (
	DefaultPerHostSpacing = 50 * time.Millisecond
	// DefaultUDPHostSpacing matches Linux's ICMP error rate limit (a burst of
	// about six, then one per second per destination): a faster UDP sweep
	// would report closed ports as no_reply instead of refused.
	DefaultUDPHostSpacing = time.Second
)

// Options bound a one-shot run.
type Options struct {
	// MaxConcurrent caps probes in flight (default 8).
	MaxConcurrent int
	// PerHostSpacing is the least time between two TCP probe starts towards
	// the same host, so a port range is swept paced (default 50ms).
	PerHostSpacing time.Duration
	// UDPHostSpacing is the least time between two UDP probe starts towards
	// the same host (default 1s).
	UDPHostSpacing time.Duration
	// Run probes one check; probe.Run by default.
	Run func(ctx context.Context, c *probe.Check) []probe.Result
}

// Run probes every check once and returns the results in check order. A
// port range is swept in full, one result per port: probes of one host and
// transport start one after the other, spaced from the previous real start,
// while different hosts and transports proceed side by side.
func Run(ctx context.Context, checks []*probe.Check, opts Options) []probe.Result {
	if opts.MaxConcurrent <= 0 {
		opts.MaxConcurrent = 8
	}
	if opts.PerHostSpacing <= 0 {
		opts.PerHostSpacing = DefaultPerHostSpacing
	}
	if opts.UDPHostSpacing <= 0 {
		opts.UDPHostSpacing = DefaultUDPHostSpacing
	}
	if opts.Run == nil {
		opts.Run = probe.Run
	}
	// Lanes: the indexes of the checks of one transport and host, in order.
	var lanes [][]int
	laneOf := map[string]int{}
	for i, c := range checks {
		key := protocolOf(c) + " " + c.Host
		l, ok := laneOf[key]
		if !ok {
			l = len(lanes)
			laneOf[key] = l
			lanes = append(lanes, nil)
		}
		lanes[l] = append(lanes[l], i)
	}

	perCheck := make([][]probe.Result, len(checks))
	sem := make(chan struct{}, opts.MaxConcurrent)
	var wg sync.WaitGroup
	for _, lane := range lanes {
		spacing := opts.PerHostSpacing
		if protocolOf(checks[lane[0]]) == "udp" {
			spacing = opts.UDPHostSpacing
		}
		// The turn passes along the lane in check order and carries the
		// previous probe's real start (after it got a probe slot): waiting
		// for a slot can never bunch two probes of one host together, and
		// each probe runs in the goroutine that waited for its start.
		turn := make(chan time.Time, 1)
		turn <- time.Time{}
		for _, i := range lane {
			mine, next := turn, make(chan time.Time, 1)
			turn = next
			wg.Add(1)
			go func() {
				defer wg.Done()
				last := <-mine
				var at time.Time
				if !last.IsZero() {
					at = last.Add(spacing)
				}
				if !acquire(ctx, sem, at) {
					next <- last
					perCheck[i] = cancelled(checks[i])
					return
				}
				next <- time.Now()
				defer func() { <-sem }()
				perCheck[i] = opts.Run(ctx, checks[i])
			}()
		}
	}
	wg.Wait()
	var out []probe.Result
	for _, rs := range perCheck {
		out = append(out, rs...)
	}
	return out
}

// acquire waits until at (if set) and then for a probe slot; false, holding
// no slot, when ctx ends first.
func acquire(ctx context.Context, sem chan struct{}, at time.Time) bool {
	if !at.IsZero() && !sleepUntil(ctx, at) {
		return false
	}
	select {
	case sem <- struct{}{}:
	case <-ctx.Done():
		return false
	}
	// select picks at random among ready cases: re-check a cancelled ctx.
	if ctx.Err() != nil {
		<-sem
		return false
	}
	return true
}

// protocolOf is the check's transport for pacing; an unset one is TCP.
func protocolOf(c *probe.Check) string {
	if c.Protocol == "udp" {
		return "udp"
	}
	return "tcp"
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

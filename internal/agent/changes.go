package agent

import (
	"log/slog"
	"time"

	"github.com/connprobe/connprobe/internal/results"
	"github.com/connprobe/connprobe/probe"
)

// logChanges logs, once at info, each address family of c whose verdict or
// reason differs from the run before (prev): journalctl then tells when
// each check started failing, how, what changed and when it recovered. A
// first run logs a failure only (a check that starts up is the normal case);
// an unchanged verdict logs nothing.
func logChanges(logger *slog.Logger, c *probe.Check, prev results.Entry, rs []probe.Result, now time.Time) {
	for _, r := range rs {
		// At most two families: a scan, not a map made on every run.
		var old probe.Result
		had := false
		for _, p := range prev.Results {
			if p.IPFamily == r.IPFamily {
				old, had = p, true // the last of a family, as a map would keep
			}
		}
		if had && old.Up == r.Up && old.Reason == r.Reason {
			continue
		}
		attrs := []any{"check", c.Name, "profile", c.Profile, "kind", c.Kind, "host", c.Host, "port", c.Port,
			"protocol", c.Network, "family", r.IPFamily, "address", r.Address, "essential", c.Essential,
			"reason", r.Reason}
		switch {
		case r.Up && !had:
			logger.Debug("check up", attrs...)
		case r.Up:
			attrs = append(attrs, "previous_reason", old.Reason)
			if !prev.Since.IsZero() {
				attrs = append(attrs, "failing_for", now.Sub(prev.Since).Round(time.Second).String())
			}
			logger.Info("check recovered", attrs...)
		default:
			attrs = append(attrs, "phase", r.Phase, "detail", r.Detail)
			if r.Path != nil {
				attrs = append(attrs, "path", r.Path.Phrase())
			}
			msg := "check failing"
			if had && !old.Up {
				msg = "check failing differently"
				attrs = append(attrs, "previous_reason", old.Reason)
			}
			logger.Info(msg, attrs...)
		}
	}
}

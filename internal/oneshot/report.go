package oneshot

import (
	"encoding/json"
	"io"
	"strings"
	"time"

	"github.com/connprobe/connprobe/probe"
)

// JSONResult is one result in `probe check -o json`. The field names are a
// public interface: extend, never rename.
type JSONResult struct {
	Profile         string         `json:"profile"`
	Check           string         `json:"check"`
	Kind            string         `json:"kind"`
	Host            string         `json:"host"`
	Address         string         `json:"address"`
	IPFamily        string         `json:"ip_family"`
	Port            int            `json:"port"`
	Protocol        string         `json:"protocol"`
	Essential       bool           `json:"essential"`
	Up              bool           `json:"up"`
	Reason          probe.Reason   `json:"reason"`
	Phase           probe.Phase    `json:"phase"`
	DurationSeconds float64        `json:"duration_seconds"`
	Detail          string         `json:"detail"`
	Facts           probe.Facts    `json:"facts"`
	Timings         []probe.Timing `json:"timings"`
	Time            time.Time      `json:"time"`
	// Path is where the traffic of a failed check stopped, when it was
	// traced (README, "Where is it blocked"); absent otherwise.
	Path *probe.Path `json:"path,omitempty"`
	// NotRun marks the stand-in result of a check that never ran (the run
	// was interrupted); its reason is "skipped".
	NotRun bool `json:"not_run,omitempty"`

	// What a profile says about its check; absent for custom checks.
	Direction string `json:"direction,omitempty"`
	Level     string `json:"level,omitempty"`
	Purpose   string `json:"purpose,omitempty"`
	Source    string `json:"source,omitempty"`
}

// JSONSkipped is a profile check that did not run because a required
// param is not set. A skipped essential check makes the exit code 3.
type JSONSkipped struct {
	Profile   string   `json:"profile"`
	Check     string   `json:"check"`
	Level     string   `json:"level"`
	Essential bool     `json:"essential"`
	Missing   []string `json:"missing"`
	Hint      string   `json:"hint"`
}

// JSONReport is the document `probe check -o json` prints.
type JSONReport struct {
	Results []JSONResult  `json:"results"`
	Skipped []JSONSkipped `json:"skipped"`
	Summary Summary       `json:"summary"`
	// Uplink is the site-wide verdict (see UplinkJSON); null without one.
	Uplink *JSONUplink `json:"uplink"`
}

// JSON converts the report to its public JSON form.
func (r *Report) JSON() JSONReport {
	rep := JSONReport{Results: make([]JSONResult, 0, len(r.Results)), Skipped: make([]JSONSkipped, 0, len(r.Skipped)),
		Summary: r.Summary(), Uplink: UplinkJSON(r.Uplink)}
	for _, res := range r.Results {
		jr := JSONResult{
			Address: res.Address, IPFamily: res.IPFamily, Up: res.Up, Reason: res.Reason, Phase: res.Phase,
			DurationSeconds: res.Duration.Seconds(), Detail: res.Detail, Facts: res.Facts,
			Timings: res.Timings, Time: res.Start.UTC(), Path: res.Path, NotRun: r.NotRun(res),
		}
		if jr.Timings == nil {
			jr.Timings = []probe.Timing{}
		}
		if c := res.Check; c != nil {
			jr.Profile, jr.Check, jr.Kind, jr.Host = c.Profile, c.Name, c.Kind, c.Host
			jr.Port, jr.Protocol, jr.Essential = c.Port, c.Network, c.Essential
			m := c.GetMeta()
			jr.Direction, jr.Level, jr.Purpose, jr.Source = m.Direction, m.Level, m.Purpose, m.Source
		}
		rep.Results = append(rep.Results, jr)
	}
	for _, s := range r.Skipped {
		rep.Skipped = append(rep.Skipped, JSONSkipped{
			Profile: s.Profile, Check: s.Check, Level: s.Level, Essential: s.Essential,
			Missing: append([]string{}, s.Missing...), Hint: s.Hint,
		})
	}
	return rep
}

// WriteJSON prints the report as one indented JSON document.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r.JSON())
}

// withPath ends a failed result's detail with where its traffic stopped, when
// it was traced. The detail gives way so that the phrase survives the
// table's width bound (maxDetail).
func withPath(r probe.Result) string {
	if r.Path == nil {
		return r.Detail
	}
	phrase := r.Path.Phrase()
	room := maxDetail - len([]rune(phrase)) - 2
	return cut(oneLine(r.Detail, 1<<10), max(room, 8)) + "; " + phrase
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func latency(d time.Duration) string {
	switch {
	case d <= 0:
		return "-"
	case d < time.Millisecond:
		return d.Round(time.Microsecond).String()
	default:
		return d.Round(100 * time.Microsecond).String()
	}
}

func latencySeconds(s float64) string {
	return latency(time.Duration(s * float64(time.Second)))
}

// oneLine keeps a detail on one table row: no control characters, bounded.
func oneLine(s string, max int) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
	if r := []rune(s); len(r) > max {
		return string(r[:max-1]) + "…"
	}
	return s
}

package oneshot

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/connprobe/connprobe/probe"
	"github.com/connprobe/connprobe/targets"
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

	// What a profile says about its check; absent for custom checks.
	Direction string `json:"direction,omitempty"`
	Level     string `json:"level,omitempty"`
	Purpose   string `json:"purpose,omitempty"`
	Source    string `json:"source,omitempty"`
}

// JSONSkipped is a profile check that did not run because a required
// param is not set. Skipped checks do not affect the exit code.
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
	// Uplink is the site-wide verdict (see UplinkJSON); null without one.
	Uplink *JSONUplink `json:"uplink"`
}

// ToJSON converts results, and the profile checks skipped for a missing
// param, to their public JSON form.
func ToJSON(results []probe.Result, skipped ...targets.Skipped) JSONReport {
	rep := JSONReport{Results: make([]JSONResult, 0, len(results)), Skipped: make([]JSONSkipped, 0, len(skipped))}
	for _, r := range results {
		jr := JSONResult{
			Address: r.Address, IPFamily: r.IPFamily, Up: r.Up, Reason: r.Reason, Phase: r.Phase,
			DurationSeconds: r.Duration.Seconds(), Detail: r.Detail, Facts: r.Facts,
			Timings: r.Timings, Time: r.Start.UTC(), Path: r.Path,
		}
		if jr.Timings == nil {
			jr.Timings = []probe.Timing{}
		}
		if c := r.Check; c != nil {
			jr.Profile, jr.Check, jr.Kind, jr.Host = c.Profile, c.Name, c.Kind, c.Host
			jr.Port, jr.Protocol, jr.Essential = c.Port, c.Protocol, c.Essential
			jr.Direction, jr.Level, jr.Purpose, jr.Source = c.Meta.Direction, c.Meta.Level, c.Meta.Purpose, c.Meta.Source
		}
		rep.Results = append(rep.Results, jr)
	}
	for _, s := range skipped {
		rep.Skipped = append(rep.Skipped, JSONSkipped{
			Profile: s.Profile, Check: s.Check, Level: s.Level, Essential: s.Essential,
			Missing: append([]string{}, s.Missing...), Hint: s.Hint,
		})
	}
	return rep
}

// WriteJSON prints results, and the skipped checks, as indented JSON.
func WriteJSON(w io.Writer, results []probe.Result, skipped ...targets.Skipped) error {
	return EncodeJSON(w, ToJSON(results, skipped...))
}

// EncodeJSON prints a report as indented JSON.
func EncodeJSON(w io.Writer, rep JSONReport) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(rep)
}

// WriteTable prints one row per result and a one-line summary, then one
// line per skipped check with what would enable it.
func WriteTable(w io.Writer, results []probe.Result, skipped ...targets.Skipped) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "VERDICT\tPROFILE\tCHECK\tKIND\tTARGET\tADDRESS\tREASON\tPHASE\tLATENCY\tDETAIL")
	var up, down, essentialDown int
	for _, r := range results {
		verdict := "OK"
		switch {
		case r.Up:
			up++
		case r.Check != nil && !r.Check.Essential:
			verdict = "WARN"
			down++
		default:
			verdict = "FAIL"
			down++
			essentialDown++
		}
		var profile, name, kind, target string
		if c := r.Check; c != nil {
			profile, name, kind = dash(c.Profile), c.Name, c.Kind
			target = c.Host + ":" + strconv.Itoa(c.Port) + "/" + c.Protocol
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n",
			verdict, profile, name, kind, target, dash(r.Address), r.Reason, dash(string(r.Phase)),
			latency(r.Duration), oneLine(withPath(r), 160))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	summary := fmt.Sprintf("%d ok, %d failed (%d essential)", up, down, essentialDown)
	if len(skipped) > 0 {
		summary += fmt.Sprintf(", %d skipped (not run; they do not change the exit code)", len(skipped))
	}
	if _, err := fmt.Fprintf(w, "\n%s\n", summary); err != nil {
		return err
	}
	for _, s := range skipped {
		if _, err := fmt.Fprintf(w, "skipped: %s/%s: %s\n", s.Profile, s.Check, oneLine(s.Detail, 200)); err != nil {
			return err
		}
	}
	return nil
}

// withPath ends a failed result's detail with where its traffic stopped, when
// it was traced.
func withPath(r probe.Result) string {
	if r.Path == nil {
		return r.Detail
	}
	return r.Detail + "; " + r.Path.Phrase()
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

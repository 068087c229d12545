package oneshot

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/connprobe/connprobe/internal/uplink"
	"github.com/connprobe/connprobe/probe"
	"github.com/connprobe/connprobe/targets"
)

// Readiness of a profile (or of the custom checks) after a run.
const (
	Ready      = "ready"      // every essential check ran and passed
	NotReady   = "not_ready"  // an essential check failed
	Incomplete = "incomplete" // none failed, but one was skipped or not run
)

// Verdicts of a check or a result in the summary.
const (
	verdictOK     = "ok"
	verdictFailed = "failed"
	verdictNotRun = "not_run"
)

// Summary is the verdict of a whole run: the top-level "summary" in JSON,
// the closing lines of the table. A check is one entry of the configuration
// (a profile's check or a custom check; a port range is one check); a result
// is one probe of one port and address family.
type Summary struct {
	Checks   CheckCounts      `json:"checks"`
	Results  ResultCounts     `json:"results"`
	Profiles []ProfileSummary `json:"profiles"`
	ExitCode int              `json:"exit_code"`
}

// CheckCounts count the configured checks by verdict: a check failed when
// any of its results failed, was not run when none failed and a result is
// missing, and skipped when a required param is not set.
type CheckCounts struct {
	Total           int `json:"total"`
	OK              int `json:"ok"`
	Failed          int `json:"failed"`
	EssentialFailed int `json:"essential_failed"`
	NotRun          int `json:"not_run"`
	Skipped         int `json:"skipped"`
}

// ResultCounts count the results (per port and address family) by verdict.
type ResultCounts struct {
	Total           int `json:"total"`
	OK              int `json:"ok"`
	Failed          int `json:"failed"`
	EssentialFailed int `json:"essential_failed"`
	NotRun          int `json:"not_run"`
}

// ProfileSummary is the readiness of one profile, or of the custom checks
// (Profile "").
type ProfileSummary struct {
	Profile          string `json:"profile"`
	Readiness        string `json:"readiness"`
	Essential        int    `json:"essential"`
	EssentialOK      int    `json:"essential_ok"`
	EssentialFailed  int    `json:"essential_failed"`
	EssentialNotRun  int    `json:"essential_not_run"`
	EssentialSkipped int    `json:"essential_skipped"`
	// Failing names each failing essential check: "ntp 123/udp no_reply".
	Failing []string `json:"failing"`
	// Missing names each essential check skipped or not run.
	Missing []string `json:"missing"`
}

// Report is everything `connprobe check` prints about a run.
type Report struct {
	Results []probe.Result // check order; not-run checks have one not-run result
	Skipped []targets.Skipped
	// Uplink is the site-wide verdict (see Uplink); the zero value is none.
	Uplink uplink.Verdict
	notRun map[*probe.Check]bool
}

// NewReport collects a run's outcome and the profile checks skipped for a
// missing param.
func NewReport(o Outcome, skipped []targets.Skipped) *Report {
	r := &Report{Results: o.Results, Skipped: skipped, notRun: make(map[*probe.Check]bool, len(o.NotRun))}
	for _, c := range o.NotRun {
		r.notRun[c] = true
	}
	return r
}

// NotRun reports whether res stands for a check that never ran.
func (r *Report) NotRun(res probe.Result) bool { return r.notRun[res.Check] }

// verdictOf is a result's verdict.
func (r *Report) verdictOf(res probe.Result) string {
	switch {
	case r.NotRun(res):
		return verdictNotRun
	case res.Up:
		return verdictOK
	}
	return verdictFailed
}

// checkSummary is one configured check and its results.
type checkSummary struct {
	profile, name string
	essential     bool
	results       []probe.Result
	verdict       string
}

// checks groups results by configured check (profile and name), in order.
func (r *Report) checks() []*checkSummary {
	type key struct{ profile, name string }
	index := map[key]*checkSummary{}
	var out []*checkSummary
	for _, res := range r.Results {
		c := res.Check
		if c == nil {
			continue
		}
		k := key{c.Profile, c.Name}
		cs := index[k]
		if cs == nil {
			cs = &checkSummary{profile: c.Profile, name: c.Name, essential: c.Essential, verdict: verdictOK}
			index[k] = cs
			out = append(out, cs)
		}
		cs.results = append(cs.results, res)
		switch v := r.verdictOf(res); {
		case v == verdictFailed:
			cs.verdict = verdictFailed
		case v == verdictNotRun && cs.verdict == verdictOK:
			cs.verdict = verdictNotRun
		}
	}
	return out
}

// describeFailure names a failing check for a profile line: its name, ports
// and transport, and the reasons of its failed results, e.g.
// "ntp 123/udp no_reply" or "media 10000-10100/udp refused (3 of 101 ports)".
func (r *Report) describeFailure(cs *checkSummary) string {
	c := cs.results[0].Check
	ports := strconv.Itoa(c.Port)
	if c.Range != "" {
		ports = c.Range
	}
	var reasons, briefs []string
	failedPorts, allPorts := map[int]bool{}, map[int]bool{}
	for _, res := range cs.results {
		allPorts[res.Check.Port] = true
		if r.verdictOf(res) != verdictFailed {
			continue
		}
		failedPorts[res.Check.Port] = true
		briefs = append(briefs, pathBrief(res.Path))
		if !slices.Contains(reasons, string(res.Reason)) {
			reasons = append(reasons, string(res.Reason))
		}
	}
	s := fmt.Sprintf("%s %s/%s %s", cs.name, ports, c.Network, strings.Join(reasons, ","))
	if b := commonBrief(briefs); b != "" {
		s += " " + b
	}
	if c.Range != "" {
		s += fmt.Sprintf(" (%d of %d ports)", len(failedPorts), len(allPorts))
	}
	return s
}

// commonBrief is the place every one of several failures stopped at, or ""
// when they differ or one was not traced: a place is never generalised.
func commonBrief(briefs []string) string {
	if len(briefs) == 0 {
		return ""
	}
	for _, b := range briefs[1:] {
		if b != briefs[0] {
			return ""
		}
	}
	return briefs[0]
}

// pathBrief says in a few words where a traced failure stopped: "by
// 192.168.1.1" (a device rejected it), "after hop 2 (198.51.100.9)" (a
// silent drop beyond the last device that answered), "by this host"; ""
// when the trace could not tell.
func pathBrief(p *probe.Path) string {
	switch {
	case p == nil:
		return ""
	case p.Location == probe.PathThisHost:
		return "by this host"
	case p.Address == "":
		return ""
	case p.Rejected:
		return "by " + p.Address
	}
	return fmt.Sprintf("after hop %d (%s)", p.Hop, p.Address)
}

// Summary counts the run and derives readiness and the exit code.
func (r *Report) Summary() Summary {
	var s Summary
	for _, res := range r.Results {
		s.Results.Total++
		switch r.verdictOf(res) {
		case verdictOK:
			s.Results.OK++
		case verdictNotRun:
			s.Results.NotRun++
		default:
			s.Results.Failed++
			if res.Check != nil && res.Check.Essential {
				s.Results.EssentialFailed++
			}
		}
	}
	profiles := map[string]*ProfileSummary{}
	var order []string
	note := func(name string) *ProfileSummary {
		p := profiles[name]
		if p == nil {
			p = &ProfileSummary{Profile: name, Failing: []string{}, Missing: []string{}}
			profiles[name] = p
			order = append(order, name)
		}
		return p
	}
	for _, cs := range r.checks() {
		s.Checks.Total++
		p := note(cs.profile)
		if cs.essential {
			p.Essential++
		}
		switch cs.verdict {
		case verdictOK:
			s.Checks.OK++
			if cs.essential {
				p.EssentialOK++
			}
		case verdictNotRun:
			s.Checks.NotRun++
			if cs.essential {
				p.EssentialNotRun++
				p.Missing = append(p.Missing, cs.name+" (not run)")
			}
		default:
			s.Checks.Failed++
			if cs.essential {
				s.Checks.EssentialFailed++
				p.EssentialFailed++
				p.Failing = append(p.Failing, r.describeFailure(cs))
			}
		}
	}
	for _, sk := range r.Skipped {
		s.Checks.Total++
		s.Checks.Skipped++
		p := note(sk.Profile)
		if sk.Essential {
			p.Essential++
			p.EssentialSkipped++
			p.Missing = append(p.Missing, fmt.Sprintf("%s (skipped: set %s)", sk.Check, missingParams(sk)))
		}
	}
	s.Profiles = []ProfileSummary{}
	for _, name := range order {
		p := profiles[name]
		switch {
		case p.EssentialFailed > 0:
			p.Readiness = NotReady
		case p.EssentialNotRun > 0 || p.EssentialSkipped > 0:
			p.Readiness = Incomplete
		default:
			p.Readiness = Ready
		}
		s.Profiles = append(s.Profiles, *p)
	}
	switch {
	case s.Checks.EssentialFailed > 0:
		s.ExitCode = ExitFailed
	case s.Checks.NotRun > 0:
		s.ExitCode = ExitInterrupted
	case slices.ContainsFunc(r.Skipped, func(sk targets.Skipped) bool { return sk.Essential }):
		s.ExitCode = ExitIncomplete
	default:
		s.ExitCode = ExitOK
	}
	return s
}

// missingParams spells the params a skipped check needs: "--param clover.emv_host".
func missingParams(sk targets.Skipped) string {
	var out []string
	for _, m := range sk.Missing {
		out = append(out, "--param "+sk.Profile+"."+m)
	}
	return strings.Join(out, ", ")
}

// ExitCode is the exit code the run implies (see Summary).
func (r *Report) ExitCode() int { return r.Summary().ExitCode }

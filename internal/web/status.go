package web

import (
	"crypto/sha256"
	_ "embed"
	"encoding/base64"
	"fmt"
	"html/template"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/connprobe/connprobe/internal/results"
	"github.com/connprobe/connprobe/probe"
)

// AgentStatus is the agent's own state, for the status page's banners and
// headlines; Options.Status reports it at each request.
type AgentStatus struct {
	// ReloadError is the error of the last reload when it failed (the
	// previous configuration keeps running); empty after a good one.
	ReloadError string
	ReloadAt    time.Time // when the last reload was attempted
	// Skipped are profile checks that do not run for want of a param.
	Skipped []Skipped
	// Uplink is the site-wide uplink verdict; nil when there is none (no
	// outbound check, or nothing computes it).
	Uplink *Uplink
}

// Skipped is a profile check that is configured but cannot run.
type Skipped struct {
	Profile, Check string
	Essential      bool
	Detail         string // what to set, for people
}

// Uplink is the site-wide verdict on this site's internet connection.
type Uplink struct {
	Up       bool
	Location probe.PathLocation // where it stops when down
	Gateway  string             // this host's default gateway
	Hop      int
	Address  string // the device where it stops
	Detail   string // for people
}

// Page bounds: the page stays small with 10,000 checks. Ranges are folded
// into one row each; a section lists its first rows and counts the rest.
const (
	maxRowsFailing = 200 // essential failures and warnings, each
	maxRowsOther   = 200 // not run, skipped, working
	maxDetail      = 600 // bytes of a result's detail
	maxPorts       = 24  // port numbers or spans named per range row
	maxHops        = 16  // hops drawn per path
	stripLen       = results.HistoryLen
)

// pageOptions are the status page's settings (see Options).
type pageOptions struct {
	store    *results.Store
	status   func() AgentStatus
	version  string
	location *time.Location
	refresh  time.Duration
	now      func() time.Time
	logger   *slog.Logger
}

type statusPage struct{ pageOptions }

//go:embed status.html
var statusHTML string

var statusTemplate = template.Must(template.New("status").Parse(statusHTML))

// contentSecurityPolicy allows the page's one inline style sheet, by its
// hash, and nothing else: no script, no image, no font, nothing from
// elsewhere (the agent may have no internet), so a browser refuses anything
// injected.
var contentSecurityPolicy = func() string {
	start := strings.Index(statusHTML, "<style>") + len("<style>")
	end := strings.Index(statusHTML, "</style>")
	if start < len("<style>") || end < start {
		panic("status.html has no <style> element")
	}
	sum := sha256.Sum256([]byte(statusHTML[start:end]))
	return "default-src 'none'; style-src 'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) +
		"'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
}()

// Row classes, in page order: essential failures, warnings (non-essential
// failures), checks without a verdict, working checks.
const (
	classFail    = "fail"
	classWarn    = "warn"
	classPending = "pending"
	classOK      = "ok"
)

// Headline states.
const (
	stateReady      = "READY"
	stateNotReady   = "NOT READY"
	stateIncomplete = "INCOMPLETE"
)

type pageData struct {
	Title, Generated, Zone, Version string
	RefreshSeconds                  int
	ReloadError, ReloadAt           string
	Uplink                          *uplinkView
	Headlines                       []headline
	Sections                        []section
	Total                           int
}

type uplinkView struct {
	Where, Detail string
}

type headline struct {
	Name, State, Class, Summary string
	Warnings                    int
}

type section struct {
	ID, Title, Class string
	Rows             []row
	More, Count      int
}

type row struct {
	Class, Badge, Label     string
	Profile, Name, Purpose  string
	Kind, Target, Essential string
	Range, RangeSummary     string
	Since, SinceFor         string
	Strip                   []cell
	Results                 []resultView
	Note                    string
}

type cell struct{ Class, Title string }

type resultView struct {
	Family, Address, Reason, Plain, Phase, Detail, Port string
	Up                                                  bool
	Path                                                *pathView
}

type pathView struct {
	Where, Control string
	Hops           []hopView
	More           int
}

type hopView struct {
	Hop                int
	Address, RTT, ICMP string
	Stop               bool
}

// unit is one row before rendering: a single check, or the ports of one
// range folded together.
type unit struct {
	check   *probe.Check // the first port's check for a range
	entries []results.Entry
	skipped *Skipped
}

func (p *statusPage) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	var st AgentStatus
	if p.status != nil {
		st = p.status()
	}
	data := p.build(p.store.Snapshot(), st)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	// The page needs no script and nothing from elsewhere (the agent may have
	// no internet): say so, so that a browser refuses anything injected.
	w.Header().Set("Content-Security-Policy", contentSecurityPolicy)
	if err := statusTemplate.Execute(w, data); err != nil {
		p.logger.Debug("writing status page", "err", err)
	}
}

func (p *statusPage) build(entries []results.Entry, st AgentStatus) pageData {
	now := p.now().In(p.location)
	data := pageData{
		Title:          "connprobe",
		Generated:      p.fmtTime(now),
		Zone:           zoneName(now),
		Version:        p.version,
		RefreshSeconds: int(p.refresh.Seconds()),
	}
	if st.ReloadError != "" {
		data.ReloadError = truncate(st.ReloadError, 4*maxDetail)
		if !st.ReloadAt.IsZero() {
			data.ReloadAt = p.fmtTime(st.ReloadAt)
		}
	}
	if u := st.Uplink; u != nil && !u.Up {
		data.Uplink = &uplinkView{Where: uplinkWhere(u), Detail: truncate(u.Detail, maxDetail)}
	}

	units := foldUnits(entries, st.Skipped)
	data.Total = len(units)

	// Headlines: one per profile in config order, custom checks last.
	type tally struct {
		name                                 string
		essential, failing, pending, skipped int
		warnings                             int
		worst                                []string
	}
	var groups []*tally
	byProfile := map[string]*tally{}
	sections := []section{
		{ID: "failing", Title: "Failing essential checks", Class: classFail},
		{ID: "warnings", Title: "Warnings: failing checks that are not essential", Class: classWarn},
		{ID: "pending", Title: "Not checked: waiting for a first run, or skipped", Class: classPending},
		{ID: "working", Title: "Working", Class: classOK},
	}
	sectionOf := map[string]int{classFail: 0, classWarn: 1, classPending: 2, classOK: 3}
	for _, u := range units {
		r := p.row(u, now)
		profile := u.profile()
		g, ok := byProfile[profile]
		if !ok {
			g = &tally{name: profile}
			byProfile[profile] = g
			groups = append(groups, g)
		}
		if u.essential() {
			g.essential++
			switch r.Class {
			case classFail:
				g.failing++
				if len(g.worst) < 3 {
					g.worst = append(g.worst, r.Name+" "+r.Label)
				}
			case classPending:
				if u.skipped != nil {
					g.skipped++
				} else {
					g.pending++
				}
			}
		} else if r.Class == classWarn {
			g.warnings++
		}
		s := &sections[sectionOf[r.Class]]
		limit := maxRowsOther
		if r.Class == classFail || r.Class == classWarn {
			limit = maxRowsFailing
		}
		s.Count++
		if len(s.Rows) < limit {
			s.Rows = append(s.Rows, r)
		} else {
			s.More++
		}
	}
	// Custom checks after the profiles.
	slices.SortStableFunc(groups, func(a, b *tally) int {
		return boolCmp(a.name == "", b.name == "")
	})
	for _, g := range groups {
		h := headline{Name: g.name, Warnings: g.warnings}
		if g.name == "" {
			h.Name = "Custom checks"
		}
		switch {
		case g.failing > 0:
			h.State, h.Class = stateNotReady, classFail
			h.Summary = fmt.Sprintf("%d of %d essential %s %s: %s", g.failing, g.essential,
				plural(g.essential, "check", "checks"), plural(g.failing, "fails", "fail"), strings.Join(g.worst, "; "))
			if g.failing > len(g.worst) {
				h.Summary += "; …"
			}
		case g.pending+g.skipped > 0:
			h.State, h.Class = stateIncomplete, classPending
			var parts []string
			if g.skipped > 0 {
				parts = append(parts, fmt.Sprintf("%d skipped for a missing setting", g.skipped))
			}
			if g.pending > 0 {
				parts = append(parts, fmt.Sprintf("%d not run yet", g.pending))
			}
			h.Summary = fmt.Sprintf("%d of %d essential %s not checked: %s", g.pending+g.skipped, g.essential,
				plural(g.essential, "check", "checks"), strings.Join(parts, ", "))
		case g.essential == 0:
			h.State, h.Class = stateReady, classOK
			h.Summary = "no essential checks"
		default:
			h.State, h.Class = stateReady, classOK
			h.Summary = fmt.Sprintf("all %d essential checks pass", g.essential)
			if g.essential == 1 {
				h.Summary = "its essential check passes"
			}
		}
		data.Headlines = append(data.Headlines, h)
	}
	for _, s := range sections {
		if len(s.Rows) > 0 {
			data.Sections = append(data.Sections, s)
		}
	}
	return data
}

// foldUnits turns store entries into rows: a range's ports become one unit;
// skipped profile checks follow.
func foldUnits(entries []results.Entry, skipped []Skipped) []*unit {
	var units []*unit
	ranges := map[string]*unit{}
	for _, e := range entries {
		c := e.Check
		if c.Range == "" {
			units = append(units, &unit{check: c, entries: []results.Entry{e}})
			continue
		}
		key := c.GroupID()
		u, ok := ranges[key]
		if !ok {
			u = &unit{check: c}
			ranges[key] = u
			units = append(units, u)
		}
		u.entries = append(u.entries, e)
	}
	for i := range skipped {
		units = append(units, &unit{skipped: &skipped[i]})
	}
	return units
}

func (u *unit) profile() string {
	if u.skipped != nil {
		return u.skipped.Profile
	}
	return u.check.Profile
}

func (u *unit) essential() bool {
	if u.skipped != nil {
		return u.skipped.Essential
	}
	return u.check.Essential
}

// row renders one unit.
func (p *statusPage) row(u *unit, now time.Time) row {
	if s := u.skipped; s != nil {
		r := row{Class: classPending, Badge: "SKIPPED", Label: "skipped", Profile: s.Profile, Name: s.Check,
			Essential: essentialWord(s.Essential), Note: truncate(s.Detail, maxDetail)}
		return r
	}
	c := u.check
	r := row{
		Profile: c.Profile, Name: c.Name, Purpose: truncate(c.GetMeta().Purpose, 200), Kind: c.Kind,
		Essential: essentialWord(c.Essential),
	}
	proto := c.Network
	if c.Transport != "" && c.Transport != proto {
		r.Kind += " over " + c.Transport // sip over tls: tcp is not all of it
	}
	if c.Range != "" {
		r.Range = c.Range
		r.Target = c.Host + " " + c.Range + "/" + proto
		p.rangeRow(&r, u, now)
		return r
	}
	r.Target = net.JoinHostPort(c.Host, strconv.Itoa(c.Port)) + "/" + proto
	e := u.entries[0]
	o, ran := e.Outcome()
	if !ran {
		r.Class, r.Badge, r.Label = classPending, "WAITING", "not run yet"
		r.Note = "waiting for its first run"
		return r
	}
	r.Class, r.Badge = verdictClass(o.Up, c.Essential)
	r.Label = string(o.Reason)
	r.Since, r.SinceFor = p.fmtTime(e.Since), forDuration(now.Sub(e.Since))
	r.Strip = p.stripPorts(e.History.Outcomes(), nil, now)
	for _, res := range e.Results {
		r.Results = append(r.Results, resultOf(res, ""))
	}
	return r
}

// rangeRow folds the ports of a range: counts per reason, the failing ports,
// one failing port's detail and path as an example, and a strip of the
// range's last runs across its ports.
func (p *statusPage) rangeRow(r *row, u *unit, now time.Time) {
	var probed, up int
	counts := map[probe.Reason]int{}
	var order []probe.Reason
	failingPorts := map[probe.Reason][]int{}
	var example *results.Entry
	var failSince, okSince time.Time
	type portOutcome struct {
		o    results.Outcome
		port int
	}
	var runs []portOutcome
	for i := range u.entries {
		e := &u.entries[i]
		o, ran := e.Outcome()
		if !ran {
			continue
		}
		for _, h := range e.History.Outcomes() {
			runs = append(runs, portOutcome{h, e.Check.Port})
		}
		probed++
		if _, seen := counts[o.Reason]; !seen {
			order = append(order, o.Reason)
		}
		counts[o.Reason]++
		if o.Up {
			up++
			if e.Since.After(okSince) {
				okSince = e.Since
			}
			continue
		}
		failingPorts[o.Reason] = append(failingPorts[o.Reason], e.Check.Port)
		if example == nil {
			example = e
		}
		if failSince.IsZero() || e.Since.Before(failSince) {
			failSince = e.Since
		}
	}
	total := len(u.entries)
	if probed == 0 {
		r.Class, r.Badge, r.Label = classPending, "WAITING", "not run yet"
		r.Note = fmt.Sprintf("%d ports, none run yet", total)
		return
	}
	allUp := up == probed
	r.Class, r.Badge = verdictClass(allUp, u.check.Essential)
	var parts []string
	for _, reason := range order {
		parts = append(parts, fmt.Sprintf("%d %s", counts[reason], reason))
	}
	summary := strings.Join(parts, ", ")
	if probed < total {
		summary += fmt.Sprintf(", %d not run yet", total-probed)
	}
	r.RangeSummary = summary
	if allUp {
		r.Label = fmt.Sprintf("all %d ports ok", total)
		if probed < total {
			r.Label = fmt.Sprintf("%d of %d ports ok, %d not run yet", probed, total, total-probed)
		}
		r.Since, r.SinceFor = p.fmtTime(okSince), forDuration(now.Sub(okSince))
	} else {
		r.Label = fmt.Sprintf("%d of %d ports fail", probed-up, probed)
		r.Since, r.SinceFor = p.fmtTime(failSince), forDuration(now.Sub(failSince))
		for _, reason := range order {
			if ports := failingPorts[reason]; len(ports) > 0 {
				r.Note += fmt.Sprintf("%s (%s): %s. ", reason, reason.Plain(), foldPorts(ports, maxPorts))
			}
		}
		r.Note = strings.TrimSpace(r.Note)
		for _, res := range example.Results {
			if !res.Up {
				r.Results = append(r.Results, resultOf(res, "e.g. port "+strconv.Itoa(example.Check.Port)))
				break
			}
		}
	}
	slices.SortStableFunc(runs, func(a, b portOutcome) int { return a.o.At.Compare(b.o.At) })
	runs = runs[max(0, len(runs)-stripLen):]
	hist := make([]results.Outcome, len(runs))
	ports := make([]int, len(runs))
	for i, po := range runs {
		hist[i], ports[i] = po.o, po.port
	}
	r.Strip = p.stripPorts(hist, ports, now)
}

// stripPorts draws the last outcomes, oldest first, padded on the left so
// every strip has the same width; ports name the port of each run of a range.
func (p *statusPage) stripPorts(h []results.Outcome, ports []int, now time.Time) []cell {
	cells := make([]cell, 0, stripLen)
	for range stripLen - len(h) {
		cells = append(cells, cell{Class: "none", Title: "no run"})
	}
	for i, o := range h {
		class := "up"
		if !o.Up {
			class = "down"
		}
		title := p.fmtShort(o.At, now) + " " + string(o.Reason)
		if ports != nil {
			title = p.fmtShort(o.At, now) + " port " + strconv.Itoa(ports[i]) + " " + string(o.Reason)
		}
		cells = append(cells, cell{Class: class, Title: title})
	}
	return cells
}

func resultOf(r probe.Result, port string) resultView {
	reason := r.Reason
	if reason == "" {
		reason = probe.ReasonInternalError
		if r.Up {
			reason = probe.ReasonOK
		}
	}
	v := resultView{
		Family: r.IPFamily, Address: r.Address, Up: r.Up, Reason: string(reason), Plain: reason.Plain(),
		Phase: string(r.Phase), Detail: truncate(r.Detail, maxDetail), Port: port,
	}
	if r.Path != nil && !r.Up {
		v.Path = pathOf(r.Path)
	}
	return v
}

// pathOf renders where the traffic stopped: the words are probe.Path's own
// phrase, the same as in the connprobe check table; the page adds the hops.
func pathOf(pa *probe.Path) *pathView {
	v := &pathView{Where: capitalize(pa.Phrase()), Control: truncate(pa.Control, maxDetail)}
	for i, h := range pa.Hops {
		if i == maxHops {
			v.More = len(pa.Hops) - i
			break
		}
		hv := hopView{Hop: h.Hop, Address: h.Address, ICMP: h.ICMP, Stop: h.Hop == pa.Hop && pa.Location != probe.PathUnknown}
		if h.Address == "" {
			hv.Address = "*"
		}
		if h.RTTSeconds > 0 {
			hv.RTT = fmt.Sprintf("%.1f ms", h.RTTSeconds*1000)
		}
		v.Hops = append(v.Hops, hv)
	}
	return v
}

func uplinkWhere(u *Uplink) string {
	switch u.Location {
	case probe.PathGateway:
		return "at your gateway " + orUnknown(u.Gateway)
	case probe.PathUpstream:
		s := "beyond your gateway " + orUnknown(u.Gateway)
		if u.Hop > 0 {
			s += fmt.Sprintf(", at hop %d", u.Hop)
			if u.Address != "" {
				s += " (" + u.Address + ")"
			}
		}
		return s
	default:
		return "somewhere on the way; where is unknown"
	}
}

// verdictClass is the row class and badge of a check with a verdict.
func verdictClass(up, essential bool) (class, badge string) {
	switch {
	case up:
		return classOK, "OK"
	case essential:
		return classFail, "FAIL"
	default:
		return classWarn, "WARN"
	}
}

func essentialWord(essential bool) string {
	if essential {
		return "essential"
	}
	return "informational"
}

// foldPorts spells ports as spans ("23100-23105, 23150"), at most max items.
func foldPorts(ports []int, limit int) string {
	ports = slices.Clone(ports)
	slices.Sort(ports)
	var items []string
	for i := 0; i < len(ports); {
		j := i
		for j+1 < len(ports) && ports[j+1] == ports[j]+1 {
			j++
		}
		if len(items) == limit {
			items = append(items, fmt.Sprintf("… %d more", len(ports)-i))
			break
		}
		if j > i {
			items = append(items, fmt.Sprintf("%d-%d", ports[i], ports[j]))
		} else {
			items = append(items, strconv.Itoa(ports[i]))
		}
		i = j + 1
	}
	return strings.Join(items, ", ")
}

// fmtTime always carries the zone: a page read from another city must not
// be misread.
func (p *statusPage) fmtTime(t time.Time) string {
	return t.In(p.location).Format("2006-01-02 15:04:05 MST")
}

// fmtShort leaves out the date of a time on the day of now.
func (p *statusPage) fmtShort(t, now time.Time) string {
	t = t.In(p.location)
	if y, m, d := t.Date(); y == now.Year() && m == now.Month() && d == now.Day() {
		return t.Format("15:04:05 MST")
	}
	return t.Format("2006-01-02 15:04:05 MST")
}

func zoneName(t time.Time) string {
	name, _ := t.Zone()
	return fmt.Sprintf("%s (UTC%s)", name, t.Format("-07:00"))
}

// forDuration says how long a state has lasted, coarsely.
func forDuration(d time.Duration) string {
	switch {
	case d < 0:
		return ""
	case d < time.Minute:
		return fmt.Sprintf("%d s", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%d min", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%d h %d min", int(d.Hours()), int(d.Minutes())%60)
	default:
		return fmt.Sprintf("%d days", int(d.Hours()/24))
	}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	// Cut at a rune boundary.
	for n > 0 && n < len(s) && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n] + "…"
}

func capitalize(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

func orUnknown(s string) string {
	if s == "" {
		return "(address unknown)"
	}
	return s
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

func boolCmp(a, b bool) int {
	switch {
	case a == b:
		return 0
	case a:
		return 1
	default:
		return -1
	}
}

package dashtest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

const (
	// labJob and labSite are the job name and site label of the lab's
	// scrape configuration.
	labJob  = "connprobe-lab"
	labSite = "lab"
	// dataDeadline bounds the wait for every required expression to
	// return data.
	dataDeadline = 60 * time.Second
)

// allowedEmpty lists the dashboard expressions that are legitimately empty
// in the healthy lab, keyed by "file|panel title|refId", with the reason.
// Every other panel expression must return data. An entry that matches no
// expression fails the test, so the list cannot go stale.
var allowedEmpty = map[string]string{
	"connprobe-overview.json|Failing essential port ranges|A":        "every port of the lab's range listens, so no range port fails",
	"connprobe-overview.json|Certificates expiring within 14 days|A": "the lab's certificate is valid for 90 days",
}

// optInPanels are the dashboard targets that show only families the agent
// exports with an opt-in flag, keyed like allowedEmpty, with the flags. The
// default-shape run allows them to be empty; the run with every flag
// (TestDashboardsAgainstPrometheusAllFamilies) requires their data.
var optInPanels = map[string]string{
	"connprobe-agent.json|NTP servers|D":                           "--metrics.ntp-details",
	"connprobe-agent.json|NTP servers|E":                           "--metrics.ntp-details",
	"connprobe-agent.json|NTP servers|F":                           "--metrics.ntp-details",
	"connprobe-agent.json|NTP servers|G":                           "--metrics.ntp-details",
	"connprobe-agent.json|NTP round-trip time and root distance|A": "--metrics.ntp-details",
	"connprobe-agent.json|NTP round-trip time and root distance|B": "--metrics.ntp-details",
	"connprobe-agent.json|TLS version and cipher|A":                "--metrics.tls-details",
	"connprobe-agent.json|TLS handshake time|A":                    "--metrics.tls-details or --metrics.phases",
}

// optInMetrics are the families the agent exports in the lab only with an
// opt-in flag; a dashboard may name them, with a fallback or in an
// optInPanels target.
var optInMetrics = map[string]string{
	"connprobe_check_phase_duration_seconds": "--metrics.phases",
	"connprobe_tls_version_info":             "--metrics.tls-details",
	"connprobe_tls_handshake_seconds":        "--metrics.tls-details",
	"connprobe_ntp_reachable":                "--metrics.ntp-details",
	"connprobe_ntp_rtt_seconds":              "--metrics.ntp-details",
	"connprobe_ntp_stratum":                  "--metrics.ntp-details",
	"connprobe_ntp_root_distance_seconds":    "--metrics.ntp-details",
	"connprobe_ntp_leap":                     "--metrics.ntp-details",
	"connprobe_ntp_kiss_code_info":           "--metrics.ntp-details (else only for a kiss-o'-death)",
	"connprobe_check_throttled":              "--metrics.ntp-details (else only while backing off or stopped)",
}

// allFamilies are the agent flags that export every opt-in family.
var allFamilies = []string{"--metrics.phases", "--metrics.tls-details", "--metrics.ntp-details"}

// alertsFiringInLab are the alerts whose expression has results in the lab,
// with the check that must be among them and why. Every other alerting
// rule's expression must be empty: the lab is healthy but for that.
var alertsFiringInLab = map[string]struct{ check, why string }{
	"ConnprobeEssentialCheckFailing": {"lab-tcp-closed", "the lab's closed port is an essential check"},
}

// recordsEmptyInLab are the recording rules without results in the lab,
// with the reason.
var recordsEmptyInLab = map[string]string{
	"connprobe:site_uplink_up": "the lab's checks are all on loopback, which gives no uplink verdict (the fleet test has one)",
}

// rangeMetricRE finds expressions about port ranges, which the lab can
// only feed when it found three consecutive free ports.
var rangeMetricRE = regexp.MustCompile(`connprobe_range_`)

// metricNameRE finds connprobe metric names in an expression (not inside a
// recording rule's name, which has colons).
var metricNameRE = regexp.MustCompile(`(?:^|[^a-zA-Z0-9_:])(connprobe_[a-zA-Z0-9_]+)`)

// expression is one PromQL expression under test.
type expression struct {
	key        string // where it comes from, for messages and the allow-list
	expr       string // with the template variables substituted
	rangeQuery bool   // a panel target Grafana runs as a range query
	allowEmpty string // why it may be empty; "" requires data
	alert      string // the alerting rule's name
	rule       bool   // a rule's expression
	// mustInclude is the check an alert expression's results must include.
	mustInclude string
	variable    bool // a template variable's query
}

// TestDashboardsAgainstPrometheus runs every expression against the agent
// in its default shape.
func TestDashboardsAgainstPrometheus(t *testing.T) { testDashboards(t, nil) }

// TestDashboardsAgainstPrometheusAllFamilies runs them against an agent
// with every opt-in family: the panels that need a flag have data, and the
// fallbacks for the default shape add no second series (the lab's known
// answers say exactly one).
func TestDashboardsAgainstPrometheusAllFamilies(t *testing.T) { testDashboards(t, allFamilies) }

func testDashboards(t *testing.T, agentFlags []string) {
	if testing.Short() {
		t.Skip("starts an agent and Prometheus")
	}
	promBin := lookTool(t, "prometheus")
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("no go tool to build the agent: %v", err)
	}
	dir := t.TempDir()
	peers := startLab(t, dir)
	if peers.rangeLo == 0 {
		t.Log("no three consecutive free loopback ports: the lab has no port range, range expressions may be empty")
	}
	agentAddr := startAgent(t, dir, goBin, peers, agentFlags...)
	optIn := len(agentFlags) > 0

	ruleFiles, err := filepath.Glob(filepath.Join(repoRoot, "deploy", "prometheus", "*rules.yml"))
	if err != nil {
		t.Fatal(err)
	}
	for i, f := range ruleFiles {
		abs, err := filepath.Abs(f)
		if err != nil {
			t.Fatal(err)
		}
		ruleFiles[i] = abs
	}
	checkRulesWithPromtool(t, ruleFiles)
	prom := startPrometheus(t, dir, promBin, agentAddr, ruleFiles)

	exprs := dashboardExpressions(t, agentAddr, peers.rangeLo != 0, optIn)
	ruleExprs := ruleExpressions(t, ruleFiles)
	exprs = append(exprs, ruleExprs...)

	// Wait until every required expression returns data; a parse error
	// fails at once.
	required := map[int]bool{}
	broken := map[int]bool{}
	for i, e := range exprs {
		if e.allowEmpty == "" {
			required[i] = true
		}
	}
	// The known answers are part of the wait: a check that has not run yet
	// is no wrong answer.
	expectations := labExpectations(peers, agentAddr)
	expected := 0
	keys := map[string]bool{}
	alerts := map[string]bool{}
	for _, e := range exprs {
		keys[e.key] = true
		alerts[e.alert] = true
		if expectations[e.key] != nil || e.mustInclude != "" {
			expected++
		}
	}
	for key := range expectations {
		if !keys[key] {
			t.Errorf("labExpectations entry %q matches no expression", key)
		}
	}
	for name := range alertsFiringInLab {
		if len(ruleFiles) > 0 && !alerts[name] {
			t.Errorf("alertsFiringInLab names %s, which no rules file defines", name)
		}
	}
	lastProblem := map[int]string{}
	deadline := time.Now().Add(dataDeadline)
	for len(required) > 0 {
		for i := range required {
			e := exprs[i]
			res, err := prom.query(e.expr)
			switch {
			case err != nil && res.errorType == "bad_data":
				t.Errorf("%s: does not parse: %v\n%s", e.key, err, e.expr)
				broken[i] = true
				delete(required, i)
			case err != nil:
				lastProblem[i] = err.Error()
			case res.data() == 0 && len(res.samples) > 0:
				lastProblem[i] = fmt.Sprintf("only NaN (%d series)", len(res.samples))
			case res.data() == 0:
				lastProblem[i] = "no data"
			default:
				if err := checkAnswer(e, expectations[e.key], res.samples); err != nil {
					lastProblem[i] = err.Error()
					continue
				}
				t.Logf("%s: %d series", e.key, len(res.samples))
				delete(required, i)
			}
		}
		if len(required) == 0 {
			break
		}
		if time.Now().After(deadline) {
			var keys []int
			for i := range required {
				keys = append(keys, i)
				broken[i] = true
			}
			sort.Ints(keys)
			for _, i := range keys {
				t.Errorf("%s: %s after %v\n%s", exprs[i].key, lastProblem[i], dataDeadline, exprs[i].expr)
			}
			t.Logf("Prometheus log:\n%s", prom.logs.String())
			break
		}
		time.Sleep(time.Second)
	}

	checkMetricNames(t, agentAddr, exprs, optIn)

	// With the data in: the allowed-empty expressions must still evaluate,
	// every panel Grafana runs as a range query must run as one, and the
	// panels with a known answer in the lab must give it.
	var allowed []string
	panels, variables := 0, 0
	for i, e := range exprs {
		switch {
		case e.rule:
		case e.variable:
			variables++
		default:
			panels++
		}
		if broken[i] {
			continue
		}
		if e.allowEmpty != "" {
			res, err := prom.query(e.expr)
			switch {
			case err != nil:
				t.Errorf("%s: %v\n%s", e.key, err, e.expr)
			case e.alert != "" && len(res.samples) > 0:
				t.Errorf("%s fires in the lab, where only the closed port fails: %v\n"+
					"if it should, add it to alertsFiringInLab\n%s", e.key, res.samples, e.expr)
			case len(res.samples) > 0:
				t.Logf("%s: allowed to be empty (%s), has %d series", e.key, e.allowEmpty, len(res.samples))
			}
			allowed = append(allowed, fmt.Sprintf("%s: %s", e.key, e.allowEmpty))
		}
		if e.rangeQuery {
			if err := prom.queryRange(e.expr, 30*time.Second); err != nil {
				t.Errorf("%s: as a range query: %v\n%s", e.key, err, e.expr)
			}
		}
	}
	if len(ruleExprs) > 0 {
		prom.checkRuleHealth(t, len(ruleExprs))
	}
	t.Logf("%d expressions evaluated: %d panel targets, %d variable queries, %d rules; "+
		"%d required data, %d checked against the lab's known answer, %d allowed empty:\n  %s",
		len(exprs), panels, variables, len(ruleExprs), len(exprs)-len(allowed), expected, len(allowed),
		strings.Join(allowed, "\n  "))
}

// checkAnswer checks an answer with data against the lab's known answer
// for e, if it has one.
func checkAnswer(e expression, want func([]sample) error, got []sample) error {
	if e.mustInclude != "" && !slices.ContainsFunc(got, func(s sample) bool { return s.labels["check"] == e.mustInclude }) {
		return fmt.Errorf("no result for check %s (%s): %v", e.mustInclude, alertsFiringInLab[e.alert].why, got)
	}
	if want != nil {
		return want(got)
	}
	return nil
}

// labExpectations are the answers some panels must give in the lab, keyed
// like allowedEmpty: they prove the panels show the right thing, not just
// something.
func labExpectations(l *lab, agentAddr string) map[string]func([]sample) error {
	one := func(match map[string]string, lo, hi float64) func([]sample) error {
		return func(ss []sample) error {
			var found []sample
			for _, s := range ss {
				ok := true
				for k, v := range match {
					ok = ok && s.labels[k] == v
				}
				if ok {
					found = append(found, s)
				}
			}
			if len(found) != 1 {
				return fmt.Errorf("want one series with %v, got %d of %v", match, len(found), ss)
			}
			if v := found[0].value; v < lo || v > hi {
				return fmt.Errorf("series %v = %v, want %v..%v", found[0].labels, v, lo, hi)
			}
			return nil
		}
	}
	only := func(match map[string]string, lo, hi float64) func([]sample) error {
		return func(ss []sample) error {
			if len(ss) != 1 {
				return fmt.Errorf("want exactly one series, got %v", ss)
			}
			return one(match, lo, hi)(ss)
		}
	}
	all := func(fs ...func([]sample) error) func([]sample) error {
		return func(ss []sample) error {
			for _, f := range fs {
				if err := f(ss); err != nil {
					return err
				}
			}
			return nil
		}
	}
	const day = 24 * 3600
	ov, ag, fl := "connprobe-overview.json|", "connprobe-agent.json|", "connprobe-fleet.json|"
	closed := map[string]string{"check": "lab-tcp-closed", "reason": "refused", "port": strconv.Itoa(l.tcpClosed)}
	m := map[string]func([]sample) error{
		// The closed port is an essential check: the site is not ready.
		ov + "Sites ready|A":              only(map[string]string{"site": labSite}, 0, 0),
		ov + "Agents scraped|A":           only(map[string]string{"instance": agentAddr}, 1, 1),
		ov + "Essential checks failing|A": only(nil, 1, 1),
		ov + "Readiness by site, agent and profile|A": all(
			one(map[string]string{"profile": "(own checks)", "site": labSite}, 0, 0),
			one(map[string]string{"profile": "lab-vendor", "site": labSite}, 1, 1)),
		ov + "variable profile":                 one(map[string]string{"profile": "lab-vendor"}, 1, 1),
		ov + "Failing essential checks|A":       only(closed, 1, 1),
		ov + "Checks by verdict reason|A":       one(map[string]string{"reason": "refused"}, 1, 1),
		ov + "NTP servers usable|A":             only(map[string]string{"check": "lab-ntp"}, 1, 1),
		ov + "Certificate expiry|A":             only(map[string]string{"check": "lab-tls"}, 89*day, 90*day),
		fl + "Sites reporting|A":                only(nil, 1, 1),
		fl + "Sites with the uplink down|A":     only(nil, 0, 0),
		fl + "Sites with a profile not ready|A": only(nil, 0, 0),
		fl + "Readiness: sites by profile|A":    only(map[string]string{"site": labSite, "profile": "lab-vendor"}, 1, 1),
		fl + "Sites|A":                          only(map[string]string{"site": labSite}, 0, 0),
		fl + "Which sites cannot reach it|A": only(map[string]string{"site": labSite, "reason": "refused",
			"port": strconv.Itoa(l.tcpClosed)}, 1, 1),
		ag + "Last configuration load|A": only(nil, 1, 1),
		ag + "All checks|A":              one(map[string]string{"check": "lab-tls", "reason": "ok"}, 1, 1),
		ag + "NTP servers|E":             only(map[string]string{"check": "lab-ntp"}, 2, 2),
		ag + "NTP servers|G":             only(map[string]string{"check": "lab-ntp"}, 0, 0),
		ag + "NTP kiss-o'-death code|A":  only(map[string]string{"kiss_code": "none"}, 1, 1),
		ag + "NTP servers|A":             only(map[string]string{"check": "lab-ntp"}, 1, 1),
		ag + "Throttled|A":               only(map[string]string{"check": "lab-ntp"}, 0, 0),
		ag + "TLS handshake time|A":      only(map[string]string{"check": "lab-tls"}, 0, 1),
		ag + "TLS version and cipher|A":  only(map[string]string{"check": "lab-tls", "version": "TLS 1.3"}, 1, 1),
	}
	if l.rangeLo != 0 {
		rng := map[string]string{"check": "lab-range", "range": fmt.Sprintf("%d-%d", l.rangeLo, l.rangeLo+2)}
		m[ov+"Range coverage|A"] = only(rng, 1, 1)
		m[ag+"Ranges|A"] = only(rng, 1, 1)
		m[ag+"Ranges|B"] = only(rng, 3, 3)
		m[ov+"Range ports by status|A"] = only(map[string]string{"check": "lab-range", "status": "ok"}, 3, 3)
	}
	return m
}

// lookTool finds a Debian prometheus package binary: skip without it,
// except in CI.
func lookTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s not installed (apt-get install prometheus), and CI is set: %v", name, err)
		}
		t.Skipf("%s not installed (apt-get install prometheus): %v", name, err)
	}
	return p
}

// dashboardExpressions returns every panel target and template variable
// query of every dashboard, substituted for the lab.
func dashboardExpressions(t *testing.T, agentAddr string, haveRange, optIn bool) []expression {
	t.Helper()
	builtins := map[string]string{
		"datasource": "prometheus", "__rate_interval": "1m", "__interval": "15s",
		"__range": "5m", "__range_s": "300", "__interval_ms": "15000",
	}
	perDashboard := map[string]map[string]string{
		// Overview: everything selected, as with "All".
		"connprobe-overview.json": {"job": labJob, "site": ".*", "instance": ".*", "profile": ".*"},
		// Agent: one concrete agent and site.
		"connprobe-agent.json": {"job": labJob, "site": labSite, "instance": agentAddr, "profile": ".*"},
		// Fleet: every site; the fleet test (fleet_test.go) runs it on many.
		"connprobe-fleet.json": {"job": labJob, "site": ".*", "instance": ".*", "profile": ".*", "host": ".*"},
	}
	used := map[string]bool{}
	var out []expression
	for _, file := range dashboardFiles {
		base := filepath.Base(file)
		vars := map[string]string{}
		for k, v := range builtins {
			vars[k] = v
		}
		for k, v := range perDashboard[base] {
			vars[k] = v
		}
		d, _ := loadDashboard(t, file)
		for _, v := range d.Templating.List {
			if v.Type != "query" {
				continue
			}
			q, err := variablePromQL(variableQuery(v))
			if err == nil {
				q, err = expandVariables(q, vars)
			}
			if err != nil {
				t.Errorf("%s variable %s: %v", base, v.Name, err)
				continue
			}
			out = append(out, expression{key: base + "|variable " + v.Name, expr: q, variable: true})
		}
		for _, p := range allPanels(d) {
			for _, tg := range p.Targets {
				key := base + "|" + p.Title + "|" + tg.RefID
				expr, err := expandVariables(tg.Expr, vars)
				if err != nil {
					t.Errorf("%s: %v", key, err)
					continue
				}
				e := expression{key: key, expr: expr, rangeQuery: !tg.Instant, allowEmpty: allowedEmpty[key]}
				used[key] = e.allowEmpty != ""
				if !haveRange && e.allowEmpty == "" && rangeMetricRE.MatchString(expr) {
					e.allowEmpty = "the lab has no port range"
				}
				if flag := optInPanels[key]; flag != "" && !optIn && e.allowEmpty == "" {
					e.allowEmpty = "needs the agent flag " + flag + " (TestDashboardsAgainstPrometheusAllFamilies has it)"
				}
				out = append(out, e)
			}
		}
	}
	for key := range allowedEmpty {
		if !used[key] {
			t.Errorf("allow-list entry %q matches no panel target", key)
		}
	}
	for key := range optInPanels {
		if _, ok := used[key]; !ok {
			t.Errorf("optInPanels entry %q matches no panel target", key)
		}
	}
	return out
}

// ruleFile is the part of a Prometheus rules file under test.
type ruleFile struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []struct {
			Record string `yaml:"record"`
			Alert  string `yaml:"alert"`
			Expr   string `yaml:"expr"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

// ruleExpressions returns the expressions of every rule. Recording rules
// must return data; an alerting rule's expression is empty when the alert
// does not fire, which is what a healthy lab should mostly show.
func ruleExpressions(t *testing.T, files []string) []expression {
	t.Helper()
	var out []expression
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var rf ruleFile
		if err := yaml.Unmarshal(b, &rf); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		for _, g := range rf.Groups {
			for _, r := range g.Rules {
				e := expression{expr: r.Expr, rule: true}
				if r.Alert != "" {
					e.key = fmt.Sprintf("%s|alert %s", filepath.Base(f), r.Alert)
					e.alert = r.Alert
					e.allowEmpty = "an alert that does not fire in the healthy lab"
					if f, ok := alertsFiringInLab[r.Alert]; ok {
						e.allowEmpty = ""
						e.mustInclude = f.check
					}
				} else {
					e.key = fmt.Sprintf("%s|record %s", filepath.Base(f), r.Record)
					e.allowEmpty = recordsEmptyInLab[r.Record]
				}
				out = append(out, e)
			}
		}
	}
	return out
}

// checkRulesWithPromtool runs promtool check rules when promtool is there:
// Prometheus would not start with a broken file.
func checkRulesWithPromtool(t *testing.T, files []string) {
	t.Helper()
	if len(files) == 0 {
		t.Log("no deploy/prometheus/*rules.yml: checking the dashboards only")
		return
	}
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, promtool, append([]string{"check", "rules"}, files...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("promtool check rules: %v\n%s", err, out)
	}
}

// checkMetricNames fails for a connprobe metric an expression names that
// the agent does not export: a typo would otherwise hide behind an
// allowed-empty expression.
// notInLab names the metrics an expression may use although the lab's agent
// cannot export them, and why; each is proven elsewhere.
var notInLab = map[string]string{
	"connprobe_uplink_up": "exists only with an uplink verdict, which needs outbound checks beyond this host's own " +
		"subnets; the lab's peers are on loopback (proven in internal/metrics and in the agent's netns lab, " +
		"TestAgentUplinkDownInLab)",
}

func checkMetricNames(t *testing.T, agentAddr string, exprs []expression, optIn bool) {
	t.Helper()
	body := httpGet(t, "http://"+agentAddr+"/metrics")
	exported := map[string]bool{}
	sc := bufio.NewScanner(strings.NewReader(body))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if i := strings.IndexAny(line, "{ "); i > 0 {
			exported[line[:i]] = true
			// A histogram is queried by its own name too (native histograms).
			if base, ok := strings.CutSuffix(line[:i], "_count"); ok {
				exported[base] = true
			}
		}
	}
	for _, e := range exprs {
		for _, m := range metricNameRE.FindAllStringSubmatch(e.expr, -1) {
			if !exported[m[1]] && notInLab[m[1]] == "" && (optIn || optInMetrics[m[1]] == "") {
				t.Errorf("%s: metric %s is not exported by the agent", e.key, m[1])
			}
		}
	}
}

// startAgent builds cmd/probe, writes the lab configuration and runs the
// agent on a loopback port until the test ends; it returns host:port.
func startAgent(t *testing.T, dir, goBin string, l *lab, flags ...string) string {
	t.Helper()
	bin := buildProbe(t, dir, goBin)

	// A profile of the lab's own, so that profile labels are not all empty.
	profilesDir := filepath.Join(dir, "profiles")
	if err := os.Mkdir(profilesDir, 0o700); err != nil {
		t.Fatal(err)
	}
	profile := `name: lab-vendor
description: the vendor of the dashboard test's lab
params:
  - {name: port, description: the vendor's TCP port, required: true, example: "443"}
checks:
  - {name: vendor-api, kind: tcp, host: 127.0.0.1, port: "${port}", direction: out, level: essential,
     purpose: the lab vendor's port answers, source: {note: the dashboard test's lab}}
`
	if err := os.WriteFile(filepath.Join(profilesDir, "lab-vendor.yml"), []byte(profile), 0o600); err != nil {
		t.Fatal(err)
	}

	var cfg strings.Builder
	fmt.Fprintf(&cfg, `defaults: {interval: 2s, timeout: 1s, ip_family: ipv4}
profiles:
  - {name: lab-vendor, params: {port: "%d"}}
checks:
  - {name: lab-tcp-open, kind: tcp, host: 127.0.0.1, port: %d}
  - {name: lab-tcp-closed, kind: tcp, host: 127.0.0.1, port: %d}
  - name: lab-tls
    kind: tls
    host: 127.0.0.1
    port: %d
    tls: {ca_file: %s}
  - {name: lab-udp-echo, kind: udp, host: 127.0.0.1, port: %d, payload: echo}
  - {name: lab-ntp, kind: ntp, host: 127.0.0.1, port: %d, interval: 2s}
`, l.tcpOpen, l.tcpOpen, l.tcpClosed, l.tls, l.caFile, l.udpEcho, l.ntp)
	if l.rangeLo != 0 {
		fmt.Fprintf(&cfg, "  - {name: lab-range, kind: tcp, host: 127.0.0.1, ports: \"%d-%d\"}\n", l.rangeLo, l.rangeLo+2)
	}
	cfgFile := filepath.Join(dir, "connprobe.yml")
	if err := os.WriteFile(cfgFile, []byte(cfg.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", freeTCPPort(t))
	logs := startProcess(t, "agent", bin, append([]string{"--config.file", cfgFile, "--profiles.dir", profilesDir,
		"--web.listen-address", addr}, flags...)...)
	waitHTTP(t, "agent", "http://"+addr+"/-/healthy", logs)
	return addr
}

// buildProbe builds cmd/probe into dir and returns the binary's path.
func buildProbe(t *testing.T, dir, goBin string) string {
	t.Helper()
	bin := filepath.Join(dir, "probe")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	build := exec.CommandContext(ctx, goBin, "build", "-o", bin, "./cmd/probe")
	build.Dir = repoRoot
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/probe: %v\n%s", err, out)
	}
	return bin
}

// promServer is a running Prometheus.
type promServer struct {
	base string
	logs *logBuffer
	// client reaches base; nil is a plain client (loopback). A Prometheus
	// in a network namespace needs one that dials inside it.
	client *http.Client
}

func (p *promServer) httpClient() *http.Client {
	if p.client != nil {
		return p.client
	}
	return &http.Client{Timeout: 10 * time.Second}
}

func startPrometheus(t *testing.T, dir, bin, agentAddr string, ruleFiles []string) *promServer {
	t.Helper()
	var cfg strings.Builder
	cfg.WriteString("global: {scrape_interval: 1s, scrape_timeout: 1s, evaluation_interval: 1s}\n")
	if len(ruleFiles) > 0 {
		cfg.WriteString("rule_files:\n")
		for _, f := range ruleFiles {
			fmt.Fprintf(&cfg, "  - %q\n", f)
		}
	}
	fmt.Fprintf(&cfg, `scrape_configs:
  - job_name: %s
    static_configs:
      - targets: [%q]
        labels: {site: %s}
`, labJob, agentAddr, labSite)
	cfgFile := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfgFile, []byte(cfg.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", freeTCPPort(t))
	logs := startProcess(t, "prometheus", bin,
		"--config.file="+cfgFile,
		// The agent's latency histogram is a native histogram (README, Metrics).
		"--enable-feature=native-histograms",
		"--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr)
	base := "http://" + addr
	waitHTTP(t, "prometheus", base+"/-/ready", logs)
	return &promServer{base: base, logs: logs}
}

// sample is one series of an instant query's answer.
type sample struct {
	labels map[string]string
	value  float64
}

// queryResult is an instant query's answer.
type queryResult struct {
	errorType string
	samples   []sample
}

// data counts the samples whose value is not NaN.
func (r queryResult) data() int {
	n := 0
	for _, s := range r.samples {
		if !math.IsNaN(s.value) {
			n++
		}
	}
	return n
}

type apiResponse struct {
	Status    string `json:"status"`
	ErrorType string `json:"errorType"`
	Error     string `json:"error"`
	Data      struct {
		ResultType string          `json:"resultType"`
		Result     json.RawMessage `json:"result"`
	} `json:"data"`
}

func (p *promServer) api(path string, form url.Values) (apiResponse, error) {
	var r apiResponse
	resp, err := p.httpClient().PostForm(p.base+path, form)
	if err != nil {
		return r, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return r, err
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return r, fmt.Errorf("HTTP %d: %v: %.200s", resp.StatusCode, err, b)
	}
	if r.Status != "success" {
		return r, fmt.Errorf("%s: %s", r.ErrorType, r.Error)
	}
	return r, nil
}

// query runs an instant query now.
func (p *promServer) query(expr string) (queryResult, error) {
	r, err := p.api("/api/v1/query", url.Values{"query": {expr}})
	res := queryResult{errorType: r.ErrorType}
	if err != nil {
		return res, err
	}
	parse := func(v any) float64 {
		s, _ := v.(string)
		f, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return math.NaN()
		}
		return f
	}
	switch r.Data.ResultType {
	case "vector":
		var v []struct {
			Metric map[string]string `json:"metric"`
			Value  [2]any            `json:"value"`
		}
		if err := json.Unmarshal(r.Data.Result, &v); err != nil {
			return res, err
		}
		for _, s := range v {
			res.samples = append(res.samples, sample{labels: s.Metric, value: parse(s.Value[1])})
		}
	case "scalar":
		var v [2]any
		if err := json.Unmarshal(r.Data.Result, &v); err != nil {
			return res, err
		}
		res.samples = []sample{{value: parse(v[1])}}
	default:
		return res, fmt.Errorf("unexpected result type %q", r.Data.ResultType)
	}
	return res, nil
}

// queryRange runs expr as a range query over the last span, as a
// time-series panel would.
func (p *promServer) queryRange(expr string, span time.Duration) error {
	end := time.Now()
	_, err := p.api("/api/v1/query_range", url.Values{
		"query": {expr},
		"start": {strconv.FormatInt(end.Add(-span).Unix(), 10)},
		"end":   {strconv.FormatInt(end.Unix(), 10)},
		"step":  {"1"},
	})
	return err
}

// checkRuleHealth waits (bounded) until Prometheus has evaluated every rule
// and fails for a rule whose evaluation failed.
func (p *promServer) checkRuleHealth(t *testing.T, want int) {
	t.Helper()
	type rule struct {
		Name      string `json:"name"`
		Health    string `json:"health"`
		LastError string `json:"lastError"`
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := p.httpClient().Get(p.base + "/api/v1/rules")
		if err != nil {
			t.Fatal(err)
		}
		var r struct {
			Data struct {
				Groups []struct {
					Rules []rule `json:"rules"`
				} `json:"groups"`
			} `json:"data"`
		}
		err = json.NewDecoder(resp.Body).Decode(&r)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		var rules []rule
		unknown := 0
		for _, g := range r.Data.Groups {
			for _, ru := range g.Rules {
				rules = append(rules, ru)
				if ru.Health == "unknown" {
					unknown++
				}
			}
		}
		if len(rules) != want {
			t.Errorf("Prometheus loaded %d rules, the files have %d", len(rules), want)
			return
		}
		if unknown == 0 || time.Now().After(deadline) {
			for _, ru := range rules {
				if ru.Health != "ok" {
					t.Errorf("rule %s: health %q: %s", ru.Name, ru.Health, ru.LastError)
				}
			}
			return
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// logBuffer collects a process's output for failure messages.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.buf.Len() > 1<<20 {
		return len(p), nil
	}
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// startProcess runs bin until the test ends: SIGTERM, then SIGKILL after 10s.
func startProcess(t *testing.T, name, bin string, args ...string) *logBuffer {
	t.Helper()
	logs := &logBuffer{}
	cmd := exec.Command(bin, args...)
	cmd.Stdout = logs
	cmd.Stderr = logs
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			t.Errorf("%s did not stop within 10s of SIGTERM; killing it", name)
			_ = cmd.Process.Kill()
			select {
			case <-exited:
			case <-time.After(5 * time.Second):
				t.Errorf("%s survived SIGKILL for 5s", name)
			}
		}
	})
	return logs
}

// waitHTTP waits (bounded) until url answers 200.
func waitHTTP(t *testing.T, name, url string, logs *logBuffer) {
	t.Helper()
	waitHTTPVia(t, &http.Client{Timeout: 2 * time.Second}, 30*time.Second, name, url, logs)
}

// waitHTTPVia is waitHTTP with a client of the caller's and a bound.
func waitHTTPVia(t *testing.T, client *http.Client, bound time.Duration, name, url string, logs *logBuffer) {
	t.Helper()
	deadline := time.Now().Add(bound)
	for time.Now().Before(deadline) {
		resp, err := client.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("%s: %s not ready within %v\n%s", name, url, bound, logs.String())
}

func httpGet(t *testing.T, url string) string {
	t.Helper()
	client := &http.Client{Timeout: 10 * time.Second}
	resp, err := client.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

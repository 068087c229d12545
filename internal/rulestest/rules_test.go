package rulestest

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

const (
	rulesFile   = "deploy/prometheus/connprobe-rules.yml"
	testsFile   = "deploy/prometheus/connprobe-rules.test.yml"
	configFile  = "deploy/prometheus/prometheus.yml"
	agentFile   = "deploy/prometheus/prometheus-agent.yml"
	amFile      = "deploy/prometheus/alertmanager.yml"
	readmeFile  = "README.md"
	runbookBase = "https://github.com/connprobe/connprobe/blob/main/README.md#"
)

var severities = []string{"critical", "warning", "info"}

// repoRoot walks up from the test's working directory to the directory
// holding go.mod.
func repoRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the working directory")
		}
		dir = parent
	}
}

// promtool returns the path of promtool, skipping the test without it
// (failing it when CI is set: CI installs the prometheus package).
func promtool(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("promtool")
	if err != nil {
		msg := "promtool not found (apt-get install prometheus): " + err.Error()
		if os.Getenv("CI") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return path
}

// runPromtool runs promtool with args from the repository root and fails
// the test with its output unless it succeeds.
func runPromtool(t *testing.T, args ...string) {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), promtool(t), args...)
	cmd.Dir = repoRoot(t)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

func TestPromtoolCheckRules(t *testing.T) {
	runPromtool(t, "check", "rules", rulesFile)
}

func TestPromtoolTestRules(t *testing.T) {
	runPromtool(t, "test", "rules", testsFile)
}

func TestPromtoolCheckConfig(t *testing.T) {
	// Also checks the rule files the configuration names.
	runPromtool(t, "check", "config", configFile)
}

func TestPromtoolCheckAgentConfig(t *testing.T) {
	help, err := exec.CommandContext(t.Context(), promtool(t), "check", "config", "--help").CombinedOutput()
	if err != nil {
		t.Fatalf("promtool check config --help: %v\n%s", err, help)
	}
	if !bytes.Contains(help, []byte("--agent")) {
		t.Skip("this promtool has no `check config --agent` (added in Prometheus 2.32)")
	}
	runPromtool(t, "check", "config", "--agent", agentFile)
}

// TestAmtoolCheckConfig checks the example Alertmanager configuration when
// amtool (Debian's prometheus-alertmanager) is installed; CI does not
// install it, so it skips there too.
func TestAmtoolCheckConfig(t *testing.T) {
	amtool, err := exec.LookPath("amtool")
	if err != nil {
		t.Skip("amtool not found (apt-get install prometheus-alertmanager): " + err.Error())
	}
	cmd := exec.CommandContext(t.Context(), amtool, "check-config", amFile)
	cmd.Dir = repoRoot(t)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("amtool check-config %s: %v\n%s", amFile, err, out)
	}
}

type ruleFile struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []rule `yaml:"rules"`
	} `yaml:"groups"`
}

type rule struct {
	Alert       string            `yaml:"alert"`
	Record      string            `yaml:"record"`
	Expr        string            `yaml:"expr"`
	For         string            `yaml:"for"`
	Labels      map[string]string `yaml:"labels"`
	Annotations map[string]string `yaml:"annotations"`
}

type testFile struct {
	RuleFiles []string `yaml:"rule_files"`
	Tests     []struct {
		Name          string `yaml:"name"`
		AlertRuleTest []struct {
			Alertname string `yaml:"alertname"`
			ExpAlerts []struct {
				ExpLabels map[string]string `yaml:"exp_labels"`
			} `yaml:"exp_alerts"`
		} `yaml:"alert_rule_test"`
		PromQLExprTest []struct {
			Expr string `yaml:"expr"`
		} `yaml:"promql_expr_test"`
	} `yaml:"tests"`
}

func readYAML(t *testing.T, name string, v any) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(repoRoot(t), name))
	if err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(false)
	if err := dec.Decode(v); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
}

// alerts returns every alerting rule, and the sorted distinct alert names.
func alerts(t *testing.T) ([]rule, []string) {
	t.Helper()
	var rf ruleFile
	readYAML(t, rulesFile, &rf)
	var rules []rule
	var names []string
	for _, g := range rf.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" {
				continue
			}
			rules = append(rules, r)
			if !slices.Contains(names, r.Alert) {
				names = append(names, r.Alert)
			}
		}
	}
	if len(rules) == 0 {
		t.Fatalf("%s has no alerting rules", rulesFile)
	}
	slices.Sort(names)
	return rules, names
}

// TestEveryAlertTested requires, for every alert, a test where it fires and
// one where it does not, and a test of every recording rule's output.
func TestEveryAlertTested(t *testing.T) {
	_, names := alerts(t)
	var tf testFile
	readYAML(t, testsFile, &tf)
	if !slices.Contains(tf.RuleFiles, filepath.Base(rulesFile)) {
		t.Errorf("%s does not load %s (rule_files: %v)", testsFile, filepath.Base(rulesFile), tf.RuleFiles)
	}
	firing := map[string]bool{}
	quiet := map[string]bool{}
	exprs := ""
	for _, tc := range tf.Tests {
		for _, a := range tc.AlertRuleTest {
			if len(a.ExpAlerts) == 0 {
				quiet[a.Alertname] = true
			}
			for _, e := range a.ExpAlerts {
				// exp_labels may name the alert too; the test's alertname
				// is what promtool evaluates.
				if n := e.ExpLabels["alertname"]; n != "" && n != a.Alertname {
					t.Errorf("test %q: exp_labels alertname %q under alertname %q", tc.Name, n, a.Alertname)
				}
				firing[a.Alertname] = true
			}
		}
		for _, p := range tc.PromQLExprTest {
			exprs += p.Expr + "\n"
		}
	}
	for _, n := range names {
		if !firing[n] {
			t.Errorf("alert %s: no test case where it fires (exp_alerts)", n)
		}
		if !quiet[n] {
			t.Errorf("alert %s: no test case where it does not fire (exp_alerts: [])", n)
		}
	}
	for n := range firing {
		if !slices.Contains(names, n) {
			t.Errorf("%s tests alert %s, which %s does not define", testsFile, n, rulesFile)
		}
	}

	var rf ruleFile
	readYAML(t, rulesFile, &rf)
	for _, g := range rf.Groups {
		for _, r := range g.Rules {
			if r.Record == "" {
				continue
			}
			if !regexp.MustCompile(`(^|[^a-zA-Z0-9_:])` + regexp.QuoteMeta(r.Record) + `($|[^a-zA-Z0-9_:])`).MatchString(exprs) {
				t.Errorf("recording rule %s: no promql_expr_test evaluates it", r.Record)
			}
		}
	}
}

// TestAlertsAnnotated requires a severity and the annotations every
// notification needs, with a runbook link to the alert's README section.
func TestAlertsAnnotated(t *testing.T) {
	rules, _ := alerts(t)
	for _, r := range rules {
		if s := r.Labels["severity"]; !slices.Contains(severities, s) {
			t.Errorf("alert %s: severity %q, want one of %v", r.Alert, s, severities)
		}
		for _, a := range []string{"summary", "description", "runbook_url"} {
			if strings.TrimSpace(r.Annotations[a]) == "" {
				t.Errorf("alert %s: no %s annotation", r.Alert, a)
			}
		}
		if got, want := r.Annotations["runbook_url"], runbookBase+anchor(r.Alert); got != want {
			t.Errorf("alert %s: runbook_url %q, want %q", r.Alert, got, want)
		}
	}
}

// anchor is the fragment GitHub gives a heading: lower case, punctuation
// other than '-' and '_' dropped, spaces as '-'.
func anchor(heading string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(strings.TrimSpace(heading)) {
		switch {
		case r == ' ':
			b.WriteRune('-')
		case r == '-' || r == '_' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9':
			b.WriteRune(r)
		}
	}
	return b.String()
}

// readmeSection returns the lines of the "## title" section of README.md,
// up to the next "## " heading.
func readmeSection(t *testing.T, title string) ([]string, error) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(repoRoot(t), readmeFile))
	if err != nil {
		t.Fatal(err)
	}
	var section []string
	in := false
	for line := range strings.Lines(string(data)) {
		line = strings.TrimRight(line, "\r\n")
		if strings.HasPrefix(line, "## ") {
			if in {
				break
			}
			in = strings.TrimSpace(strings.TrimPrefix(line, "## ")) == title
			continue
		}
		if in {
			section = append(section, line)
		}
	}
	if !in {
		return nil, errors.New("README.md has no section ## " + title)
	}
	return section, nil
}

// TestRunbookInREADME requires a "### AlertName" subsection of "## Runbook"
// for every alert, and a mention of it in "## Alerts".
func TestRunbookInREADME(t *testing.T) {
	_, names := alerts(t)
	runbook, err := readmeSection(t, "Runbook")
	if err != nil {
		t.Fatal(err)
	}
	var headings []string
	for _, l := range runbook {
		if h, ok := strings.CutPrefix(l, "### "); ok {
			headings = append(headings, strings.TrimSpace(h))
		}
	}
	for _, n := range names {
		if !slices.Contains(headings, n) {
			t.Errorf("README.md ## Runbook has no ### %s", n)
		}
	}
	for _, h := range headings {
		if !slices.Contains(names, h) {
			t.Errorf("README.md ## Runbook has ### %s, which is no alert in %s", h, rulesFile)
		}
	}

	list, err := readmeSection(t, "Alerts")
	if err != nil {
		t.Fatal(err)
	}
	text := strings.Join(list, "\n")
	for _, n := range names {
		if !strings.Contains(text, "`"+n+"`") && !strings.Contains(text, "["+n+"]") {
			t.Errorf("README.md ## Alerts does not list %s", n)
		}
	}
}

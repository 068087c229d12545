package dashtest

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// repoRoot is the repository root, seen from this package's directory.
const repoRoot = "../.."

// dashboardFiles are the dashboards under test, relative to the root.
var dashboardFiles = []string{
	"dashboards/connprobe-overview.json",
	"dashboards/connprobe-agent.json",
	"dashboards/connprobe-fleet.json",
}

// requiredVariables must be template variables of every dashboard.
var requiredVariables = []string{"datasource", "job", "site", "instance", "profile"}

const datasourceUID = "${datasource}"

type dashboard struct {
	UID           string          `json:"uid"`
	Title         string          `json:"title"`
	SchemaVersion int             `json:"schemaVersion"`
	Inputs        json.RawMessage `json:"__inputs"`
	Templating    struct {
		List []variable `json:"list"`
	} `json:"templating"`
	Panels []panel `json:"panels"`
}

type datasourceRef struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

type variable struct {
	Name       string          `json:"name"`
	Type       string          `json:"type"`
	Query      json.RawMessage `json:"query"`
	Datasource *datasourceRef  `json:"datasource"`
	Multi      bool            `json:"multi"`
	IncludeAll bool            `json:"includeAll"`
	AllValue   string          `json:"allValue"`
}

type panel struct {
	ID          int            `json:"id"`
	Type        string         `json:"type"`
	Title       string         `json:"title"`
	Description string         `json:"description"`
	Datasource  *datasourceRef `json:"datasource"`
	FieldConfig struct {
		Defaults struct {
			Unit string `json:"unit"`
		} `json:"defaults"`
	} `json:"fieldConfig"`
	Targets []target `json:"targets"`
	Panels  []panel  `json:"panels"` // of a collapsed row
}

type target struct {
	RefID      string         `json:"refId"`
	Expr       string         `json:"expr"`
	Datasource *datasourceRef `json:"datasource"`
	Instant    bool           `json:"instant"`
}

// loadDashboard reads and decodes one dashboard, failing the test on invalid
// JSON; raw is the file's text.
func loadDashboard(t *testing.T, file string) (d dashboard, raw string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, file))
	if err != nil {
		t.Fatal(err)
	}
	if !json.Valid(b) {
		var v any
		err := json.Unmarshal(b, &v)
		t.Fatalf("%s: invalid JSON: %v", file, err)
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	return d, string(b)
}

// allPanels is the dashboard's panels, those of collapsed rows included.
func allPanels(d dashboard) []panel {
	var out []panel
	var walk func([]panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			out = append(out, p)
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	return out
}

// variableQuery is the query string of a query variable (Grafana stores it
// as a string or as an object with a "query" field).
func variableQuery(v variable) string {
	var s string
	if json.Unmarshal(v.Query, &s) == nil {
		return s
	}
	var o struct {
		Query string `json:"query"`
	}
	if json.Unmarshal(v.Query, &o) == nil {
		return o.Query
	}
	return ""
}

// labelValuesRE matches Grafana's label_values(selector, label).
var labelValuesRE = regexp.MustCompile(`^\s*label_values\(\s*(.+)\s*,\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\)\s*$`)

// variablePromQL turns a label_values variable query into the PromQL whose
// result lists the same values.
func variablePromQL(q string) (string, error) {
	m := labelValuesRE.FindStringSubmatch(q)
	if m == nil {
		return "", fmt.Errorf("not label_values(selector, label): %q", q)
	}
	return fmt.Sprintf("group by (%s) (%s)", m[2], m[1]), nil
}

// noUnitPanels carry no values, hence no unit.
var noUnitPanels = []string{"row", "text"}

func TestDashboardsStatic(t *testing.T) {
	for _, file := range dashboardFiles {
		t.Run(filepath.Base(file), func(t *testing.T) {
			d, raw := loadDashboard(t, file)
			if d.UID == "" || d.Title == "" {
				t.Errorf("uid %q, title %q: both are required", d.UID, d.Title)
			}
			if d.SchemaVersion < 36 {
				t.Errorf("schemaVersion %d: want at least 36 (datasource references by uid)", d.SchemaVersion)
			}
			if len(d.Inputs) > 0 {
				t.Errorf("__inputs present: the dashboards use the datasource variable, not import inputs")
			}
			if strings.Contains(raw, "${DS_") {
				t.Errorf("contains a ${DS_...} import placeholder")
			}

			vars := map[string]variable{}
			for _, v := range d.Templating.List {
				vars[v.Name] = v
			}
			for _, name := range requiredVariables {
				if _, ok := vars[name]; !ok {
					t.Errorf("template variable %q missing", name)
				}
			}
			if ds := vars["datasource"]; ds.Type != "datasource" || string(ds.Query) != `"prometheus"` {
				t.Errorf("datasource variable: type %q query %s, want type datasource, query prometheus", ds.Type, ds.Query)
			}
			for _, v := range d.Templating.List {
				if v.Type != "query" {
					continue
				}
				checkDatasource(t, "variable "+v.Name, v.Datasource)
				if _, err := variablePromQL(variableQuery(v)); err != nil {
					t.Errorf("variable %s: %v", v.Name, err)
				}
				if v.IncludeAll && v.AllValue != ".*" {
					t.Errorf("variable %s: allValue %q, want .* (an empty label value must match All)", v.Name, v.AllValue)
				}
			}

			titles := map[string]bool{}
			for _, p := range allPanels(d) {
				where := fmt.Sprintf("panel %d %q", p.ID, p.Title)
				if p.Title == "" {
					t.Errorf("panel %d: no title", p.ID)
				}
				if titles[p.Title] && p.Type != "row" {
					t.Errorf("%s: duplicate title (the allow-list is keyed by title)", where)
				}
				titles[p.Title] = true
				if slices.Contains(noUnitPanels, p.Type) {
					continue
				}
				if strings.TrimSpace(p.Description) == "" {
					t.Errorf("%s: no description", where)
				}
				if p.FieldConfig.Defaults.Unit == "" {
					t.Errorf("%s: no unit (fieldConfig.defaults.unit)", where)
				}
				checkDatasource(t, where, p.Datasource)
				if len(p.Targets) == 0 {
					t.Errorf("%s: no targets", where)
				}
				for _, tg := range p.Targets {
					tw := where + " target " + tg.RefID
					checkDatasource(t, tw, tg.Datasource)
					if strings.TrimSpace(tg.Expr) == "" {
						t.Errorf("%s: empty expr", tw)
					}
					for _, c := range countersOutsideRate(tg.Expr) {
						t.Errorf("%s: counter %s outside rate()/increase() in %q", tw, c, tg.Expr)
					}
				}
			}
		})
	}
}

func checkDatasource(t *testing.T, where string, ds *datasourceRef) {
	t.Helper()
	if ds == nil || ds.Type != "prometheus" || ds.UID != datasourceUID {
		t.Errorf("%s: datasource %+v, want {prometheus %s}", where, ds, datasourceUID)
	}
}

// counterSuffixes mark the series of counters and of histograms' counters.
var counterSuffixes = []string{"_total", "_bucket", "_count", "_sum"}

// counterFunctions are the only functions a counter may be passed to.
var counterFunctions = []string{"rate", "irate", "increase"}

// countersOutsideRate returns the counter series named in expr that are not
// inside a rate(), irate() or increase() call. It is a scanner, not a
// parser: string literals are blanked, then each identifier ending in a
// counter suffix (and not called as a function) must have one of the
// counter functions among its enclosing calls.
func countersOutsideRate(expr string) []string {
	s := []byte(blankStrings(expr))
	var calls []string // the function (or keyword) before each open '('
	var out []string
	isIdent := func(c byte, first bool) bool {
		return c == '_' || c == ':' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || !first && c >= '0' && c <= '9'
	}
	prevIdent := ""
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case isIdent(c, true):
			j := i
			for j < len(s) && isIdent(s[j], false) {
				j++
			}
			name := string(s[i:j])
			next := j
			for next < len(s) && (s[next] == ' ' || s[next] == '\t' || s[next] == '\n') {
				next++
			}
			called := next < len(s) && s[next] == '('
			if !called && hasCounterSuffix(name) && !slices.ContainsFunc(calls, func(f string) bool {
				return slices.Contains(counterFunctions, f)
			}) {
				out = append(out, name)
			}
			prevIdent = name
			i = j
			continue
		case c == '(':
			calls = append(calls, prevIdent)
		case c == ')':
			if len(calls) > 0 {
				calls = calls[:len(calls)-1]
			}
		}
		if c != ' ' && c != '\t' && c != '\n' {
			prevIdent = ""
		}
		i++
	}
	return out
}

func hasCounterSuffix(name string) bool {
	return slices.ContainsFunc(counterSuffixes, func(suf string) bool { return strings.HasSuffix(name, suf) })
}

// blankStrings replaces the contents of PromQL string literals with spaces,
// keeping the quotes and every position.
func blankStrings(expr string) string {
	b := []byte(expr)
	var quote byte
	for i := 0; i < len(b); i++ {
		c := b[i]
		switch {
		case quote == 0 && (c == '"' || c == '\'' || c == '`'):
			quote = c
		case quote != 0 && c == '\\' && quote != '`' && i+1 < len(b):
			b[i], b[i+1] = ' ', ' '
			i++
		case quote != 0 && c == quote:
			quote = 0
		case quote != 0:
			b[i] = ' '
		}
	}
	return string(b)
}

func TestCountersOutsideRate(t *testing.T) {
	for _, tc := range []struct {
		expr string
		want []string
	}{
		{`rate(connprobe_check_runs_total[5m])`, nil},
		{`sum by (reason) (increase(connprobe_check_runs_total{reason!="ok"}[$__range]))`, nil},
		{`histogram_quantile(0.9, sum by (le) (rate(connprobe_check_latency_seconds_bucket[5m])))`, nil},
		{`connprobe_check_runs_total`, []string{"connprobe_check_runs_total"}},
		{`sum(connprobe_check_overruns_total) > 0`, []string{"connprobe_check_overruns_total"}},
		{`rate(x[5m]) + connprobe_check_latency_seconds_count`, []string{"connprobe_check_latency_seconds_count"}},
		{`connprobe_check_up{check="a_total"}`, nil},
		{`label_replace(up, "x_total", "$1", "instance", "(.*)")`, nil},
	} {
		if got := countersOutsideRate(tc.expr); !slices.Equal(got, tc.want) {
			t.Errorf("countersOutsideRate(%q) = %q, want %q", tc.expr, got, tc.want)
		}
	}
}

// templateVarRE matches $name and ${name} (with an optional :format).
var templateVarRE = regexp.MustCompile(`\$\{([a-zA-Z_][a-zA-Z0-9_]*)(?::[a-z]+)?\}|\$([a-zA-Z_][a-zA-Z0-9_]*)`)

// expandVariables substitutes Grafana's template and built-in variables;
// an unknown variable is an error.
func expandVariables(expr string, vars map[string]string) (string, error) {
	var missing []string
	out := templateVarRE.ReplaceAllStringFunc(expr, func(m string) string {
		sm := templateVarRE.FindStringSubmatch(m)
		name := sm[1] + sm[2]
		v, ok := vars[name]
		if !ok {
			missing = append(missing, name)
			return m
		}
		return v
	})
	if len(missing) > 0 {
		return "", fmt.Errorf("unknown variables %q", missing)
	}
	return out, nil
}

func TestExpandVariables(t *testing.T) {
	vars := map[string]string{"job": "j", "__range": "5m", "__rate_interval": "1m"}
	got, err := expandVariables(`increase(x{job=~"$job"}[$__range]) / rate(x{job="${job}"}[$__rate_interval])`, vars)
	if want := `increase(x{job=~"j"}[5m]) / rate(x{job="j"}[1m])`; err != nil || got != want {
		t.Errorf("got %q, %v; want %q", got, err, want)
	}
	if _, err := expandVariables(`x{a="$nope"}`, vars); err == nil {
		t.Error("unknown variable: no error")
	}
}

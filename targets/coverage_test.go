package targets

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"

	"go.yaml.in/yaml/v4"
)

// The built-in profiles must trace back to the vendors' port tables in
// shared/vendor-docs/README.md (beside the repository): every table row is
// turned into a check or excluded with a reason, every check cites a row (or
// says why it was added), and no check probes a host the documents do not
// name unless it is a param. These tests read the profile files themselves
// with a plain YAML decoder, so they hold whatever the loader accepts.

// vendorTables lists the Markdown tables of the vendor README in order, with
// the document each one is extracted from. The first table indexes the
// documents and holds no ports. A README with more or fewer tables fails, so
// that a new vendor table cannot go unnoticed.
var vendorTables = []struct {
	id, document string
}{
	{"documents", ""},
	{"clover", "clover-pos-ports.de.txt"},
	{"timesensor-classic", "timesensor-legal-ports.de.txt"},
	{"timesensor-365-server", "timesensor-legal-ports.de.txt"},
	{"timesensor-365-client", "timesensor-legal-ports.de.txt"},
	{"kaspersky-outbound", "kaspersky-ksc-cloud-ports.de.txt"},
	{"kaspersky-agent-inbound", "kaspersky-ksc-cloud-ports.de.txt"},
	{"kaspersky-dp-inbound", "kaspersky-ksc-cloud-ports.de.txt"},
}

// wantProfiles are the built-in profiles this issue defines.
var wantProfiles = []string{
	"clover",
	"kaspersky-ksc-cloud-agent",
	"kaspersky-ksc-cloud-client",
	"kaspersky-ksc-cloud-distribution-point",
	"timesensor-legal-365-client",
	"timesensor-legal-365-server",
	"timesensor-legal-classic",
}

// vendorRow is one row of a port table: its id is "PORT/PROTO", the first
// two cells exactly as written.
type vendorRow struct {
	table, id, dir, level string
	line                  int
}

type vendorDocs struct {
	rows      map[[2]string]vendorRow // (table id, row id)
	documents map[string]bool         // file names in the documents table
	tableDoc  map[string]string       // table id -> document
}

// vendorReadme finds shared/vendor-docs/README.md in a parent directory of
// the working directory (CI has shared/ beside the clone).
func vendorReadme(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("CONNPROBE_VENDOR_DOCS"); p != "" {
		return p
	}
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		p := filepath.Join(dir, "shared", "vendor-docs", "README.md")
		if _, err := os.Stat(p); err == nil {
			return p
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			break
		}
		dir = parent
	}
	msg := "shared/vendor-docs/README.md not found in a parent directory of the repository " +
		"(or set CONNPROBE_VENDOR_DOCS); the profile coverage cannot be checked"
	if os.Getenv("CI") != "" {
		t.Fatal(msg + "; CI must have shared/ beside the clone")
	}
	t.Skip(msg)
	return ""
}

// splitRow splits a Markdown table line into trimmed cells.
func splitRow(line string) []string {
	line = strings.TrimSpace(line)
	line = strings.TrimPrefix(line, "|")
	line = strings.TrimSuffix(line, "|")
	cells := strings.Split(line, "|")
	for i := range cells {
		cells[i] = strings.TrimSpace(cells[i])
	}
	return cells
}

var separatorRow = regexp.MustCompile(`^\|(\s*:?-{3,}:?\s*\|)+\s*$`)

// parseVendorReadme maps the README's tables, in order, to vendorTables.
func parseVendorReadme(t *testing.T, path string) vendorDocs {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}

	docs := vendorDocs{rows: map[[2]string]vendorRow{}, documents: map[string]bool{}, tableDoc: map[string]string{}}
	table := -1
	for i := 0; i < len(lines); i++ {
		if !strings.HasPrefix(strings.TrimSpace(lines[i]), "|") || i+1 >= len(lines) || !separatorRow.MatchString(strings.TrimSpace(lines[i+1])) {
			continue
		}
		table++
		header := splitRow(lines[i])
		if table >= len(vendorTables) {
			t.Fatalf("%s:%d: table %d (header %q) is more than the %d tables this test knows; add its id to vendorTables",
				path, i+1, table+1, header, len(vendorTables))
		}
		id := vendorTables[table].id
		docs.tableDoc[id] = vendorTables[table].document
		i += 2
		for ; i < len(lines) && strings.HasPrefix(strings.TrimSpace(lines[i]), "|"); i++ {
			cells := splitRow(lines[i])
			if len(cells) != len(header) {
				t.Fatalf("%s:%d: %d cells under a header of %d", path, i+1, len(cells), len(header))
			}
			if id == "documents" {
				if header[0] != "file" {
					t.Fatalf("%s:%d: the first table should index the documents (file | product), got header %q", path, i+1, header)
				}
				docs.documents[cells[0]] = true
				continue
			}
			if len(header) != 5 || header[0] != "port" || header[1] != "proto" || header[2] != "dir" {
				t.Fatalf("%s:%d: table %q has header %q, want port | proto | dir | purpose | level", path, i+1, id, header)
			}
			row := vendorRow{table: id, id: cells[0] + "/" + cells[1], dir: cells[2], level: cells[4], line: i + 1}
			key := [2]string{id, row.id}
			if prev, dup := docs.rows[key]; dup {
				t.Fatalf("%s:%d: row %q of table %q also at line %d; row ids must be unique", path, i+1, row.id, id, prev.line)
			}
			docs.rows[key] = row
		}
	}
	if table+1 != len(vendorTables) {
		t.Fatalf("%s has %d tables, this test knows %d (%v): a table was added or removed; update vendorTables and the profiles",
			path, table+1, len(vendorTables), vendorTables)
	}
	for _, vt := range vendorTables {
		if vt.document != "" && !docs.documents[vt.document] {
			t.Errorf("table %q is attributed to %s, which the documents table does not list", vt.id, vt.document)
		}
	}
	for doc := range docs.documents {
		if _, err := os.Stat(filepath.Join(filepath.Dir(path), doc)); err != nil {
			t.Errorf("the documents table lists %s, but it is not beside the README: %v", doc, err)
		}
	}
	return docs
}

// docLevel maps a row's level cell to the schema's levels.
func docLevel(cell string) string {
	c := strings.ToLower(cell)
	switch {
	case strings.HasPrefix(c, "essential"), strings.HasPrefix(c, "required"):
		return "essential"
	case strings.HasPrefix(c, "recommended"):
		return "recommended"
	case strings.HasPrefix(c, "conditional"), strings.HasPrefix(c, "only "), strings.HasPrefix(c, "if "):
		return "conditional"
	}
	return ""
}

// The profile schema, as far as these tests need it.
type covSource struct {
	Document string `yaml:"document"`
	Table    string `yaml:"table"`
	Row      string `yaml:"row"`
	Note     string `yaml:"note"`
}

type covParam struct {
	Name          string `yaml:"name"`
	Description   string `yaml:"description"`
	Type          string `yaml:"type"`
	Default       string `yaml:"default"`
	DefaultSource string `yaml:"default_source"`
	Required      bool   `yaml:"required"`
	Example       string `yaml:"example"`
}

type covCheck struct {
	Name      string    `yaml:"name"`
	Kind      string    `yaml:"kind"`
	Host      string    `yaml:"host"`
	Port      string    `yaml:"port"`
	Ports     string    `yaml:"ports"`
	Essential *bool     `yaml:"essential"`
	Direction string    `yaml:"direction"`
	Level     string    `yaml:"level"`
	When      string    `yaml:"when"`
	Purpose   string    `yaml:"purpose"`
	Source    covSource `yaml:"source"`
}

type covProfile struct {
	file        string
	Name        string    `yaml:"name"`
	Description string    `yaml:"description"`
	Source      covSource `yaml:"source"`
	NotCovered  []struct {
		Table string `yaml:"table"`
		Row   string `yaml:"row"`
		Why   string `yaml:"why"`
	} `yaml:"not_covered"`
	Params []covParam `yaml:"params"`
	Checks []covCheck `yaml:"checks"`
}

func (p *covProfile) param(name string) (covParam, bool) {
	for _, prm := range p.Params {
		if prm.Name == name {
			return prm, true
		}
	}
	return covParam{}, false
}

// readProfileFiles decodes every built-in profile file.
func readProfileFiles(t *testing.T) []covProfile {
	t.Helper()
	files, err := filepath.Glob("profiles/*.y*ml")
	if err != nil {
		t.Fatal(err)
	}
	var out []covProfile
	for _, f := range files {
		if !isProfileFile(filepath.Base(f)) {
			continue
		}
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var p covProfile
		if err := yaml.Unmarshal(data, &p); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		p.file = f
		out = append(out, p)
	}
	var names []string
	for _, p := range out {
		names = append(names, p.Name)
	}
	sort.Strings(names)
	if strings.Join(names, " ") != strings.Join(wantProfiles, " ") {
		t.Errorf("built-in profiles %v, want %v", names, wantProfiles)
	}
	return out
}

var paramRef = regexp.MustCompile(`^\$\{([a-z][a-z0-9_]*)\}$`)

func TestProfilesCoverVendorDocs(t *testing.T) {
	docs := parseVendorReadme(t, vendorReadme(t))
	profiles := readProfileFiles(t)

	covered := map[[2]string][]string{}
	for _, p := range profiles {
		where := p.file
		if p.Description == "" {
			t.Errorf("%s: no description", where)
		}
		if !docs.documents[p.Source.Document] {
			t.Errorf("%s: source.document %q is not one of the vendor documents", where, p.Source.Document)
		}
		for _, nc := range p.NotCovered {
			key := [2]string{nc.Table, nc.Row}
			if _, ok := docs.rows[key]; !ok {
				t.Errorf("%s: not_covered names table %q row %q, which the vendor README does not have", where, nc.Table, nc.Row)
				continue
			}
			if strings.TrimSpace(nc.Why) == "" {
				t.Errorf("%s: not_covered %s %s has no why", where, nc.Table, nc.Row)
				continue
			}
			covered[key] = append(covered[key], p.Name+" (not_covered)")
		}

		used := map[string]bool{}
		for _, prm := range p.Params {
			switch {
			case prm.Type != "" && prm.Type != "bool":
				t.Errorf("%s: param %s has type %q; only bool is known", where, prm.Name, prm.Type)
			case prm.Type == "bool" && (prm.Required || prm.Default != ""):
				t.Errorf("%s: bool param %s is required or has a default; conditions are false unless set", where, prm.Name)
			case prm.Default != "" && strings.TrimSpace(prm.DefaultSource) == "":
				t.Errorf("%s: param %s has default %q but no default_source saying where it comes from", where, prm.Name, prm.Default)
			case prm.Required && prm.Example == "":
				t.Errorf("%s: required param %s has no example", where, prm.Name)
			}
			if prm.Description == "" {
				t.Errorf("%s: param %s has no description", where, prm.Name)
			}
		}

		for _, c := range p.Checks {
			cw := fmt.Sprintf("%s: check %s", where, c.Name)
			if c.Essential != nil {
				t.Errorf("%s sets essential:; profiles say level: and the loader derives it", cw)
			}
			if strings.TrimSpace(c.Purpose) == "" {
				t.Errorf("%s has no purpose", cw)
			}
			inbound := c.Kind == "listen" || c.Kind == "broadcast"
			switch {
			case c.Direction != "in" && c.Direction != "out":
				t.Errorf("%s: direction %q, want in or out", cw, c.Direction)
			case inbound != (c.Direction == "in"):
				t.Errorf("%s: kind %s with direction %s; only listen and broadcast observe inbound traffic", cw, c.Kind, c.Direction)
			}
			switch c.Level {
			case "essential", "recommended":
			case "conditional":
				if c.When == "" {
					t.Errorf("%s is conditional but has no when:", cw)
				}
			default:
				t.Errorf("%s: level %q, want essential, recommended or conditional", cw, c.Level)
			}
			if c.When != "" {
				used[c.When] = true
				if prm, ok := p.param(c.When); !ok || prm.Type != "bool" {
					t.Errorf("%s: when: %s does not name a bool param", cw, c.When)
				}
			}

			// Hosts come from params; a literal would be a host the
			// documents do not name.
			m := paramRef.FindStringSubmatch(c.Host)
			if m == nil {
				t.Errorf("%s: host %q is not a ${param}: the documents name no hosts, so a literal one would be invented", cw, c.Host)
			} else if prm, ok := p.param(m[1]); !ok {
				t.Errorf("%s: host %s names no declared param", cw, c.Host)
			} else {
				used[prm.Name] = true
				if prm.Type == "bool" {
					t.Errorf("%s: host %s is a bool param", cw, c.Host)
				}
				if !prm.Required && prm.Default == "" {
					t.Errorf("%s: host param %s is neither required nor defaulted", cw, prm.Name)
				}
			}

			s := c.Source
			if s.Table == "" && s.Row == "" {
				if strings.TrimSpace(s.Note) == "" {
					t.Errorf("%s cites no table row and has no source.note saying why it was added", cw)
				}
				continue
			}
			row, ok := docs.rows[[2]string{s.Table, s.Row}]
			if !ok {
				t.Errorf("%s cites table %q row %q, which the vendor README does not have", cw, s.Table, s.Row)
				continue
			}
			if s.Document != docs.tableDoc[s.Table] {
				t.Errorf("%s cites document %q, but table %q is from %q", cw, s.Document, s.Table, docs.tableDoc[s.Table])
			}
			if s.Document != p.Source.Document {
				t.Errorf("%s cites document %q, the profile %q", cw, s.Document, p.Source.Document)
			}
			covered[[2]string{s.Table, s.Row}] = append(covered[[2]string{s.Table, s.Row}], p.Name+"/"+c.Name)

			// The level follows the document; a check may narrow an
			// essential row to a condition of this host's setup (a peer
			// check of a distribution point that only some agents use).
			want := docLevel(row.level)
			if want == "" {
				t.Errorf("README line %d: level %q is not one this test can map", row.line, row.level)
			} else if c.Level != want && (c.Level != "conditional" || want != "essential") {
				t.Errorf("%s: level %s, but row %s of %s says %q (%s)", cw, c.Level, s.Row, s.Table, row.level, want)
			}
			// An outbound row is never turned into an inbound observation;
			// an inbound row may be proven from a peer (direction out).
			if row.dir == "out" && c.Direction != "out" {
				t.Errorf("%s: direction %s for row %s of %s, which is outbound", cw, c.Direction, s.Row, s.Table)
			}
		}
		for _, prm := range p.Params {
			if !used[prm.Name] && !usedInPorts(p, prm.Name) {
				t.Errorf("%s: param %s is declared but no check uses it", where, prm.Name)
			}
		}
	}

	var keys [][2]string
	for k := range docs.rows {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return docs.rows[keys[i]].line < docs.rows[keys[j]].line })
	for _, k := range keys {
		if len(covered[k]) == 0 {
			t.Errorf("README line %d: table %q row %q is cited by no check and excluded by no not_covered entry",
				docs.rows[k].line, k[0], k[1])
		} else {
			t.Logf("%s %s: %s", k[0], k[1], strings.Join(covered[k], ", "))
		}
	}
}

func usedInPorts(p covProfile, name string) bool {
	for _, c := range p.Checks {
		if strings.Contains(c.Port+c.Ports, "${"+name+"}") {
			return true
		}
	}
	return false
}

// portCount is how many checks a check's port or ports expand to.
func portCount(t *testing.T, c covCheck) int {
	if c.Ports == "" {
		return 1
	}
	n := 0
	for part := range strings.SplitSeq(c.Ports, ",") {
		lo, hi, isRange := strings.Cut(strings.TrimSpace(part), "-")
		a, err1 := strconv.Atoi(lo)
		b := a
		var err2 error
		if isRange {
			b, err2 = strconv.Atoi(hi)
		}
		if err1 != nil || err2 != nil || b < a {
			t.Fatalf("check %s: cannot count ports %q", c.Name, c.Ports)
		}
		n += b - a + 1
	}
	return n
}

// Every built-in profile expands through the real loader with its examples
// and defaults, with its conditions all off and all on; the checks that come
// out are the ones the file declares, and Essential follows level.
func TestBuiltinProfilesExpandWithConditions(t *testing.T) {
	for _, p := range readProfileFiles(t) {
		for _, on := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/conditions=%v", p.Name, on), func(t *testing.T) {
				var params []string
				for _, prm := range p.Params {
					switch {
					case prm.Type == "bool":
						params = append(params, fmt.Sprintf("%s.%s=%v", p.Name, prm.Name, on))
					case prm.Required:
						params = append(params, p.Name+"."+prm.Name+"="+prm.Example)
					}
				}
				cfg := &Config{Source: "test"}
				checks, err := cfg.checks(Options{Profiles: []string{p.Name}, Params: params})
				if err != nil {
					t.Fatalf("params %v: %v", params, err)
				}
				want := map[string]int{}
				essential := map[string]bool{}
				for _, c := range p.Checks {
					if c.When != "" && !on {
						continue
					}
					want[c.Name] = portCount(t, c)
					essential[c.Name] = c.Level != "recommended"
				}
				got := map[string]int{}
				for _, c := range checks {
					if c.Profile != p.Name {
						t.Errorf("check %s has profile %q", c.Name, c.Profile)
					}
					got[c.Name]++
					if wantEss, ok := essential[c.Name]; ok && c.Essential != wantEss {
						t.Errorf("check %s port %d: Essential %v, want %v from its level", c.Name, c.Port, c.Essential, wantEss)
					}
					if strings.Contains(c.Host, "${") || c.Host == "" {
						t.Errorf("check %s: host %q after expansion", c.Name, c.Host)
					}
				}
				if fmt.Sprint(got) != fmt.Sprint(want) {
					t.Errorf("checks per name %v, want %v", got, want)
				}
			})
		}
	}
}

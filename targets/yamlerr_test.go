package targets

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestYAMLSyntaxErrorLines: a syntax error names the line where the text
// stops making sense, and an unclosed {, [ or quote the line it opened on.
func TestYAMLSyntaxErrorLines(t *testing.T) {
	for _, c := range []struct{ name, yml, want string }{
		{"indentation on line 5", "checks:\n  - name: a\n    kind: tcp\n    host: 127.0.0.1\n   port: 1\n",
			"config.yml:5: invalid YAML (column 4): did not find expected '-' indicator; check this line's indentation against the lines above it"},
		{"key outdented", "checks:\n  - name: a\n    kind: tcp\n  host: x\n",
			"config.yml:4: invalid YAML (column 3): did not find expected '-' indicator; check this line's indentation against the lines above it"},
		{"unclosed {", "checks:\n  - {name: a, kind: tcp,\n     host: 127.0.0.1, port: 1\n  - name: b\n",
			"config.yml:4: invalid YAML (column 9): did not find expected ',' or '}' (the { opened on line 2 is not closed)"},
		{"unclosed quote", "checks:\n  - name: \"a\n    kind: tcp\n",
			"config.yml:3: invalid YAML: found unexpected end of stream (the quote opened on line 2 is not closed)"},
		{"tab", "checks:\n  - name: a\n\tkind: tcp\n",
			"config.yml:3: invalid YAML (column 1): found a tab character that violates indentation"},
		{"unclosed [ at the end", "checks: [\n", "config.yml:1: invalid YAML: did not find expected node content"},
		{"no final newline", "checks: [a,", "config.yml:1: invalid YAML: did not find expected node content"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse("config.yml", []byte(c.yml))
			checkErr(t, err, []string{c.want})
		})
	}
}

// TestAllErrorsAtOnce: errors found while decoding (an unknown key) and
// those found while expanding (a host, a port range) come in one report,
// in file order; the check with a decoding error is not judged again.
func TestAllErrorsAtOnce(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.yml")
	yml := `checks:
  - name: a
    kind: tcp
    host: 127.0.0.1
    prot: 1
  - name: b
    kind: tcp
    host: "<b>x"
    port: 1
  - name: c
    kind: tcp
    host: 127.0.0.1
    ports: "20-10"
`
	if err := os.WriteFile(path, []byte(yml), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := BuildPlan(path, Options{})
	lines := errLines(err)
	want := []string{path + ":5: unknown key \"prot\"", path + ":8: host in check \"b\"", path + ":13: ports in check \"c\""}
	if len(lines) != len(want) {
		t.Fatalf("got %d errors, want %d:\n%v", len(lines), len(want), err)
	}
	for i, w := range want {
		if !strings.HasPrefix(lines[i], w) {
			t.Errorf("error %d = %q; want it to begin %q", i+1, lines[i], w)
		}
	}
}

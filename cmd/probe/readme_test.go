package main

import (
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/connprobe/connprobe/probe"
)

func readme(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// section returns the README's text from heading to the next heading of the
// same level.
func section(t *testing.T, doc, heading string) string {
	t.Helper()
	i := strings.Index(doc, "\n"+heading+"\n")
	if i < 0 {
		t.Fatalf("README has no %q", heading)
	}
	rest := doc[i+len(heading)+2:]
	level := heading[:strings.Index(heading, " ")+1]
	if j := strings.Index(rest, "\n"+level); j >= 0 {
		rest = rest[:j]
	}
	return rest
}

// Every registered kind has a row in the README's kinds table, with its
// default port (or "(required)") in the transport column.
func TestReadmeDocumentsEveryKind(t *testing.T) {
	table := section(t, readme(t), "## Check kinds")
	// The first table of the section: its rows up to the first other line.
	rows := map[string][]string{}
	started := false
	for _, line := range strings.Split(table, "\n") {
		if !strings.HasPrefix(line, "|") {
			if started {
				break
			}
			continue
		}
		started = true
		cells := strings.Split(strings.Trim(line, "|"), "|")
		for i := range cells {
			cells[i] = strings.TrimSpace(cells[i])
		}
		if strings.HasPrefix(cells[0], "`") {
			rows[strings.Trim(cells[0], "`")] = cells
		}
	}
	for name, spec := range probe.Kinds() {
		cells, ok := rows[name]
		if !ok {
			t.Errorf("the README's kinds table has no row for kind %s", name)
			continue
		}
		if len(cells) != 4 {
			t.Errorf("kind %s: row has %d cells, want 4", name, len(cells))
			continue
		}
		port := "(required)"
		if spec.DefaultPort != 0 {
			port = strconv.Itoa(spec.DefaultPort)
		}
		if !strings.Contains(cells[1], port) {
			t.Errorf("kind %s: the transport column %q lacks its default port %s", name, cells[1], port)
		}
		for _, p := range spec.TransportPorts {
			if !strings.Contains(cells[1], strconv.Itoa(p)) {
				t.Errorf("kind %s: the transport column %q lacks the port %d of a transport", name, cells[1], p)
			}
		}
		if len(cells[3]) < 40 {
			t.Errorf("kind %s: what up proves is not said: %q", name, cells[3])
		}
	}
	for name := range rows {
		if _, ok := probe.Kinds()[name]; !ok {
			t.Errorf("the README documents kind %s, which does not exist", name)
		}
	}
}

// The README calls the command connprobe: only its first lines run it with
// go run, and no sentence calls it "probe".
var bareProbe = regexp.MustCompile(`(^|[^n/])probe (check|validate|profiles|version)\b`)

func TestReadmeNamesTheCommandConnprobe(t *testing.T) {
	doc := readme(t)
	if !strings.Contains(doc, "go build -o connprobe ./cmd/probe") {
		t.Error("the README does not say how to build the connprobe binary from source")
	}
	intro := doc[:strings.Index(doc, "\n## ")]
	rest := doc[len(intro):]
	if strings.Contains(rest, "go run ./cmd/probe") {
		t.Error("the README runs go run ./cmd/probe beyond its first lines; write connprobe")
	}
	profiles, err := os.ReadFile("../../targets/profiles/README.md")
	if err != nil {
		t.Fatal(err)
	}
	for file, text := range map[string]string{"README.md": doc, "targets/profiles/README.md": string(profiles)} {
		for i, line := range strings.Split(text, "\n") {
			if bareProbe.MatchString(line) {
				t.Errorf("%s line %d calls the command probe: %s", file, i+1, line)
			}
		}
	}
}

package targets

import (
	"errors"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// The config and profile loader reads what a user (or a careless generator)
// wrote and runs inside the agent on every reload: whatever the bytes, it
// must return, with errors that name a line of the file, within the
// documented limits. The seed corpus (testdata/fuzz) holds the example,
// the built-in profiles and broken variants of them.

// slowLoad is far beyond what loading a fuzz input (at most a few hundred
// KB) takes, even on a loaded machine: past it, something is quadratic.
const slowLoad = 3 * time.Second

// loadInvariants checks what every load must keep, whatever the input.
func loadInvariants(t *testing.T, name string, data []byte, err error) {
	t.Helper()
	if err == nil {
		return
	}
	lines := lineCount(data)
	var parts []error
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		parts = j.Unwrap()
	} else {
		parts = []error{err}
	}
	if len(parts) > maxErrors+1 {
		t.Fatalf("%d errors listed; at most %d and a count", len(parts), maxErrors)
	}
	for _, e := range parts {
		var le *Error
		if !errors.As(e, &le) {
			if _, ok := e.(*moreErrors); ok {
				continue
			}
			t.Fatalf("error %q is not a file:line error", e)
		}
		if le.File != name && !strings.HasPrefix(le.File, "embedded:") {
			t.Fatalf("error %q names file %q, not %q", e, le.File, name)
		}
		if le.File == name && (le.Line < 0 || le.Line > lines) {
			t.Fatalf("error %q names line %d of a %d-line file", e, le.Line, lines)
		}
		if le.Msg == "" {
			t.Fatalf("an error with no message at line %d", le.Line)
		}
	}
}

func addSeeds(f *testing.F, files ...string) {
	for _, p := range files {
		data, err := embedded.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
}

func FuzzLoadConfig(f *testing.F) {
	addSeeds(f, "examples/quickstart.yml")
	f.Add([]byte("checks:\n  - {name: a, kind: tcp, host: 127.0.0.1, port: 1}\n"))
	f.Add([]byte("profiles:\n  - name: clover\n    params: {emv_host: emv.example.com}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		start := time.Now()
		defer func() {
			if d := time.Since(start); d > slowLoad {
				t.Fatalf("loading %d bytes took %v", len(data), d)
			}
		}()
		cfg, err := Parse("fuzz.yml", data)
		loadInvariants(t, "fuzz.yml", data, err)
		if err != nil {
			return
		}
		plan, err := cfg.Expand(Options{})
		loadInvariants(t, "fuzz.yml", data, err)
		if err != nil {
			return
		}
		if len(plan.Checks) > MaxChecks {
			t.Fatalf("%d checks; the limit is %d", len(plan.Checks), MaxChecks)
		}
		for _, c := range plan.Checks {
			if len(c.Name) > MaxNameLen || !validName(c.Name) {
				t.Fatalf("check name %q accepted", c.Name)
			}
			if msg := hostCharsProblem(c.Host); msg != "" || c.Host == "" {
				t.Fatalf("host %q accepted: %s", c.Host, msg)
			}
			if !utf8.ValidString(c.Host) {
				t.Fatalf("host %q is not UTF-8", c.Host)
			}
		}
	})
}

func FuzzLoadProfile(f *testing.F) {
	entries, err := embedded.ReadDir("profiles")
	if err != nil {
		f.Fatal(err)
	}
	for _, e := range entries {
		if isProfileFile(e.Name()) {
			addSeeds(f, "profiles/"+e.Name())
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		start := time.Now()
		p, err := ParseProfile("fuzz.yml", data)
		if d := time.Since(start); d > slowLoad {
			t.Fatalf("parsing %d bytes took %v", len(data), d)
		}
		loadInvariants(t, "fuzz.yml", data, err)
		if err != nil {
			return
		}
		if !validProfileName(p.Name) || len(p.Checks) == 0 {
			t.Fatalf("profile %q with %d checks accepted", p.Name, len(p.Checks))
		}
		for _, c := range p.Checks {
			if len(c.Name) > MaxNameLen || !validName(c.Name) {
				t.Fatalf("check name %q accepted", c.Name)
			}
		}
	})
}

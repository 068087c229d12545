package targets

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/connprobe/connprobe/probe"
)

// The rules of which kind takes which key are the kinds' own
// (probe.KindSpec); these names keep the tests that check the config
// against them readable.

// tlsKindsNote lists, for errors, the kinds whose checks take tls:.
var tlsKindsNote = probe.TLSKindsNote()

func proxyable(k probe.KindSpec, variant string) bool { return k.Proxyable(variant) }

func bindsSourcePort(kind, variant string) bool {
	k, err := probe.LookupKind(kind)
	return err == nil && k.BindsSourcePort(variant)
}

func sourcePortRefusal(kind, variant string) string {
	k, _ := probe.LookupKind(kind)
	return k.SourcePortRefusal(variant)
}

// TestTargetsNamesNoKind: which kind takes which key, how its options are
// built and what it defaults to are the kind's to say (probe.KindSpec). This
// package asks the kind and never names one, so adding a kind changes
// nothing here.
func TestTargetsNamesNoKind(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		checked++
		for i, line := range strings.Split(string(data), "\n") {
			for _, kind := range probe.KindNames() {
				if strings.Contains(line, strconv.Quote(kind)) {
					t.Errorf("%s:%d names kind %s: %s", f, i+1, kind, strings.TrimSpace(line))
				}
			}
		}
	}
	if checked < 5 {
		t.Fatalf("only %d source files found; is the test running in targets/?", checked)
	}
}

// TestNewKindNeedsNothingHere proves design.md's rule for this package: a
// kind it has never seen, made of the option sets that exist, is parsed,
// validated and expanded as its spec says. (Its prober would be one file in
// probe/, and its spec one line of probe's kind table.)
func TestNewKindNeedsNothingHere(t *testing.T) {
	gopher := probe.KindSpec{Name: "gopher", Network: probe.NetworkTCP, DefaultPort: 70,
		Options: []probe.OptionSet{probe.OptionsTLS, probe.OptionsLogin}, PasswordOptional: true}
	lookup := func(name string) (probe.KindSpec, error) {
		if name == gopher.Name {
			return gopher, nil
		}
		return probe.LookupKind(name)
	}
	parse := func(yml string) (*Config, error) {
		root, err := parseDoc("config.yml", []byte(yml))
		if err != nil {
			t.Fatal(err)
		}
		var errs errList
		cfg := (&decoder{file: "config.yml", errs: &errs, kinds: lookup}).config(root)
		return cfg, errs.err()
	}

	cfg, err := parse("proxy: http://proxy.example:3128\nchecks:\n" +
		"  - {name: g, kind: gopher, host: h.example, tls: {server_name: s.example}, user: anon}\n")
	if err != nil {
		t.Fatal(err)
	}
	checks, err := cfg.checks(Options{})
	if err != nil {
		t.Fatal(err)
	}
	c := checks[0]
	if c.Kind != "gopher" || c.Port != 70 || c.Network != probe.NetworkTCP || c.TLS.ServerName != "s.example" ||
		c.Credentials.User != "anon" || c.Proxy != "http://proxy.example:3128" || c.Interval != DefaultInterval {
		t.Errorf("expanded as %+v", *c)
	}

	_, err = parse("checks:\n  - {name: g, kind: gopher, host: h, payload: echo, ntp: {samples: 2}, method: GET, source_port: 70}\n")
	for _, want := range []string{
		`payload in check "g": only kind udp takes payload; this check is kind gopher`,
		`ntp in check "g": only kind ntp takes ntp: options; this check is kind gopher`,
		`method in check "g": only kinds http and https take method; this check is kind gopher`,
		`source_port in check "g": kind gopher does not bind a source port`,
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("errors lack %q:\n%v", want, err)
		}
	}
}

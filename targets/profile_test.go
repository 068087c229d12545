package targets

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/connprobe/connprobe/probe"
)

const testProfiles = "testdata/profiles"

const vendorFile = "testdata/profiles/vendor.yml"

func TestCatalogue(t *testing.T) {
	builtin, err := Catalogue("")
	if err != nil {
		t.Fatal(err)
	}
	cat, err := Catalogue(testProfiles)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range cat {
		names = append(names, p.Name)
	}
	// Directory profiles join the built-in ones; README.md is not a profile.
	if len(cat) != len(builtin)+2 {
		t.Errorf("catalogue %v has %d entries, built-in %d", names, len(cat), len(builtin))
	}
	var vendor *Profile
	for i := range cat {
		if cat[i].Name == "vendor" {
			vendor = &cat[i]
		}
	}
	if vendor == nil {
		t.Fatalf("vendor not in %v", names)
	}
	if vendor.Source != vendorFile || vendor.Description != "A test vendor" || len(vendor.Checks) != 2 {
		t.Errorf("vendor: %+v", *vendor)
	}
	wantParams := []Param{
		{Name: "cloud_host", Description: "the regional API host", Required: true, Example: "api.eu.vendor.test", line: 5},
		{Name: "port", Description: "the API port", Default: "443", line: 9},
		{Name: "region", Default: "eu", line: 12},
	}
	if !reflect.DeepEqual(vendor.Params, wantParams) {
		t.Errorf("params %+v\nwant %+v", vendor.Params, wantParams)
	}
}

func TestCatalogueErrors(t *testing.T) {
	_, err := Catalogue("testdata/dupprofiles")
	checkErr(t, err, []string{`testdata/dupprofiles/b.yml: profile "same" is also defined in testdata/dupprofiles/a.yml; profile names must be unique`})
	if _, err := Catalogue("testdata/no-such-dir"); err == nil {
		t.Error("missing dir: no error")
	}
}

// Every built-in profile must expand with its examples and defaults, so a
// broken profile fails here and not on a user's machine.
func TestBuiltinProfilesExpand(t *testing.T) {
	cat, err := Catalogue("")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range cat {
		var params []string
		for _, prm := range p.Params {
			if prm.Required {
				params = append(params, p.Name+"."+prm.Name+"="+prm.Example)
			}
		}
		cfg := &Config{Source: "test"}
		checks, err := cfg.Checks(Options{Profiles: []string{p.Name}, Params: params})
		if err != nil {
			t.Errorf("profile %s: %v", p.Name, err)
		}
		if len(checks) == 0 {
			t.Errorf("profile %s: no checks", p.Name)
		}
	}
}

func TestProfileExpansion(t *testing.T) {
	yml := `defaults:
  timeout: 4s
checks:
  - {name: api, kind: tcp, host: own.test, port: 1}
profiles:
  - name: vendor
    params:
      cloud_host: api.eu.vendor.test
      region: us
  - plain
`
	checks, err := build(yml, Options{ProfilesDir: testProfiles, Params: []string{"vendor.port=8443"}})
	if err != nil {
		t.Fatal(err)
	}
	want := []probe.Check{
		{Name: "api", Kind: "tcp", Host: "own.test", Port: 1, Protocol: "tcp", IPFamily: "both", Essential: true, Interval: time.Minute, Timeout: 4 * time.Second},
		{Profile: "vendor", Name: "api", Kind: "tls", Host: "api.eu.vendor.test", Port: 8443, Protocol: "tcp", IPFamily: "both", Essential: true, Interval: time.Minute, Timeout: 4 * time.Second,
			TLS: probe.TLSOptions{ServerName: "api.eu.vendor.test"}},
		{Profile: "vendor", Name: "gateway", Kind: "tcp", Host: "gw.us.vendor.test", Port: 23100, Protocol: "tcp", IPFamily: "both", Range: "23100-23102", Interval: 2 * time.Minute, Timeout: 4 * time.Second},
		{Profile: "vendor", Name: "gateway", Kind: "tcp", Host: "gw.us.vendor.test", Port: 23101, Protocol: "tcp", IPFamily: "both", Range: "23100-23102", Interval: 2 * time.Minute, Timeout: 4 * time.Second},
		{Profile: "vendor", Name: "gateway", Kind: "tcp", Host: "gw.us.vendor.test", Port: 23102, Protocol: "tcp", IPFamily: "both", Range: "23100-23102", Interval: 2 * time.Minute, Timeout: 4 * time.Second},
		{Profile: "plain", Name: "web", Kind: "tcp", Host: "www.plain.test", Port: 80, Protocol: "tcp", IPFamily: "both", Essential: true, Interval: time.Minute, Timeout: 4 * time.Second},
	}
	if got := deref(checks); !reflect.DeepEqual(got, want) {
		t.Errorf("got  %+v\nwant %+v", got, want)
	}
	// The custom "api" and the vendor's "api" differ by Profile, so by ID.
	if checks[0].ID() == checks[1].ID() {
		t.Errorf("IDs collide: %s", checks[0].ID())
	}
}

func TestProfileFromFlagsOnly(t *testing.T) {
	opts := Options{
		ProfilesDir: testProfiles,
		Profiles:    []string{"vendor", "vendor"},
		Params:      []string{"vendor.cloud_host=a.test", "vendor.cloud_host=b.test"},
	}
	checks, cfg, err := Build("", opts)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Source != "command line" || len(cfg.Custom) != 0 {
		t.Errorf("config %+v", cfg)
	}
	// A repeated --profile is one profile; the last --param wins.
	if len(checks) != 4 || checks[0].Host != "b.test" || checks[0].Port != 443 || checks[1].Host != "gw.eu.vendor.test" {
		t.Errorf("checks %+v", deref(checks))
	}
}

func TestProfileErrors(t *testing.T) {
	tests := []struct {
		name string
		yml  string
		opts Options
		want []string
	}{
		{"unknown profile, empty catalogue", "profiles:\n  - name: clover\n", Options{}, []string{
			`config.yml:2: unknown profile "clover" (known: none yet)`}},
		{"unknown profile with suggestion", "profiles:\n  - vendr\n", Options{ProfilesDir: testProfiles}, []string{
			`config.yml:2: unknown profile "vendr" (did you mean "vendor"?) (known: plain, vendor)`}},
		{"unknown --profile", "checks:\n  - {name: a, kind: tls, host: h}\n", Options{Profiles: []string{"nope"}, ProfilesDir: testProfiles}, []string{
			`--profile nope: unknown profile "nope" (known: plain, vendor)`}},
		{"missing required param", "profiles:\n  - vendor\n", Options{ProfilesDir: testProfiles}, []string{
			`config.yml:2: profile "vendor" needs param "cloud_host" (the regional API host): set it under params: or pass --param vendor.cloud_host=... (e.g. --param vendor.cloud_host=api.eu.vendor.test)`}},
		{"missing required param, --profile", "checks:\n  - {name: a, kind: tls, host: h}\n", Options{Profiles: []string{"vendor"}, ProfilesDir: testProfiles}, []string{
			`--profile vendor: profile "vendor" needs param "cloud_host" (the regional API host): pass --param vendor.cloud_host=... (e.g. --param vendor.cloud_host=api.eu.vendor.test)`}},
		{"required param set empty", "profiles:\n  - name: vendor\n    params: {cloud_host: ''}\n", Options{ProfilesDir: testProfiles}, []string{
			`config.yml:2: profile "vendor" needs param "cloud_host" (the regional API host): set it under params: or pass --param vendor.cloud_host=... (e.g. --param vendor.cloud_host=api.eu.vendor.test)`}},
		{"unknown param in config", "profiles:\n  - name: vendor\n    params:\n      cloud_host: a.test\n      cloud_hots: b.test\n", Options{ProfilesDir: testProfiles}, []string{
			`config.yml:5: profile "vendor" has no param "cloud_hots" (did you mean "cloud_host"?)`}},
		{"unknown param for a profile without params", "profiles:\n  - name: plain\n    params: {x: 1}\n", Options{ProfilesDir: testProfiles}, []string{
			`config.yml:3: profile "plain" has no param "x" (it takes no params)`}},
		{"unknown --param key", "profiles:\n  - name: vendor\n    params: {cloud_host: a.test}\n", Options{ProfilesDir: testProfiles, Params: []string{"vendor.zone=x"}}, []string{
			`--param "vendor.zone=x": profile "vendor" has no param "zone" (known: cloud_host, port, region)`}},
		{"bad param value reaches the profile line", "profiles:\n  - name: vendor\n    params: {cloud_host: a.test, port: '99999'}\n", Options{ProfilesDir: testProfiles}, []string{
			`testdata/profiles/vendor.yml:18: port in check "api" of profile "vendor": "99999" (from "${port}") is out of range (ports are 1-65535)`}},
		{"URL as param value", "profiles:\n  - name: vendor\n    params: {cloud_host: 'https://a.test/'}\n", Options{ProfilesDir: testProfiles}, []string{
			`testdata/profiles/vendor.yml:17: host in check "api" of profile "vendor": "https://a.test/" (from "${cloud_host}") is a URL; write only the name, e.g. host: a.test`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checks, err := build(tt.yml, tt.opts)
			if err == nil {
				t.Fatalf("no error; %d checks", len(checks))
			}
			checkErr(t, err, tt.want)
		})
	}
}

func TestParseProfileErrors(t *testing.T) {
	tests := []struct {
		name string
		yml  string
		want []string
	}{
		{"empty", "", []string{"p.yml: the profile file is empty; it needs name: and checks:"}},
		{"no name, no checks", "description: x\n", []string{
			"p.yml:1: the profile has no name; add name: (lower-case letters, digits, '_', '-')",
			`p.yml:1: profile "" has no checks`}},
		{"bad name", "name: Clover.Cloud\nchecks:\n  - {name: a, kind: tcp, host: h, port: 1}\n", []string{
			`p.yml:1: profile name "Clover.Cloud" is not allowed; use lower-case letters, digits, '_' and '-', starting with a letter`}},
		{"unknown key", "name: p\ndescripton: x\nchecks:\n  - {name: a, kind: tcp, host: h, port: 1}\n", []string{
			`p.yml:2: unknown key "descripton" in the profile (did you mean "description"?)`}},
		{"undeclared param", "name: p\nchecks:\n  - name: a\n    kind: tcp\n    host: ${host}\n    port: 1\n", []string{
			`p.yml:5: host of check "a" uses ${host}, which is not declared under params:`}},
		{"malformed reference", "name: p\nparams:\n  - {name: h, default: x}\nchecks:\n  - {name: a, kind: tcp, host: '${h', port: 1}\n", []string{
			`p.yml:5: host of check "a" holds a malformed param reference "${h"; write ${name}`}},
		{"required with default", "name: p\nparams:\n  - {name: h, required: true, default: x, example: y}\nchecks:\n  - {name: a, kind: tcp, host: '${h}', port: 1}\n", []string{
			`p.yml:3: param "h" is required but has a default; drop one of them`}},
		{"required without example", "name: p\nparams:\n  - {name: h, required: true}\nchecks:\n  - {name: a, kind: tcp, host: '${h}', port: 1}\n", []string{
			`p.yml:3: param "h" is required, so it needs an example: (shown in the missing-param error)`}},
		{"bad param name", "name: p\nparams:\n  - name: Cloud-Host\nchecks:\n  - {name: a, kind: tcp, host: h, port: 1}\n", []string{
			`p.yml:3: param name "Cloud-Host" is not allowed; use lower-case letters, digits and '_', starting with a letter`}},
		{"param declared twice", "name: p\nparams:\n  - name: h\n  - name: h\nchecks:\n  - {name: a, kind: tcp, host: h, port: 1}\n", []string{
			`p.yml:4: param "h" declared twice (first at line 3)`}},
		{"duplicate check names", "name: p\nchecks:\n  - {name: a, kind: tcp, host: h, port: 1}\n  - {name: a, kind: tcp, host: h, port: 2}\n", []string{
			`p.yml:4: duplicate check name "a" (first at line 3); names must be unique`}},
		{"params not a list", "name: p\nparams: {h: 1}\nchecks:\n  - {name: a, kind: tcp, host: h, port: 1}\n", []string{
			`p.yml:2: params of the profile must be a list (each entry starting with "- name:"), got a mapping`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := ParseProfile("p.yml", []byte(tt.yml))
			if err == nil {
				t.Fatalf("no error; profile %+v", p)
			}
			checkErr(t, err, tt.want)
		})
	}
}

func TestSubstitute(t *testing.T) {
	params := map[string]string{"a": "x", "b": "${a}"}
	tests := map[string]string{
		"${a}.${a}": "x.x",
		"${b}":      "${a}", // values are not substituted again
		"${c}":      "${c}", // unknown names are left for the loader to report
		"plain":     "plain",
		"${a":       "${a",
	}
	for in, want := range tests {
		if got := substitute(in, params); got != want {
			t.Errorf("substitute(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestProfileRelativeCAFile(t *testing.T) {
	dir := t.TempDir()
	writeCA(t, dir, "vendor-ca.pem")
	prof := "name: local\nchecks:\n  - name: a\n    kind: tls\n    host: h\n    tls: {ca_file: vendor-ca.pem}\n"
	if err := os.WriteFile(filepath.Join(dir, "local.yml"), []byte(prof), 0o600); err != nil {
		t.Fatal(err)
	}
	checks, _, err := Build("", Options{ProfilesDir: dir, Profiles: []string{"local"}})
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(dir, "vendor-ca.pem"); checks[0].TLS.CAFile != want {
		t.Errorf("CAFile %q, want %q", checks[0].TLS.CAFile, want)
	}
}

package targets

import (
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/connprobe/connprobe/probe"
)

const testProfiles = "testdata/profiles"

const vendorFile = "testdata/profiles/vendor.yml"

// meta is the keys every profile check needs, for flow-style test checks.
const meta = "direction: out, level: essential, purpose: p, source: {note: n}"

// testMeta is what a check with "purpose: a test check" and
// "source: {note: a test}" carries.
var testMeta = probe.CheckMeta{Direction: "out", Level: "essential", Purpose: "a test check", Source: "note: a test"}

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
	if len(cat) != len(builtin)+3 {
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
		{Name: "cloud_host", Description: "the regional API host", Type: "string", Required: true, Example: "api.eu.vendor.test", line: 5},
		{Name: "port", Description: "the API port", Type: "string", Default: "443", DefaultSource: "the vendor's port list", line: 9},
		{Name: "region", Type: "string", Default: "eu", DefaultSource: "the vendor's default region", line: 13},
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

// Every built-in profile must expand with its examples and defaults, and
// with every bool param on, so a broken profile fails here and not on a
// user's machine; with every required param set, nothing is skipped.
func TestBuiltinProfilesExpand(t *testing.T) {
	cat, err := Catalogue("")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range cat {
		var params []string
		for _, prm := range p.Params {
			switch {
			case prm.Required:
				params = append(params, p.Name+"."+prm.Name+"="+prm.Example)
			case prm.Type == ParamBool:
				params = append(params, p.Name+"."+prm.Name+"=true")
			}
		}
		cfg := &Config{Source: "test"}
		plan, err := cfg.Expand(Options{Profiles: []string{p.Name}, Params: params})
		if err != nil {
			t.Errorf("profile %s: %v", p.Name, err)
			continue
		}
		if len(plan.Checks) == 0 || len(plan.Skipped) > 0 {
			t.Errorf("profile %s: %d checks, skipped %+v", p.Name, len(plan.Checks), plan.Skipped)
		}
	}
}

// A check that uses an unset required param is skipped with the flag that
// enables it; a conditional check exists only when its bool param is true.
func TestSkippedChecks(t *testing.T) {
	ids := func(checks []*probe.Check) []string {
		var out []string
		for _, c := range checks {
			out = append(out, c.Name+":"+strconv.Itoa(c.Port))
		}
		return out
	}
	emvSkipped := Skipped{Profile: "switches", Check: "emv", Level: "essential", Essential: true, Missing: []string{"emv_host"},
		Hint:   "--param switches.emv_host=emv.example.com",
		Detail: "set --param switches.emv_host=... (the EMV endpoint)"}
	sipSkipped := Skipped{Profile: "switches", Check: "sip", Level: "conditional", Essential: true, Missing: []string{"sip_host"},
		Hint:   "--param switches.sip_host=sip.example.com",
		Detail: "set --param switches.sip_host=... (the SIP server)"}
	tests := []struct {
		name        string
		yml         string
		params      []string
		wantChecks  []string
		wantSkipped []Skipped
	}{
		{"defaults: sip off, watch on", "profiles: [switches]\n", nil,
			[]string{"gateway:443"}, []Skipped{emvSkipped}},
		{"sip on from --param, no host", "profiles: [switches]\n", []string{"switches.sip=true"},
			[]string{"gateway:443"}, []Skipped{emvSkipped, sipSkipped}},
		{"sip on from config (a YAML bool), watch off", "profiles:\n  - name: switches\n    params: {sip: true, watch: false, sip_host: sip.test}\n", nil,
			[]string{"sip:5060"}, []Skipped{emvSkipped}},
		{"--param overrides config", "profiles:\n  - name: switches\n    params: {sip: true, emv_host: emv.test}\n", []string{"switches.sip=false"},
			[]string{"emv:10000", "emv:10001", "emv:10002", "gateway:443"}, nil},
		{"a required param set empty", "profiles:\n  - name: switches\n    params: {emv_host: ''}\n", nil,
			[]string{"gateway:443"}, []Skipped{emvSkipped}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := Parse("config.yml", []byte(tt.yml))
			if err != nil {
				t.Fatal(err)
			}
			plan, err := cfg.Expand(Options{ProfilesDir: testProfiles, Params: tt.params})
			if err != nil {
				t.Fatal(err)
			}
			if got := ids(plan.Checks); !reflect.DeepEqual(got, tt.wantChecks) {
				t.Errorf("checks %v, want %v", got, tt.wantChecks)
			}
			if !reflect.DeepEqual(plan.Skipped, tt.wantSkipped) {
				t.Errorf("skipped %+v\nwant    %+v", plan.Skipped, tt.wantSkipped)
			}
			if plan.Config != cfg {
				t.Error("plan.Config is not the config")
			}
		})
	}

	// Checks and Build leave the skipped checks out; BuildPlan lists them.
	opts := Options{ProfilesDir: testProfiles, Profiles: []string{"switches"}}
	checks, _, err := Build("", opts)
	if err != nil || len(checks) != 1 {
		t.Fatalf("Build: %v, %d checks", err, len(checks))
	}
	plan, err := BuildPlan("", opts)
	if err != nil || len(plan.Checks) != 1 || len(plan.Skipped) != 1 || plan.Config.Source != "command line" {
		t.Fatalf("BuildPlan: %v, %+v", err, plan)
	}
	// The level makes Check.Essential and travels in Check.Meta.
	if c := plan.Checks[0]; c.Essential || c.Meta.Level != "recommended" || c.Meta.Direction != "out" ||
		c.Meta.Source != "note: not in the document; the gateway is the site's own" || c.Meta.Purpose != "the gateway answers" {
		t.Errorf("gateway: %+v", *c)
	}
}

func TestProfileSchemaFields(t *testing.T) {
	cat, err := Catalogue(testProfiles)
	if err != nil {
		t.Fatal(err)
	}
	p, err := FindProfile(cat, "switches")
	if err != nil {
		t.Fatal(err)
	}
	if p.Origin != (SourceRef{Document: "switches-ports.txt"}) {
		t.Errorf("origin %+v", p.Origin)
	}
	if want := []NotCovered{{Table: "ports", Row: "20/TCP", Why: "active FTP cannot be probed from here"}}; !reflect.DeepEqual(p.NotCovered, want) {
		t.Errorf("not covered %+v", p.NotCovered)
	}
	if p.Params[1].Type != ParamBool || p.Params[3].Default != "true" || p.Params[0].Type != ParamString {
		t.Errorf("params %+v", p.Params)
	}
	sip := p.Checks[1]
	want := CheckMeta{Direction: "out", Level: "conditional", When: "sip", Purpose: "the SIP server answers OPTIONS",
		Source: SourceRef{Document: "switches-ports.txt", Table: "ports", Row: "5060/TCP"}}
	if sip.Meta != want {
		t.Errorf("sip meta %+v", sip.Meta)
	}
	if got := sip.Meta.Source.String(); got != `switches-ports.txt, table ports, row "5060/TCP"` {
		t.Errorf("source %q", got)
	}
	for i, want := range [][2]string{{"10000-10002", "udp"}, {"5060", "tcp"}, {"443", "tcp"}} {
		c := p.Checks[i]
		if c.PortText() != want[0] || c.TransportText() != want[1] {
			t.Errorf("check %s: %q/%q, want %q", c.Name, c.PortText(), c.TransportText(), want)
		}
	}
	if _, err := FindProfile(cat, "swtiches"); err == nil || !strings.Contains(err.Error(), `(did you mean "switches"?)`) {
		t.Errorf("FindProfile typo: %v", err)
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
	apiMeta := probe.CheckMeta{Direction: "out", Level: "essential", Purpose: "the API answers TLS", Source: `vendor-ports.txt, table ports, row "443/TCP"`}
	gwMeta := probe.CheckMeta{Direction: "out", Level: "recommended", Purpose: "the gateway range is open", Source: "note: the gateway is in the vendor's FAQ only"}
	want := []probe.Check{
		{Name: "api", Kind: "tcp", Host: "own.test", Port: 1, Network: "tcp", IPFamily: "both", Essential: true, Interval: time.Minute, Timeout: 4 * time.Second},
		{Profile: "vendor", Name: "api", Kind: "tls", Host: "api.eu.vendor.test", Port: 8443, Network: "tcp", IPFamily: "both", Essential: true, Interval: time.Minute, Timeout: 4 * time.Second,
			TLS: &probe.TLSOptions{ServerName: "api.eu.vendor.test"}, Meta: &apiMeta},
		{Profile: "vendor", Name: "gateway", Kind: "tcp", Host: "gw.us.vendor.test", Port: 23100, Network: "tcp", IPFamily: "both", Range: "23100-23102", Interval: 2 * time.Minute, Timeout: 4 * time.Second, Meta: &gwMeta},
		{Profile: "vendor", Name: "gateway", Kind: "tcp", Host: "gw.us.vendor.test", Port: 23101, Network: "tcp", IPFamily: "both", Range: "23100-23102", Interval: 2 * time.Minute, Timeout: 4 * time.Second, Meta: &gwMeta},
		{Profile: "vendor", Name: "gateway", Kind: "tcp", Host: "gw.us.vendor.test", Port: 23102, Network: "tcp", IPFamily: "both", Range: "23100-23102", Interval: 2 * time.Minute, Timeout: 4 * time.Second, Meta: &gwMeta},
		{Profile: "plain", Name: "web", Kind: "tcp", Host: "www.plain.test", Port: 80, Network: "tcp", IPFamily: "both", Essential: true, Interval: time.Minute, Timeout: 4 * time.Second,
			Meta: &probe.CheckMeta{Direction: "out", Level: "essential", Purpose: "the web server answers", Source: "note: a test"}},
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

// known lists the catalogue's names as an unknown-profile error does; the
// built-in profiles are in it, whichever they are.
func known(t *testing.T, dir string) string {
	t.Helper()
	cat, err := Catalogue(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range cat {
		names = append(names, p.Name)
	}
	if len(names) == 0 {
		return "none yet"
	}
	return strings.Join(names, ", ")
}

func TestProfileErrors(t *testing.T) {
	tests := []struct {
		name string
		yml  string
		opts Options
		want []string
	}{
		{"unknown profile", "profiles:\n  - name: zzz-nope\n", Options{}, []string{
			`config.yml:2: unknown profile "zzz-nope" (known: ` + known(t, "") + ")"}},
		{"unknown profile with suggestion", "profiles:\n  - vendr\n", Options{ProfilesDir: testProfiles}, []string{
			`config.yml:2: unknown profile "vendr" (did you mean "vendor"?) (known: ` + known(t, testProfiles) + ")"}},
		{"unknown --profile", "checks:\n  - {name: a, kind: tls, host: h}\n", Options{Profiles: []string{"zzz-nope"}, ProfilesDir: testProfiles}, []string{
			`--profile zzz-nope: unknown profile "zzz-nope" (known: ` + known(t, testProfiles) + ")"}},
		{"unknown param in config", "profiles:\n  - name: vendor\n    params:\n      cloud_host: a.test\n      cloud_hots: b.test\n", Options{ProfilesDir: testProfiles}, []string{
			`config.yml:5: profile "vendor" has no param "cloud_hots" (did you mean "cloud_host"?)`}},
		{"unknown param for a profile without params", "profiles:\n  - name: plain\n    params: {x: 1}\n", Options{ProfilesDir: testProfiles}, []string{
			`config.yml:3: profile "plain" has no param "x" (it takes no params)`}},
		{"unknown --param key", "profiles:\n  - name: vendor\n    params: {cloud_host: a.test}\n", Options{ProfilesDir: testProfiles, Params: []string{"vendor.zone=x"}}, []string{
			`--param "vendor.zone=x": profile "vendor" has no param "zone" (known: cloud_host, port, region)`}},
		{"bad param value reaches the profile line", "profiles:\n  - name: vendor\n    params: {cloud_host: a.test, port: '99999'}\n", Options{ProfilesDir: testProfiles}, []string{
			`testdata/profiles/vendor.yml:20: port in check "api" of profile "vendor": "99999" (from "${port}") is out of range (ports are 1-65535)`}},
		{"URL as param value", "profiles:\n  - name: vendor\n    params: {cloud_host: 'https://a.test/'}\n", Options{ProfilesDir: testProfiles}, []string{
			`testdata/profiles/vendor.yml:19: host in check "api" of profile "vendor": "https://a.test/" (from "${cloud_host}") is a URL; write only the name, e.g. host: a.test`}},
		{"bool param not a bool in config", "profiles:\n  - name: switches\n    params:\n      sip: yes\n", Options{ProfilesDir: testProfiles}, []string{
			`config.yml:4: param "sip" of profile "switches" is a bool: true or false, got "yes"`}},
		{"bool param not a bool in --param", "profiles: [switches]\n", Options{ProfilesDir: testProfiles, Params: []string{"switches.sip=1"}}, []string{
			`--param "switches.sip=1": param "sip" of profile "switches" is a bool: true or false, got "1"`}},
		{"everything skipped", "profiles: [switches]\n", Options{ProfilesDir: testProfiles, Params: []string{"switches.sip=true", "switches.watch=false"}}, []string{
			"config.yml: nothing to probe: every check is skipped for a missing param:",
			"  switches/emv: set --param switches.emv_host=... (the EMV endpoint)",
			"  switches/sip: set --param switches.sip_host=... (the SIP server)"}},
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
		{"bad name", "name: Clover.Cloud\nchecks:\n  - {name: a, kind: tcp, host: h, port: 1, " + meta + "}\n", []string{
			`p.yml:1: profile name "Clover.Cloud" is not allowed; use lower-case letters, digits, '_' and '-', starting with a letter`}},
		{"unknown key", "name: p\ndescripton: x\nchecks:\n  - {name: a, kind: tcp, host: h, port: 1, " + meta + "}\n", []string{
			`p.yml:2: unknown key "descripton" in the profile (did you mean "description"?)`}},
		{"undeclared param", "name: p\nchecks:\n  - name: a\n    kind: tcp\n    host: ${host}\n    port: 1\n    direction: out\n    level: essential\n    purpose: p\n    source: {note: n}\n", []string{
			`p.yml:5: host of check "a" uses ${host}, which is not declared under params:`}},
		{"malformed reference", "name: p\nparams:\n  - {name: h, default: x, default_source: s}\nchecks:\n  - {name: a, kind: tcp, host: '${h', port: 1, " + meta + "}\n", []string{
			`p.yml:5: host of check "a" holds a malformed param reference "${h"; write ${name}`}},
		{"required with default", "name: p\nparams:\n  - {name: h, required: true, default: x, default_source: s, example: y}\nchecks:\n  - {name: a, kind: tcp, host: '${h}', port: 1, " + meta + "}\n", []string{
			`p.yml:3: param "h" is required but has a default; drop one of them`}},
		{"required without example", "name: p\nparams:\n  - {name: h, required: true}\nchecks:\n  - {name: a, kind: tcp, host: '${h}', port: 1, " + meta + "}\n", []string{
			`p.yml:3: param "h" is required, so it needs an example: (shown in the missing-param error)`}},
		{"bad param name", "name: p\nparams:\n  - name: Cloud-Host\nchecks:\n  - {name: a, kind: tcp, host: h, port: 1, " + meta + "}\n", []string{
			`p.yml:3: param name "Cloud-Host" is not allowed; use lower-case letters, digits and '_', starting with a letter`}},
		{"param declared twice", "name: p\nparams:\n  - name: h\n  - name: h\nchecks:\n  - {name: a, kind: tcp, host: h, port: 1, " + meta + "}\n", []string{
			`p.yml:4: param "h" declared twice (first at line 3)`}},
		{"duplicate check names", "name: p\nchecks:\n  - {name: a, kind: tcp, host: h, port: 1, " + meta + "}\n  - {name: a, kind: tcp, host: h, port: 2, " + meta + "}\n", []string{
			`p.yml:4: duplicate check name "a" (first at line 3); names must be unique`}},
		{"params not a list", "name: p\nparams: {h: 1}\nchecks:\n  - {name: a, kind: tcp, host: h, port: 1, " + meta + "}\n", []string{
			`p.yml:2: params of the profile must be a list (each entry starting with "- name:"), got a mapping`}},
		{"missing profile-check keys", "name: p\nchecks:\n  - {name: a, kind: tcp, host: h, port: 1}\n", []string{
			`p.yml:3: check "a" has no level; add level: (essential, recommended or conditional)`,
			`p.yml:3: check "a" has no direction; add direction: (out: this site connects out; in: it is reached from outside)`,
			`p.yml:3: check "a" has no purpose; add purpose: (what the check proves, for the people reading its result)`,
			`p.yml:3: check "a" has no source; add source: {document: ..., table: ..., row: ...} (the row it follows) or source: {note: ...} (why it was added without one)`}},
		{"bad level and direction", "name: p\nchecks:\n  - name: a\n    kind: tcp\n    host: h\n    port: 1\n    direction: outbound\n    level: essentail\n    purpose: p\n    source: {note: n}\n", []string{
			`p.yml:7: direction of check "a" must be out or in, got "outbound"`,
			`p.yml:8: level of check "a" must be essential, recommended or conditional, got "essentail" (did you mean "essential"?)`}},
		{"essential in a profile check", "name: p\nchecks:\n  - name: a\n    kind: tcp\n    host: h\n    port: 1\n    essential: false\n    direction: out\n    level: essential\n    purpose: p\n    source: {note: n}\n", []string{
			`p.yml:7: essential in check "a": a profile check takes it from its level; set level: instead (essential, recommended or conditional)`}},
		{"conditional without when", "name: p\nchecks:\n  - name: a\n    kind: tcp\n    host: h\n    port: 1\n    direction: out\n    level: conditional\n    purpose: p\n    source: {note: n}\n", []string{
			`p.yml:8: check "a" is conditional, so it needs when: (the bool param that switches it on)`}},
		{"when naming a string param", "name: p\nparams:\n  - {name: sip, example: x, required: true}\nchecks:\n  - name: a\n    kind: tcp\n    host: h\n    port: 1\n    when: sip\n    direction: out\n    level: conditional\n    purpose: p\n    source: {note: n}\n", []string{
			`p.yml:9: when of check "a" names param "sip", which is a string; when: takes a param of type: bool`}},
		{"when naming an undeclared param", "name: p\nparams:\n  - {name: sip, type: bool}\nchecks:\n  - name: a\n    kind: tcp\n    host: h\n    port: 1\n    when: sipp\n    direction: out\n    level: conditional\n    purpose: p\n    source: {note: n}\n", []string{
			`p.yml:9: when of check "a" names "sipp", which is not declared under params: (did you mean "sip"?)`}},
		{"when without bool params", "name: p\nchecks:\n  - name: a\n    kind: tcp\n    host: h\n    port: 1\n    when: sip\n    direction: out\n    level: conditional\n    purpose: p\n    source: {note: n}\n", []string{
			`p.yml:7: when of check "a" names "sip", which is not declared under params: (declare it with type: bool)`}},
		{"bool param substituted", "name: p\nparams:\n  - {name: sip, type: bool}\nchecks:\n  - {name: a, kind: tcp, host: '${sip}', port: 1, " + meta + "}\n", []string{
			`p.yml:5: host of check "a" uses ${sip}, a bool param; only string params substitute (bool params switch checks on through when:)`}},
		{"source problems", "name: p\nchecks:\n" +
			"  - {name: a, kind: tcp, host: h, port: 1, direction: out, level: essential, purpose: p, source: {document: d.txt}}\n" +
			"  - {name: b, kind: tcp, host: h, port: 1, direction: out, level: essential, purpose: p, source: {document: d.txt, table: t, row: r, note: n}}\n" +
			"  - {name: c, kind: tcp, host: h, port: 1, direction: out, level: essential, purpose: p, source: {}}\n" +
			"  - {name: d, kind: tcp, host: h, port: 1, direction: out, level: essential, purpose: ' ', source: {note: n, page: 3}}\n", []string{
			`p.yml:3: source of check "a" names document "d.txt"; add table: and row: too (or use note: instead)`,
			`p.yml:4: source of check "b" sets both note: and document:; use one (a document row, or a note why there is none)`,
			`p.yml:5: source of check "c" needs document: with table: and row:, or note: (why the check was added without one)`,
			`p.yml:6: unknown key "page" in source of check "d" (known: document, note, row, table)`,
			`p.yml:6: check "d" has no purpose; add purpose: (what the check proves, for the people reading its result)`}},
		{"bad param type and bool rules", "name: p\nparams:\n  - {name: a, type: int}\n  - {name: b, type: bool, required: true, example: x}\n  - {name: c, type: bool, default: maybe}\nchecks:\n  - {name: x, kind: tcp, host: h, port: 1, " + meta + "}\n", []string{
			`p.yml:3: type of param "a" must be string or bool, got "int"`,
			`p.yml:4: param "b" is a bool, which cannot be required: unset, it is false`,
			`p.yml:5: default of param "c" must be true or false (it is a bool), got "maybe"`}},
		{"default without default_source", "name: p\nparams:\n  - name: h\n    default: h.test\n  - {name: i, default_source: s}\nchecks:\n  - {name: x, kind: tcp, host: '${h}', port: 1, " + meta + "}\n", []string{
			`p.yml:4: param "h" has a default, so it needs default_source: (where this default comes from: the vendor's document, or why connprobe chose it)`,
			`p.yml:5: param "i" has default_source: but no default:`}},
		{"not_covered problems", "name: p\nnot_covered:\n  - {table: t, row: r}\n  - {why: w}\n  - {table: t, row: r, why: w, whom: x}\nchecks:\n  - {name: x, kind: tcp, host: h, port: 1, " + meta + "}\n", []string{
			`p.yml:3: not_covered entry #1 has no why; add why: (why no check covers it)`,
			`p.yml:4: not_covered entry #2 names nothing; add table: and row: (the document's row not covered)`,
			`p.yml:5: unknown key "whom" in not_covered entry #3 (did you mean "why"?)`}},
		{"profile source with a row", "name: p\nsource: {document: d.txt, row: r}\nchecks:\n  - {name: x, kind: tcp, host: h, port: 1, " + meta + "}\n", []string{
			`p.yml:2: unknown key "row" in source of the profile (known: document, note)`}},
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
	prof := "name: local\nchecks:\n  - name: a\n    kind: tls\n    host: h\n    tls: {ca_file: vendor-ca.pem}\n    direction: out\n    level: essential\n    purpose: p\n    source: {note: n}\n"
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

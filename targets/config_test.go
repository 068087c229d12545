package targets

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/connprobe/connprobe/probe"
)

// checkKeys is the list of check keys that an unknown-key error names.
// A refused password: is not among them: it is refused with its reason.
const checkKeys = "broadcast, dns_server, essential, expect_reply, expect_status, follow_redirects, ftp, host, interval, " +
	"ip_family, kind, max_redirects, method, name, ntp, password_env, password_file, path, payload, " +
	"port, ports, protocol, proxy, query, send, send_hex, source_port, timeout, tls, user"

// kindList is how errors list the kinds; it grows as probe gains kinds.
func kindList() string { return strings.Join(probe.KindNames(), ", ") }

// errLines splits a joined error into its lines for exact comparison.
func errLines(err error) []string {
	if err == nil {
		return nil
	}
	return strings.Split(err.Error(), "\n")
}

func checkErr(t *testing.T, err error, want []string) {
	t.Helper()
	if got := errLines(err); !reflect.DeepEqual(got, want) {
		t.Errorf("errors:\n got: %q\nwant: %q", got, want)
	}
}

// build parses yml as config.yml and expands it.
func build(yml string, opts Options) ([]*probe.Check, error) {
	cfg, err := Parse("config.yml", []byte(yml))
	if err != nil {
		return nil, err
	}
	return cfg.checks(opts)
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		yml  string
		want []string
	}{
		{"empty file", "", []string{
			"config.yml: the file is empty; it needs checks: or profiles: (see the quickstart example)"}},
		{"only comments", "# nothing\n\n", []string{
			"config.yml: the file is empty; it needs checks: or profiles: (see the quickstart example)"}},
		{"syntax", "checks: [\n", []string{
			"config.yml:1: invalid YAML: did not find expected node content"}},
		{"two documents", "checks: []\n---\nchecks: []\n", []string{
			"config.yml:2: a second YAML document (---) begins here; put everything in one document"}},
		{"top level not a mapping", "- a\n", []string{
			"config.yml:1: the top level must be a mapping (key: value), got a list"}},
		{"unknown top key", "chekcs: []\n", []string{
			`config.yml:1: unknown key "chekcs" in the top level (did you mean "checks"?)`}},
		{"unknown check key", `checks:
  - name: vendor-https
    kind: tls
    host: api.example.com
    port: 443
    essential: true
    intervl: 30s
`, []string{`config.yml:7: unknown key "intervl" in check "vendor-https" (did you mean "interval"?)`}},
		{"unknown key, nothing close", "checks:\n  - {name: a, kind: tcp, host: h, port: 1, zzzzzzzz: 1}\n", []string{
			`config.yml:2: unknown key "zzzzzzzz" in check "a" (known: ` + checkKeys + `)`}},
		{"repeated key", "checks:\n  - name: a\n    kind: tcp\n    host: h\n    host: i\n    port: 1\n", []string{
			`config.yml:5: key "host" repeated in check "a" (first at line 4)`}},
		{"checks not a list", "checks: {a: 1}\n", []string{
			`config.yml:1: checks must be a list (each entry starting with "- name:"), got a mapping`}},
		{"bad duration", "checks:\n  - name: a\n    kind: tcp\n    host: h\n    port: 1\n    interval: 30\n", []string{
			`config.yml:6: interval in check "a": "30" is not a duration (a unit is needed, e.g. "30s")`}},
		{"bad duration word", "defaults:\n  timeout: soon\n", []string{
			`config.yml:2: timeout in defaults: "soon" is not a duration (use a Go duration like "30s", "2m" or "1h30m")`}},
		{"zero timeout", "checks:\n  - {name: a, kind: tcp, host: h, port: 1, timeout: 0s}\n", []string{
			`config.yml:2: timeout in check "a" must be positive, got 0s`}},
		{"interval too short", "defaults:\n  interval: 100ms\n  timeout: 50ms\n", []string{
			`config.yml:2: interval 100ms in defaults is too short; at least 1s`}},
		{"timeout not below interval in check", "checks:\n  - name: a\n    kind: tcp\n    host: h\n    port: 1\n    interval: 10s\n    timeout: 10s\n", []string{
			`config.yml:7: timeout 10s in check "a" must be below its interval 10s`}},
		{"timeout not below interval in defaults", "defaults: {interval: 10s, timeout: 20s}\n", []string{
			`config.yml:1: timeout 20s in defaults must be below the default interval 10s`}},
		{"unknown kind", "checks:\n  - name: a\n    kind: tlss\n    host: h\n", []string{
			`config.yml:3: unknown kind "tlss" in check "a" (did you mean "tls"?)`}},
		{"missing name kind host", "checks:\n  - port: 1\n", []string{
			`config.yml:2: check #1 has no name; add name: (letters, digits, '.', '_', '-')`,
			`config.yml:2: check #1 has no kind; add kind: (one of: ` + kindList() + `)`,
			`config.yml:2: check #1 has no host; add host: (a DNS name or IP address)`}},
		{"bad name", "checks:\n  - {name: a/b, kind: tcp, host: h, port: 1}\n", []string{
			`config.yml:2: check name "a/b" is not allowed; use letters, digits, '.', '_' and '-', starting with a letter or digit`}},
		{"duplicate names", "checks:\n  - {name: a, kind: tcp, host: h, port: 1}\n  - {name: a, kind: tcp, host: i, port: 2}\n", []string{
			`config.yml:3: duplicate check name "a" (first at line 2); names must be unique`}},
		{"port and ports", "checks:\n  - name: a\n    kind: tcp\n    host: h\n    port: 1\n    ports: [2, 3]\n", []string{
			`config.yml:6: check "a" sets both port (line 5) and ports; use one: port for one port, ports for a list or range`}},
		{"port wrong type", "checks:\n  - {name: a, kind: tcp, host: h, port: [1]}\n", []string{
			`config.yml:2: port in check "a" must be a port number (1-65535), got a list`}},
		{"ports wrong type", "checks:\n  - name: a\n    kind: tcp\n    host: h\n    ports: {a: 1}\n", []string{
			`config.yml:5: ports in check "a" must be a range like "23100-23199" or a list like [80, 443], got a mapping`}},
		{"host wrong type", "checks:\n  - {name: a, kind: tcp, host: [h], port: 1}\n", []string{
			`config.yml:2: host in check "a" must be a string, got a list`}},
		{"essential not bool", "checks:\n  - {name: a, kind: tcp, host: h, port: 1, essential: yes}\n", []string{
			`config.yml:2: essential in check "a" must be true or false, got "yes"`}},
		{"bad ip_family", "checks:\n  - {name: a, kind: tcp, host: h, port: 1, ip_family: v4}\n", []string{
			`config.yml:2: ip_family in check "a" must be ipv4, ipv6 or both, got "v4"`}},
		{"bad ip_family in defaults", "defaults:\n  ip_family: 4\n", []string{
			`config.yml:2: ip_family in defaults must be ipv4, ipv6 or both, got "4"`}},
		{"global server_name", "tls:\n  server_name: x\n", []string{
			`config.yml:2: server_name cannot be global (each host has its own name); set tls.server_name in the check`}},
		{"unknown tls key", "checks:\n  - name: a\n    kind: tls\n    host: h\n    tls: {ca_fle: x}\n", []string{
			`config.yml:5: unknown key "ca_fle" in tls of check "a" (did you mean "ca_file"?)`}},
		{"param outside profile", "checks:\n  - {name: a, kind: tls, host: '${h}'}\n", []string{
			`config.yml:2: host in check "a" holds "${h}", but ${...} params work only in profiles`}},
		{"profile-check keys in a config check", "checks:\n  - name: a\n    kind: tcp\n    host: h\n    port: 1\n    level: essential\n    direction: out\n    when: x\n    purpose: p\n    source: {note: n}\n", []string{
			`config.yml:6: level in check "a" works only in profile checks; in a config file write essential: true or false`,
			`config.yml:7: direction in check "a" works only in profile checks`,
			`config.yml:8: when in check "a" works only in profile checks`,
			`config.yml:9: purpose in check "a" works only in profile checks`,
			`config.yml:10: source in check "a" works only in profile checks`}},
		{"profiles entry unknown key", "profiles:\n  - name: p\n    parms: {a: 1}\n", []string{
			`config.yml:3: unknown key "parms" in profile "p" (did you mean "params"?)`}},
		{"profile listed twice", "profiles:\n  - p\n  - name: p\n", []string{
			`config.yml:3: profile "p" listed twice (first at line 2)`}},
		{"param not scalar", "profiles:\n  - name: p\n    params:\n      a: [1]\n", []string{
			`config.yml:4: param "a" in profile "p" must be a single value, got a list`}},
		{"several errors in file order", "defaults:\n  interval: x\nchecks:\n  - name: a\n    kind: zzzz\n    host: h\n    port: 1\n    bogus: 1\n", []string{
			`config.yml:2: interval in defaults: "x" is not a duration (use a Go duration like "30s", "2m" or "1h30m")`,
			`config.yml:5: unknown kind "zzzz" in check "a" (known: ` + kindList() + `)`,
			`config.yml:8: unknown key "bogus" in check "a" (known: ` + checkKeys + `)`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := Parse("config.yml", []byte(tt.yml))
			if err == nil {
				t.Fatalf("no error; config %+v", cfg)
			}
			checkErr(t, err, tt.want)
			var e *Error
			if !errors.As(err, &e) || e.File != "config.yml" {
				t.Errorf("error is not a *targets.Error naming config.yml: %#v", err)
			}
		})
	}
}

// writeCA writes a self-signed CA certificate as PEM and returns its path.
func writeCA(t *testing.T, dir, name string) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "Test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestChecksErrors(t *testing.T) {
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "not.pem")
	if err := os.WriteFile(notPEM, []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing.pem")
	tests := []struct {
		name string
		yml  string
		opts Options
		want []string
	}{
		{"port out of range", "checks:\n  - {name: a, kind: tcp, host: h, port: 70000}\n", Options{}, []string{
			`config.yml:2: port in check "a": "70000" is out of range (ports are 1-65535)`}},
		{"port zero", "checks:\n  - name: a\n    kind: tcp\n    host: h\n    port: 0\n", Options{}, []string{
			`config.yml:5: port in check "a": "0" is out of range (ports are 1-65535)`}},
		{"port not a number", "checks:\n  - {name: a, kind: tcp, host: h, port: http}\n", Options{}, []string{
			`config.yml:2: port in check "a": "http" is not a port number (1-65535)`}},
		{"backwards range", "checks:\n  - name: a\n    kind: tcp\n    host: h\n    ports: \"200-100\"\n", Options{}, []string{
			`config.yml:5: ports in check "a": "200-100" runs backwards; write "100-200"`}},
		{"range too large", "checks:\n  - name: a\n    kind: tcp\n    host: h\n    ports: 1-1001\n", Options{}, []string{
			`config.yml:5: ports in check "a": range "1-1001" has 1001 ports; at most 1000 per check (split it into several checks)`}},
		{"list too large", "checks:\n  - name: a\n    kind: tcp\n    host: h\n    ports: [1-600, 701-1101]\n", Options{}, []string{
			`config.yml:5: ports in check "a" expand to 1001 ports; at most 1000 per check (split it into several checks)`}},
		{"range end out of range", "checks:\n  - name: a\n    kind: tcp\n    host: h\n    ports:\n      - 80\n      - 65535-65536\n", Options{}, []string{
			`config.yml:7: ports in check "a": "65535-65536" ends with "65536", which is out of range (ports are 1-65535)`}},
		{"port listed twice", "checks:\n  - name: a\n    kind: tcp\n    host: h\n    ports: [80, 443, 80]\n", Options{}, []string{
			`config.yml:5: ports in check "a": port 80 is listed twice`}},
		{"no port, no default", "checks:\n  - name: a\n    kind: tcp\n    host: h\n", Options{}, []string{
			`config.yml:2: check "a" has no port, and kind tcp has no default port; add port: or ports:`}},
		{"empty host", "checks:\n  - {name: a, kind: tls, host: ''}\n", Options{}, []string{
			`config.yml:2: host in check "a": "" is empty; set a DNS name or IP address`}},
		{"host is a URL", "checks:\n  - {name: a, kind: tls, host: 'https://api.example.com/v1'}\n", Options{}, []string{
			`config.yml:2: host in check "a": "https://api.example.com/v1" is a URL; write only the name, e.g. host: api.example.com`}},
		{"host with port", "checks:\n  - {name: a, kind: tls, host: 'api.example.com:8443'}\n", Options{}, []string{
			`config.yml:2: host in check "a": "api.example.com:8443" includes a port; write host: api.example.com and port: 8443`}},
		{"IPv4 literal with ipv6", "checks:\n  - {name: a, kind: tls, host: 192.0.2.1, ip_family: ipv6}\n", Options{}, []string{
			`config.yml:2: host in check "a": "192.0.2.1" is an IPv4 address, but ip_family is ipv6`}},
		{"timeout from defaults vs check interval", "defaults:\n  timeout: 20s\nchecks:\n  - name: a\n    kind: tls\n    host: h\n    interval: 10s\n", Options{}, []string{
			`config.yml:7: check "a": timeout 20s (from defaults) must be below interval 10s (set in the check); lower the timeout or raise the interval`}},
		{"default timeout vs defaults interval", "defaults:\n  interval: 3s\nchecks:\n  - {name: a, kind: tls, host: h}\n", Options{}, []string{
			`config.yml:4: check "a": timeout 5s (the default) must be below interval 3s (from defaults); lower the timeout or raise the interval`}},
		{"dns_server without port", "checks:\n  - {name: a, kind: tls, host: h, dns_server: 192.0.2.53}\n", Options{}, []string{
			`config.yml:2: dns_server in check "a": "192.0.2.53": needs a port, e.g. "192.0.2.53:53"`}},
		{"dns_server in defaults bad port", "defaults:\n  dns_server: 'ns.example:99999'\nchecks:\n  - {name: a, kind: tls, host: h}\n", Options{}, []string{
			`config.yml:2: dns_server in defaults: port "99999" is out of range (ports are 1-65535)`}},
		{"ca_file missing", "tls:\n  ca_file: " + missing + "\nchecks:\n  - {name: a, kind: tls, host: h}\n", Options{}, []string{
			`config.yml:2: ca_file in the global tls: cannot read ` + missing + `: no such file or directory`}},
		{"ca_file not PEM", "checks:\n  - name: a\n    kind: tls\n    host: h\n    tls:\n      ca_file: " + notPEM + "\n", Options{}, []string{
			`config.yml:6: tls.ca_file in check "a": ` + notPEM + ` holds no PEM certificate (expected "-----BEGIN CERTIFICATE-----" blocks)`}},
		{"nothing to probe", "defaults: {interval: 30s}\n", Options{}, []string{
			`config.yml: nothing to probe: add checks: or profiles:, or pass --profile`}},
		{"bad --param", "checks:\n  - {name: a, kind: tls, host: h}\n", Options{Params: []string{"cloud_host=x"}}, []string{
			`--param "cloud_host=x": want PROFILE.KEY=VALUE, e.g. --param myprofile.host=example.com`}},
		{"--param for profile not enabled", "checks:\n  - {name: a, kind: tls, host: h}\n", Options{Params: []string{"vendor.cloud_host=x"}}, []string{
			`--param "vendor.cloud_host=x": profile "vendor" is not enabled; list it under profiles: or pass --profile vendor`}},
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

func TestDefaults(t *testing.T) {
	checks, err := build("checks:\n  - {name: a, kind: tls, host: h}\n  - {name: b, kind: tcp, host: h, port: 22}\n", Options{})
	if err != nil {
		t.Fatal(err)
	}
	want := []*probe.Check{
		{Name: "a", Kind: "tls", Host: "h", Port: 443, Network: "tcp", IPFamily: "both", Essential: true, Interval: 60 * time.Second, Timeout: 5 * time.Second},
		{Name: "b", Kind: "tcp", Host: "h", Port: 22, Network: "tcp", IPFamily: "both", Essential: true, Interval: 60 * time.Second, Timeout: 5 * time.Second},
	}
	if !reflect.DeepEqual(checks, want) {
		t.Errorf("got  %+v\nwant %+v", deref(checks), deref(want))
	}
}

func deref(cs []*probe.Check) []probe.Check {
	var out []probe.Check
	for _, c := range cs {
		out = append(out, *c)
	}
	return out
}

func TestPrecedence(t *testing.T) {
	yml := `defaults:
  interval: 2m
  timeout: 10s
  ip_family: ipv4
  dns_server: 192.0.2.53:53
checks:
  - {name: inherits, kind: tcp, host: h, port: 1}
  - name: own
    kind: tcp
    host: h
    port: 1
    interval: 30s
    timeout: 3s
    ip_family: ipv6
    dns_server: "[2001:db8::53]:53"
    essential: false
`
	checks, err := build(yml, Options{})
	if err != nil {
		t.Fatal(err)
	}
	in, own := checks[0], checks[1]
	if in.Interval != 2*time.Minute || in.Timeout != 10*time.Second || in.IPFamily != "ipv4" || in.DNSServer != "192.0.2.53:53" || !in.Essential {
		t.Errorf("inherits: %+v", *in)
	}
	if own.Interval != 30*time.Second || own.Timeout != 3*time.Second || own.IPFamily != "ipv6" || own.DNSServer != "[2001:db8::53]:53" || own.Essential {
		t.Errorf("own: %+v", *own)
	}
}

func TestDefaultInterval(t *testing.T) {
	// No real kind has a MinInterval yet (NTP will), so the rule is tested directly.
	if got := defaultInterval(probe.KindSpec{}); got != 60*time.Second {
		t.Errorf("no floor: %s", got)
	}
	if got := defaultInterval(probe.KindSpec{MinInterval: 5 * time.Minute}); got != 5*time.Minute {
		t.Errorf("floor 5m: %s", got)
	}
	if got := defaultInterval(probe.KindSpec{MinInterval: 10 * time.Second}); got != 60*time.Second {
		t.Errorf("floor 10s: %s", got)
	}
}

func TestPortExpansion(t *testing.T) {
	tests := []struct {
		ports string
		want  []int
	}{
		{`"23100-23104"`, []int{23100, 23101, 23102, 23103, 23104}},
		{`[80, 443, 8080]`, []int{80, 443, 8080}},
		{`[22, "8000-8002"]`, []int{22, 8000, 8001, 8002}},
		{`"80,443"`, []int{80, 443}},
		{`"7-7"`, []int{7}},
		{`1-1000`, nil}, // the limit itself is allowed
	}
	for _, tt := range tests {
		t.Run(tt.ports, func(t *testing.T) {
			checks, err := build("checks:\n  - {name: r, kind: tcp, host: h, ports: "+tt.ports+"}\n", Options{})
			if err != nil {
				t.Fatal(err)
			}
			var got []int
			ids := map[string]bool{}
			for _, c := range checks {
				if c.Name != "r" || c.Host != "h" || c.Profile != "" {
					t.Errorf("check %+v", *c)
				}
				got = append(got, c.Port)
				ids[c.ID()] = true
			}
			if len(ids) != len(checks) {
				t.Errorf("IDs not unique: %d for %d checks", len(ids), len(checks))
			}
			if tt.want == nil {
				if len(got) != 1000 || got[0] != 1 || got[999] != 1000 {
					t.Errorf("1-1000: %d ports", len(got))
				}
				return
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("ports %v, want %v", got, tt.want)
			}
		})
	}
}

func TestTLSMerge(t *testing.T) {
	dir := t.TempDir()
	writeCA(t, dir, "global.pem")
	writeCA(t, dir, "own.pem")
	cfgPath := filepath.Join(dir, "config.yml")
	yml := `tls:
  ca_file: global.pem
  expect_issuer: [Global CA]
checks:
  - {name: inherits, kind: tls, host: h}
  - name: own
    kind: tls
    host: h
    tls: {ca_file: own.pem, server_name: api.internal, expect_issuer: [Own CA, Other CA]}
  - name: unpinned
    kind: tls
    host: h
    tls: {expect_issuer: []}
`
	if err := os.WriteFile(cfgPath, []byte(yml), 0o600); err != nil {
		t.Fatal(err)
	}
	checks, cfg, err := Build(cfgPath, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Source != cfgPath {
		t.Errorf("Source %q", cfg.Source)
	}
	want := []probe.TLSOptions{
		{CAFile: filepath.Join(dir, "global.pem"), ExpectIssuer: []string{"Global CA"}},
		{CAFile: filepath.Join(dir, "own.pem"), ServerName: "api.internal", ExpectIssuer: []string{"Own CA", "Other CA"}},
		{CAFile: filepath.Join(dir, "global.pem"), ExpectIssuer: []string{}},
	}
	for i, c := range checks {
		if !reflect.DeepEqual(c.GetTLS(), want[i]) {
			t.Errorf("%s: TLS %+v, want %+v", c.Name, c.TLS, want[i])
		}
	}
}

func TestLoadErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := Load(filepath.Join(dir, "nope.yml")); err == nil || !strings.Contains(err.Error(), "nope.yml") {
		t.Errorf("missing file: %v", err)
	}
	p := filepath.Join(dir, "c.yml")
	if err := os.WriteFile(p, []byte("checks:\n  - {name: a, kind: tcp, host: h, port: 1, x: 1}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, _, err := Build(p, Options{})
	want := p + `:2: unknown key "x" in check "a" (known: ` + checkKeys + `)`
	checkErr(t, err, []string{want})
}

func TestQuickstart(t *testing.T) {
	cfg, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Source != "embedded:quickstart.yml" {
		t.Errorf("Source %q", cfg.Source)
	}
	// Build with no file and no --profile is the quickstart.
	checks, cfg2, err := Build("", Options{})
	if err != nil {
		t.Fatal(err)
	}
	if cfg2.Source != DefaultSource {
		t.Errorf("Build source %q", cfg2.Source)
	}
	want := []probe.Check{
		{Name: "clover-api-https", Kind: "tls", Host: "api.clover.com", Port: 443, Network: "tcp", IPFamily: "both", Essential: true, Interval: time.Minute, Timeout: 5 * time.Second},
		{Name: "clover-http", Kind: "tcp", Host: "www.clover.com", Port: 80, Network: "tcp", IPFamily: "both", Essential: true, Interval: time.Minute, Timeout: 5 * time.Second},
		{Name: "public-https-reference", Kind: "tls", Host: "time.cloudflare.com", Port: 443, Network: "tcp", IPFamily: "both", Essential: false, Interval: time.Minute, Timeout: 5 * time.Second},
	}
	if got := deref(checks); !reflect.DeepEqual(got, want) {
		t.Errorf("quickstart:\n got %+v\nwant %+v", got, want)
	}
}

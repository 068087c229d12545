package targets

import (
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/connprobe/connprobe/probe"
)

// multiTransportHint is how a refused protocol: on a kind that is not named
// after its protocol ends: it depends on which kinds have several transports
// (none until sip and listen are registered).
func multiTransportHint() string {
	var multi []string
	for name, k := range probe.Kinds() {
		if len(k.Transports) > 0 {
			multi = append(multi, name)
		}
	}
	if len(multi) == 0 {
		return "; remove protocol:"
	}
	sort.Strings(multi)
	return "; protocol: chooses the transport only for kind " + orList(multi)
}

// udpCheck is a udp check at config.yml lines 2-5; extra keys follow from line 6.
func udpCheck(extra string) string {
	return "checks:\n  - name: a\n    kind: udp\n    host: h\n    port: 7\n" + extra
}

func TestKindKeyParseErrors(t *testing.T) {
	tests := []struct {
		name string
		yml  string
		want []string
	}{
		// protocol:
		{"protocol on tcp", "checks:\n  - name: a\n    kind: tcp\n    host: h\n    port: 1\n    protocol: udp\n", []string{
			`config.yml:6: protocol in check "a": kind tcp speaks only tcp, got "udp"; for UDP use kind: udp`}},
		{"protocol tls on udp", udpCheck("    payload: echo\n    protocol: tls\n"), []string{
			`config.yml:7: protocol in check "a": kind udp speaks only udp, got "tls"; for TLS use kind: tls`}},
		{"protocol tls on kind tls", "checks:\n  - {name: a, kind: tls, host: h, protocol: tls}\n", []string{
			`config.yml:2: protocol in check "a": kind tls speaks only tcp, got "tls"` + multiTransportHint()}},
		{"protocol tcp on ntp", "checks:\n  - name: a\n    kind: ntp\n    host: h\n    protocol: tcp\n", []string{
			`config.yml:5: protocol in check "a": kind ntp speaks only udp, got "tcp"` + multiTransportHint()}},
		{"protocol not a string", "checks:\n  - {name: a, kind: tcp, host: h, port: 1, protocol: [udp]}\n", []string{
			`config.yml:2: protocol in check "a" must be a string, got a list`}},

		// source_port:
		{"source_port on tcp", "checks:\n  - name: a\n    kind: tcp\n    host: h\n    port: 1\n    source_port: 1234\n", []string{
			`config.yml:6: source_port in check "a": kind tcp does not bind a source port; only kinds udp, ntp and sip (over udp) do`}},
		{"source_port on tls", "checks:\n  - {name: a, kind: tls, host: h, source_port: 1234}\n", []string{
			`config.yml:2: source_port in check "a": kind tls does not bind a source port; only kinds udp, ntp and sip (over udp) do`}},
		{"source_port not a port", "checks:\n  - name: a\n    kind: ntp\n    host: h\n    source_port: true\n", []string{
			`config.yml:5: source_port in check "a" must be a port number (1-65535), got the boolean true`}},
		{"source_port param outside a profile", "checks:\n  - name: a\n    kind: ntp\n    host: h\n    source_port: ${sp}\n", []string{
			`config.yml:5: source_port in check "a" holds "${sp}", but ${...} params work only in profiles`}},
		{"protocol refused: source_port not judged", "checks:\n  - name: a\n    kind: tcp\n    host: h\n    port: 1\n    protocol: udp\n    source_port: 123\n", []string{
			`config.yml:6: protocol in check "a": kind tcp speaks only tcp, got "udp"; for UDP use kind: udp`}},

		// The udp kind's keys on other kinds.
		{"payload on tcp", "checks:\n  - name: a\n    kind: tcp\n    host: h\n    port: 1\n    payload: echo\n", []string{
			`config.yml:6: payload in check "a": only kind udp takes payload; this check is kind tcp`}},
		{"every udp key on ntp", "checks:\n  - name: a\n    kind: ntp\n    host: h\n    payload: dns\n    send: x\n    send_hex: '00'\n    query: example.com\n    expect_reply: false\n", []string{
			`config.yml:5: payload in check "a": only kind udp takes payload; this check is kind ntp`,
			`config.yml:6: send in check "a": only kind udp takes send; this check is kind ntp`,
			`config.yml:7: send_hex in check "a": only kind udp takes send_hex; this check is kind ntp`,
			`config.yml:8: query in check "a": only kind udp takes query; this check is kind ntp`,
			`config.yml:9: expect_reply in check "a": only kind udp takes expect_reply; this check is kind ntp`}},
		{"ntp options on udp", udpCheck("    payload: echo\n    ntp: {samples: 2}\n"), []string{
			`config.yml:7: ntp in check "a": only kind ntp takes ntp: options; this check is kind udp`}},
		{"ntp options on tls", "checks:\n  - name: a\n    kind: tls\n    host: h\n    ntp:\n      samples: 2\n", []string{
			`config.yml:5: ntp in check "a": only kind ntp takes ntp: options; this check is kind tls`}},

		// What a udp check sends.
		{"udp without a request", udpCheck(""), []string{
			`config.yml:2: check "a" of kind udp needs what to send: payload: (echo, stun or dns), send: (text) or send_hex: (bytes in hex)`}},
		{"payload and send", udpCheck("    payload: echo\n    send: hello\n"), []string{
			`config.yml:7: check "a" sets both payload (line 6) and send; use one of payload, send or send_hex`}},
		{"all three, send_hex first", udpCheck("    send_hex: '0a'\n    send: hello\n    payload: stun\n"), []string{
			`config.yml:7: check "a" sets both send_hex (line 6) and send; use one of payload, send or send_hex`,
			`config.yml:8: check "a" sets both send_hex (line 6) and payload; use one of payload, send or send_hex`}},
		{"payload typo", udpCheck("    payload: ech\n"), []string{
			`config.yml:6: payload in check "a" must be echo, stun or dns, got "ech" (did you mean "echo"?)`}},
		{"payload unknown", udpCheck("    payload: ntp-request\n"), []string{
			`config.yml:6: payload in check "a" must be echo, stun or dns, got "ntp-request"`}},
		{"payload empty", udpCheck("    payload:\n"), []string{
			`config.yml:6: payload in check "a" must be a string, got nothing`}},
		{"query with payload echo", udpCheck("    payload: echo\n    query: example.com\n"), []string{
			`config.yml:7: query in check "a": only payload: dns sends a query, and this check has payload: echo`}},
		{"query with send", udpCheck("    send: hi\n    query: example.com\n"), []string{
			`config.yml:7: query in check "a": only payload: dns sends a query, and this check sends its own bytes`}},
		{"query without any request", udpCheck("    query: example.com\n"), []string{
			`config.yml:2: check "a" of kind udp needs what to send: payload: (echo, stun or dns), send: (text) or send_hex: (bytes in hex)`,
			`config.yml:6: query in check "a": only payload: dns sends a query`}},
		{"query with a bad payload is not judged", udpCheck("    payload: dnss\n    query: example.com\n"), []string{
			`config.yml:6: payload in check "a" must be echo, stun or dns, got "dnss" (did you mean "dns"?)`}},
		{"query not a string", udpCheck("    payload: dns\n    query: {a: 1}\n"), []string{
			`config.yml:7: query in check "a" must be a string, got a mapping`}},
		{"query param outside a profile", udpCheck("    payload: dns\n    query: ${q}\n"), []string{
			`config.yml:7: query in check "a" holds "${q}", but ${...} params work only in profiles`}},
		{"send empty", udpCheck("    send: ''\n"), []string{
			`config.yml:6: send in check "a" is empty; a request needs at least one byte (or use payload: echo)`}},
		{"send not a string", udpCheck("    send: [a, b]\n"), []string{
			`config.yml:6: send in check "a" must be a string, got a list`}},
		{"send too long", udpCheck("    send: " + strings.Repeat("x", MaxSendBytes+1) + "\n"), []string{
			`config.yml:6: send in check "a" is 1401 bytes; at most 1400, because a larger datagram may be fragmented and firewalls often drop fragments`}},
		{"send_hex bad digit", udpCheck("    send_hex: '0a zz'\n"), []string{
			`config.yml:6: send_hex in check "a" holds 'z' at character 4, which is not a hex digit (0-9, a-f; spaces are allowed between bytes)`}},
		{"send_hex with 0x", udpCheck("    send_hex: '0x0a'\n"), []string{
			`config.yml:6: send_hex in check "a" holds 'x' at character 2, which is not a hex digit; write the digits without a 0x prefix`}},
		{"send_hex odd", udpCheck("    send_hex: 0a0\n"), []string{
			`config.yml:6: send_hex in check "a" has 3 hex digits, an odd number; write two digits per byte`}},
		{"send_hex empty", udpCheck("    send_hex: '  '\n"), []string{
			`config.yml:6: send_hex in check "a" is empty; write the bytes in hex, e.g. "0a0b 0c0d"`}},
		{"send_hex a list", udpCheck("    send_hex: [0a, 0b]\n"), []string{
			`config.yml:6: send_hex in check "a" must be a string of hex digits like "0a0b 0c0d", got a list`}},
		{"send_hex splits a byte", udpCheck("    send_hex: 1 2 3 4\n"), []string{
			`config.yml:6: send_hex in check "a" splits a byte with white space at character 2; write each byte as two hex digits, e.g. "01 02"`}},
		{"send_hex too long", udpCheck("    send_hex: " + strings.Repeat("ab", MaxSendBytes+1) + "\n"), []string{
			`config.yml:6: send_hex in check "a" is 1401 bytes; at most 1400, because a larger datagram may be fragmented and firewalls often drop fragments`}},
		{"send_hex block with a bad line", udpCheck("    send_hex: |\n      0a0b\n      0c0g\n"), []string{
			`config.yml:6: send_hex in check "a" holds 'g' at character 9, which is not a hex digit (0-9, a-f; spaces are allowed between bytes)`}},
		{"expect_reply not a bool", udpCheck("    payload: echo\n    expect_reply: no-thanks\n"), []string{
			`config.yml:7: expect_reply in check "a" must be true or false, got "no-thanks"`}},

		// ntp:
		{"samples zero", "checks:\n  - name: a\n    kind: ntp\n    host: h\n    ntp:\n      samples: 0\n", []string{
			`config.yml:6: samples in ntp of check "a" must be a whole number from 1 to 8, got the number 0`}},
		{"samples nine", "checks:\n  - name: a\n    kind: ntp\n    host: h\n    ntp: {samples: 9}\n", []string{
			`config.yml:5: samples in ntp of check "a" must be a whole number from 1 to 8, got the number 9`}},
		{"samples a word", "checks:\n  - name: a\n    kind: ntp\n    host: h\n    ntp:\n      samples: two\n", []string{
			`config.yml:6: samples in ntp of check "a" must be a whole number from 1 to 8, got "two"`}},
		{"samples a fraction", "checks:\n  - name: a\n    kind: ntp\n    host: h\n    ntp:\n      samples: 1.5\n", []string{
			`config.yml:6: samples in ntp of check "a" must be a whole number from 1 to 8, got the number 1.5`}},
		{"max_root_distance above 16s", "checks:\n  - name: a\n    kind: ntp\n    host: h\n    ntp:\n      max_root_distance: 20s\n", []string{
			`config.yml:6: max_root_distance in ntp of check "a" is 20s; at most 16s (NTP's maximum dispersion: a larger limit accepts any server)`}},
		{"max_root_distance zero", "checks:\n  - name: a\n    kind: ntp\n    host: h\n    ntp:\n      max_root_distance: 0s\n", []string{
			`config.yml:6: max_root_distance in ntp of check "a" must be positive, got 0s`}},
		{"max_root_distance without unit", "checks:\n  - name: a\n    kind: ntp\n    host: h\n    ntp:\n      max_root_distance: 1.5\n", []string{
			`config.yml:6: max_root_distance in ntp of check "a": "1.5" is not a duration (a unit is needed, e.g. "1.5s")`}},
		{"ntp unknown key", "checks:\n  - name: a\n    kind: ntp\n    host: h\n    ntp:\n      sample: 2\n", []string{
			`config.yml:6: unknown key "sample" in ntp of check "a" (did you mean "samples"?)`}},
		{"ntp not a mapping", "checks:\n  - name: a\n    kind: ntp\n    host: h\n    ntp: [2]\n", []string{
			`config.yml:5: ntp of check "a" must be a mapping (key: value), got a list`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := Parse("config.yml", []byte(tt.yml))
			if err == nil {
				t.Fatalf("no error; config %+v", cfg)
			}
			checkErr(t, err, tt.want)
		})
	}
}

// Values that may come from params are checked after substitution.
func TestKindKeyChecksErrors(t *testing.T) {
	tests := []struct {
		name string
		yml  string
		want []string
	}{
		{"source_port zero", "checks:\n  - name: a\n    kind: ntp\n    host: h\n    source_port: 0\n", []string{
			`config.yml:5: source_port in check "a": "0" is out of range (ports are 1-65535)`}},
		{"source_port too high", "checks:\n  - {name: a, kind: ntp, host: h, source_port: 65536}\n", []string{
			`config.yml:2: source_port in check "a": "65536" is out of range (ports are 1-65535)`}},
		{"source_port a word", udpCheck("    payload: echo\n    source_port: ntp\n"), []string{
			`config.yml:7: source_port in check "a": "ntp" is not a port number (1-65535)`}},
		{"query empty", udpCheck("    payload: dns\n    query: ''\n"), []string{
			`config.yml:7: query in check "a": "" is empty; write a name such as example.com, or "." for the root`}},
		{"query a URL", udpCheck("    payload: dns\n    query: https://example.com/\n"), []string{
			`config.yml:7: query in check "a": "https://example.com/" is not a DNS name`}},
		{"query with two dots", udpCheck("    payload: dns\n    query: a..example.com\n"), []string{
			`config.yml:7: query in check "a": "a..example.com" has an empty label (a leading dot or two dots in a row)`}},
		{"query label too long", udpCheck("    payload: dns\n    query: " + strings.Repeat("a", 64) + ".com\n"), []string{
			`config.yml:7: query in check "a": "` + strings.Repeat("a", 64) + `.com" has a label of 64 characters; DNS allows at most 63`}},
		{"query name too long", udpCheck("    payload: dns\n    query: " + strings.Repeat("abcdefghi.", 26) + "com\n"), []string{
			`config.yml:7: query in check "a": "` + strings.Repeat("abcdefghi.", 26) + `com" is longer than 253 characters, the limit of a DNS name`}},
		{"explicit ntp interval still needs timeout below it", "checks:\n  - name: a\n    kind: ntp\n    host: h\n    interval: 3s\n", []string{
			`config.yml:5: check "a": timeout 5s (the default) must be below interval 3s (set in the check); lower the timeout or raise the interval`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checks, err := build(tt.yml, Options{})
			if err == nil {
				t.Fatalf("no error; %d checks", len(checks))
			}
			checkErr(t, err, tt.want)
		})
	}
}

func TestKindKeyChecks(t *testing.T) {
	base := func(kind string, port int, proto string) probe.Check {
		return probe.Check{Name: "a", Kind: kind, Host: "h", Port: port, Network: proto, IPFamily: "both",
			Essential: true, Interval: time.Minute, Timeout: 5 * time.Second}
	}
	with := func(c probe.Check, f func(*probe.Check)) probe.Check { f(&c); return c }
	ntpDefaults := probe.NTPOptions{Samples: 1, MaxRootDistance: 1500 * time.Millisecond}

	tests := []struct {
		name string
		yml  string
		want probe.Check
	}{
		{"udp echo", udpCheck("    payload: echo\n"),
			with(base("udp", 7, "udp"), func(c *probe.Check) { c.UDP = &probe.UDPOptions{Payload: "echo"} })},
		{"udp stun, protocol named", udpCheck("    payload: stun\n    protocol: udp\n"),
			with(base("udp", 7, "udp"), func(c *probe.Check) { c.UDP = &probe.UDPOptions{Payload: "stun"} })},
		{"udp dns with query, silence accepted, source port", udpCheck("    payload: dns\n    query: _sip._udp.example.com.\n    expect_reply: false\n    source_port: 5353\n"),
			with(base("udp", 7, "udp"), func(c *probe.Check) {
				c.UDP = &probe.UDPOptions{Payload: "dns", Query: "_sip._udp.example.com.", AcceptSilence: true}
				c.SourcePort = 5353
			})},
		{"udp dns asking the root", udpCheck("    payload: dns\n    query: .\n    expect_reply: true\n"),
			with(base("udp", 7, "udp"), func(c *probe.Check) { c.UDP = &probe.UDPOptions{Payload: "dns", Query: "."} })},
		{"udp send with YAML escapes", udpCheck("    send: \"PING\\r\\n\"\n"),
			with(base("udp", 7, "udp"), func(c *probe.Check) { c.UDP = &probe.UDPOptions{Send: []byte("PING\r\n")} })},
		{"udp send a number", udpCheck("    send: 42\n"),
			with(base("udp", 7, "udp"), func(c *probe.Check) { c.UDP = &probe.UDPOptions{Send: []byte("42")} })},
		{"udp send_hex with spaces and capitals", udpCheck("    send_hex: \"0a0B ff\\t00\"\n"),
			with(base("udp", 7, "udp"), func(c *probe.Check) { c.UDP = &probe.UDPOptions{Send: []byte{0x0a, 0x0b, 0xff, 0x00}} })},
		{"udp send_hex over lines", udpCheck("    send_hex: |\n      de ad\n      be ef\n"),
			with(base("udp", 7, "udp"), func(c *probe.Check) { c.UDP = &probe.UDPOptions{Send: []byte{0xde, 0xad, 0xbe, 0xef}} })},
		{"udp send_hex a YAML number keeps its digits", udpCheck("    send_hex: 0012\n"),
			with(base("udp", 7, "udp"), func(c *probe.Check) { c.UDP = &probe.UDPOptions{Send: []byte{0x00, 0x12}} })},
		{"udp send at the limit", udpCheck("    send_hex: " + strings.Repeat("00", MaxSendBytes) + "\n"),
			with(base("udp", 7, "udp"), func(c *probe.Check) { c.UDP = &probe.UDPOptions{Send: make([]byte, MaxSendBytes)} })},
		{"ntp defaults: port 123, 64s floor", "checks:\n  - {name: a, kind: ntp, host: h}\n",
			with(base("ntp", 123, "udp"), func(c *probe.Check) { c.Interval = 64 * time.Second; c.NTP = &ntpDefaults })},
		{"ntp explicit interval below the floor wins", "checks:\n  - {name: a, kind: ntp, host: h, interval: 10s, timeout: 2s}\n",
			with(base("ntp", 123, "udp"), func(c *probe.Check) { c.Interval = 10 * time.Second; c.Timeout = 2 * time.Second; c.NTP = &ntpDefaults })},
		{"ntp interval from defaults wins", "defaults: {interval: 30s}\nchecks:\n  - {name: a, kind: ntp, host: h}\n",
			with(base("ntp", 123, "udp"), func(c *probe.Check) { c.Interval = 30 * time.Second; c.NTP = &ntpDefaults })},
		{"ntp options, source port 123, protocol named", "checks:\n  - name: a\n    kind: ntp\n    host: h\n    protocol: udp\n    source_port: 123\n    ntp:\n      samples: 8\n      max_root_distance: 16s\n",
			with(base("ntp", 123, "udp"), func(c *probe.Check) {
				c.Interval = 64 * time.Second
				c.SourcePort = 123
				c.NTP = &probe.NTPOptions{Samples: 8, MaxRootDistance: 16 * time.Second}
			})},
		{"ntp: alone keeps the defaults", "checks:\n  - name: a\n    kind: ntp\n    host: h\n    ntp:\n",
			with(base("ntp", 123, "udp"), func(c *probe.Check) { c.Interval = 64 * time.Second; c.NTP = &ntpDefaults })},
		{"ntp only max_root_distance", "checks:\n  - {name: a, kind: ntp, host: h, ntp: {max_root_distance: 250ms}}\n",
			with(base("ntp", 123, "udp"), func(c *probe.Check) {
				c.Interval = 64 * time.Second
				c.NTP = &probe.NTPOptions{Samples: 1, MaxRootDistance: 250 * time.Millisecond}
			})},
		{"tcp with protocol tcp", "checks:\n  - {name: a, kind: tcp, host: h, port: 22, protocol: tcp}\n", base("tcp", 22, "tcp")},
		{"tls with protocol tcp", "checks:\n  - {name: a, kind: tls, host: h, protocol: tcp}\n", base("tls", 443, "tcp")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checks, err := build(tt.yml, Options{})
			if err != nil {
				t.Fatal(err)
			}
			if len(checks) != 1 {
				t.Fatalf("%d checks", len(checks))
			}
			if got := *checks[0]; !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

// Each port of a udp range gets the same request.
func TestUDPPortRange(t *testing.T) {
	checks, err := build("checks:\n  - {name: a, kind: udp, host: h, ports: 5000-5001, send_hex: 'ff'}\n", Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(checks) != 2 || checks[0].Port != 5000 || checks[1].Port != 5001 {
		t.Fatalf("checks %+v", deref(checks))
	}
	for _, c := range checks {
		if string(c.UDP.Send) != "\xff" || c.Network != "udp" {
			t.Errorf("check %+v", *c)
		}
	}
}

// requireKinds skips a test until probe registers the kinds it is about.
func requireKinds(t *testing.T, names ...string) {
	t.Helper()
	for _, n := range names {
		if _, ok := probe.Kinds()[n]; !ok {
			t.Skipf("kind %s is not registered yet", n)
		}
	}
}

// listen has two transports (tcp first) and no default port; broadcast
// only listens: neither binds a source port.
func TestListenAndBroadcastKeys(t *testing.T) {
	requireKinds(t, "listen", "broadcast")
	checks, err := build("checks:\n"+
		"  - {name: l-tcp, kind: listen, host: 0.0.0.0, port: 8080}\n"+
		"  - {name: l-udp, kind: listen, host: 0.0.0.0, port: 5060, protocol: udp}\n"+
		"  - {name: l-tcp2, kind: listen, host: 0.0.0.0, port: 8081, protocol: tcp}\n"+
		"  - {name: b, kind: broadcast, host: 0.0.0.0, port: 67, protocol: udp}\n", Options{})
	if err != nil {
		t.Fatal(err)
	}
	want := [][2]string{{"tcp", "tcp"}, {"udp", "udp"}, {"tcp", "tcp"}, {"", "udp"}}
	for i, c := range checks {
		if c.Transport != want[i][0] || c.Network != want[i][1] || c.SourcePort != 0 {
			t.Errorf("%s: Transport %q, Protocol %q, SourcePort %d; want %q, %q, 0", c.Name, c.Transport, c.Network, c.SourcePort, want[i][0], want[i][1])
		}
	}

	_, err = build("checks:\n"+
		"  - {name: a, kind: listen, host: 0.0.0.0, port: 1, protocol: tls}\n"+
		"  - {name: b, kind: listen, host: 0.0.0.0, port: 1, protocol: udp, source_port: 1}\n"+
		"  - {name: c, kind: broadcast, host: 0.0.0.0, port: 1, protocol: tcp}\n"+
		"  - {name: d, kind: broadcast, host: 0.0.0.0, port: 1, source_port: 68}\n", Options{})
	checkErr(t, err, []string{
		`config.yml:2: protocol in check "a": kind listen speaks tcp or udp (default tcp), got "tls"`,
		`config.yml:3: source_port in check "b": kind listen does not bind a source port; only kinds udp, ntp and sip (over udp) do`,
		`config.yml:4: protocol in check "c": kind broadcast speaks only udp, got "tcp"` + multiTransportHint(),
		`config.yml:5: source_port in check "d": kind broadcast does not bind a source port; only kinds udp, ntp and sip (over udp) do`,
	})
	// Parse errors stop before expansion; the missing port is an expansion error.
	_, err = build("checks:\n  - {name: e, kind: listen, host: 0.0.0.0, protocol: udp}\n", Options{})
	checkErr(t, err, []string{`config.yml:2: check "e" has no port, and kind listen has no default port; add port: or ports:`})
}

// sip has three transports, udp first, with 5061 for tls.
func TestSIPKeys(t *testing.T) {
	requireKinds(t, "sip")
	sip := probe.Kinds()["sip"]
	checks, err := build("checks:\n"+
		"  - {name: u, kind: sip, host: h, source_port: 5060}\n"+
		"  - {name: t, kind: sip, host: h, protocol: tcp}\n"+
		"  - {name: s, kind: sip, host: h, protocol: tls}\n"+
		"  - {name: u2, kind: sip, host: h, protocol: udp, source_port: 5070}\n", Options{})
	if err != nil {
		t.Fatal(err)
	}
	type tp struct {
		transport, protocol string
		port, source        int
	}
	want := []tp{
		{"udp", "udp", sip.DefaultPort, 5060},
		{"tcp", "tcp", sip.DefaultPort, 0},
		{"tls", "tcp", sip.TransportPorts["tls"], 0},
		{"udp", "udp", sip.DefaultPort, 5070},
	}
	for i, c := range checks {
		if got := (tp{c.Transport, c.Network, c.Port, c.SourcePort}); got != want[i] {
			t.Errorf("%s: %+v, want %+v", c.Name, got, want[i])
		}
		if c.Interval != max(DefaultInterval, sip.MinInterval) {
			t.Errorf("%s: interval %s", c.Name, c.Interval)
		}
	}
	if sip.DefaultPort != 5060 || sip.TransportPorts["tls"] != 5061 {
		t.Errorf("sip ports %d, %v: the README and quickstart say 5060 and 5061", sip.DefaultPort, sip.TransportPorts)
	}

	_, err = build("checks:\n"+
		"  - {name: a, kind: sip, host: h, protocol: sctp}\n"+
		"  - {name: b, kind: sip, host: h, protocol: tls, source_port: 5060}\n"+
		"  - name: c\n    kind: sip\n    host: h\n    protocol: tcp\n    source_port: 5060\n"+
		"  - {name: d, kind: sip, host: h, payload: echo}\n", Options{})
	checkErr(t, err, []string{
		`config.yml:2: protocol in check "a": kind sip speaks udp, tcp or tls (default udp), got "sctp"`,
		`config.yml:3: source_port in check "b": kind sip binds a source port only with protocol: udp, and this check uses tls`,
		`config.yml:8: source_port in check "c": kind sip binds a source port only with protocol: udp, and this check uses tcp`,
		`config.yml:9: payload in check "d": only kind udp takes payload; this check is kind sip`,
	})
}

// The transport rules, on kinds shaped like sip and listen whether or not
// those are registered yet.
func TestTransport(t *testing.T) {
	sip := probe.KindSpec{Name: "sip", Network: "udp", DefaultPort: 5060,
		Transports: []string{"udp", "tcp", "tls"}, TransportPorts: map[string]int{"tls": 5061}}
	listen := probe.KindSpec{Name: "listen", Network: "tcp", Transports: []string{"tcp", "udp"}}
	ntp := probe.KindSpec{Name: "ntp", Network: "udp", DefaultPort: 123}
	tcp := probe.KindSpec{Name: "tcp", Network: "tcp"}
	tests := []struct {
		kind                probe.KindSpec
		protocol            string
		variant, label, msg string
		port                int
	}{
		{sip, "", "udp", "udp", "", 5060},
		{sip, "udp", "udp", "udp", "", 5060},
		{sip, "tcp", "tcp", "tcp", "", 5060},
		{sip, "tls", "tls", "tcp", "", 5061},
		{sip, "sctp", "udp", "udp", `kind sip speaks udp, tcp or tls (default udp), got "sctp"`, 5060},
		{sip, "UDP", "udp", "udp", `kind sip speaks udp, tcp or tls (default udp), got "UDP"`, 5060},
		{listen, "", "tcp", "tcp", "", 0},
		{listen, "udp", "udp", "udp", "", 0},
		{listen, "tls", "tcp", "tcp", `kind listen speaks tcp or udp (default tcp), got "tls"`, 0},
		{ntp, "", "", "udp", "", 123},
		{ntp, "udp", "", "udp", "", 123},
		{ntp, "tcp", "", "udp", `kind ntp speaks only udp, got "tcp"`, 123},
		{tcp, "tcp", "", "tcp", "", 0},
		{tcp, "udp", "", "tcp", `kind tcp speaks only tcp, got "udp"`, 0},
	}
	for _, tt := range tests {
		variant, label, port, msg := transport(tt.kind, tt.protocol)
		if variant != tt.variant || label != tt.label || port != tt.port || msg != tt.msg {
			t.Errorf("transport(%s, %q) = %q, %q, %d, %q; want %q, %q, %d, %q",
				tt.kind.Name, tt.protocol, variant, label, port, msg, tt.variant, tt.label, tt.port, tt.msg)
		}
	}
}

func TestProtocolHint(t *testing.T) {
	kinds := map[string]probe.KindSpec{
		"tcp":    {Name: "tcp", Network: "tcp"},
		"tls":    {Name: "tls", Network: "tcp"},
		"udp":    {Name: "udp", Network: "udp"},
		"ntp":    {Name: "ntp", Network: "udp"},
		"sip":    {Name: "sip", Network: "udp", Transports: []string{"udp", "tcp", "tls"}},
		"listen": {Name: "listen", Network: "tcp", Transports: []string{"tcp", "udp"}},
	}
	tests := []struct {
		kind, protocol, want string
	}{
		{"tcp", "udp", "; for UDP use kind: udp"},
		{"tcp", "tls", "; for TLS use kind: tls"},
		{"udp", "tcp", "; for TCP use kind: tcp"},
		{"tcp", "sctp", "; protocol: chooses the transport only for kind listen or sip"},
		{"ntp", "tcp", "; protocol: chooses the transport only for kind listen or sip"},
		{"tls", "tls", "; protocol: chooses the transport only for kind listen or sip"},
		{"sip", "sctp", ""},
		{"listen", "tcp", ""},
	}
	for _, tt := range tests {
		if got := protocolHint(kinds[tt.kind], tt.protocol, kinds); got != tt.want {
			t.Errorf("protocolHint(%s, %s) = %q, want %q", tt.kind, tt.protocol, got, tt.want)
		}
	}
	delete(kinds, "sip")
	delete(kinds, "listen")
	if got := protocolHint(kinds["tls"], "tls", kinds); got != "; remove protocol:" {
		t.Errorf("without multi-transport kinds: %q", got)
	}
}

func TestBindsSourcePort(t *testing.T) {
	tests := []struct {
		kind, variant string
		want          bool
	}{
		{"udp", "", true}, {"ntp", "", true}, {"sip", "udp", true},
		{"sip", "tcp", false}, {"sip", "tls", false},
		{"tcp", "", false}, {"tls", "", false}, {"listen", "udp", false}, {"broadcast", "", false},
	}
	for _, tt := range tests {
		if got := bindsSourcePort(tt.kind, tt.variant); got != tt.want {
			t.Errorf("bindsSourcePort(%s, %q) = %v", tt.kind, tt.variant, got)
		}
	}
	if got, want := sourcePortRefusal("sip", "tls"), "kind sip binds a source port only with protocol: udp, and this check uses tls"; got != want {
		t.Errorf("sip refusal %q", got)
	}
}

func TestParseHex(t *testing.T) {
	tests := []struct {
		in   string
		want []byte
		msg  string
	}{
		{"00ff", []byte{0, 0xff}, ""},
		{" 0A fF \n", []byte{0x0a, 0xff}, ""},
		{"0", nil, "has 1 hex digits, an odd number; write two digits per byte"},
		{"1 2 3 4", nil, `splits a byte with white space at character 2; write each byte as two hex digits, e.g. "01 02"`},
		{"0a\n\t0b ", []byte{0x0a, 0x0b}, ""},
		{"éa", nil, "holds 'é' at character 1, which is not a hex digit (0-9, a-f; spaces are allowed between bytes)"},
		{"0a,0b", nil, "holds ',' at character 3, which is not a hex digit (0-9, a-f; spaces are allowed between bytes)"},
		{"0a 0X0b", nil, "holds 'X' at character 5, which is not a hex digit; write the digits without a 0x prefix"},
	}
	for _, tt := range tests {
		got, msg := parseHex(tt.in)
		if !reflect.DeepEqual(got, tt.want) || msg != tt.msg {
			t.Errorf("parseHex(%q) = %x, %q; want %x, %q", tt.in, got, msg, tt.want, tt.msg)
		}
	}
}

// Profiles share the check schema; source_port and query take params.
const udpProfile = `name: voip
params:
  - name: sbc
    required: true
    example: sbc.example.com
  - name: sport
    default: "5060"
    default_source: the SBC's port
  - name: zone
    default: example.com
    default_source: a test zone
checks:
  - name: sbc-stun
    kind: udp
    host: ${sbc}
    port: 3478
    payload: stun
    source_port: ${sport}
    direction: out
    level: essential
    purpose: a test check
    source: {note: a test}
  - name: sbc-dns
    kind: udp
    host: ${sbc}
    port: 53
    payload: dns
    query: _sip._udp.${zone}
    expect_reply: false
    direction: out
    level: essential
    purpose: a test check
    source: {note: a test}
  - name: clock
    kind: ntp
    host: ntp.${zone}
    source_port: 123
    ntp: {samples: 3}
    direction: out
    level: essential
    purpose: a test check
    source: {note: a test}
`

func TestProfileKindKeys(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "voip.yml"), []byte(udpProfile), 0o600); err != nil {
		t.Fatal(err)
	}
	yml := "profiles:\n  - name: voip\n    params: {sbc: sbc.test, zone: voip.test}\n"
	checks, err := build(yml, Options{ProfilesDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	common := probe.Check{Profile: "voip", Kind: "udp", Host: "sbc.test", Network: "udp", IPFamily: "both",
		Essential: true, Interval: time.Minute, Timeout: 5 * time.Second, Meta: &testMeta}
	stun, dns, clock := common, common, common
	stun.Name, stun.Port, stun.SourcePort = "sbc-stun", 3478, 5060
	stun.UDP = &probe.UDPOptions{Payload: "stun"}
	dns.Name, dns.Port = "sbc-dns", 53
	dns.UDP = &probe.UDPOptions{Payload: "dns", Query: "_sip._udp.voip.test", AcceptSilence: true}
	clock.Name, clock.Kind, clock.Host, clock.Port, clock.SourcePort = "clock", "ntp", "ntp.voip.test", 123, 123
	clock.Interval = 64 * time.Second
	clock.NTP = &probe.NTPOptions{Samples: 3, MaxRootDistance: 1500 * time.Millisecond}
	want := []probe.Check{stun, dns, clock}
	if got := deref(checks); !reflect.DeepEqual(got, want) {
		t.Errorf("got  %+v\nwant %+v", got, want)
	}

	// A bad param value is reported at the profile's line, with its origin.
	prof := filepath.Join(dir, "voip.yml")
	_, err = build("profiles:\n  - name: voip\n    params: {sbc: sbc.test, sport: '70000', zone: 'a..b'}\n", Options{ProfilesDir: dir})
	checkErr(t, err, []string{
		prof + `:18: source_port in check "sbc-stun" of profile "voip": "70000" (from "${sport}") is out of range (ports are 1-65535)`,
		prof + `:28: query in check "sbc-dns" of profile "voip": "_sip._udp.a..b" (from "_sip._udp.${zone}") has an empty label (a leading dot or two dots in a row)`,
	})
}

func TestParseProfileKindKeyErrors(t *testing.T) {
	tests := []struct {
		name string
		yml  string
		want []string
	}{
		{"undeclared param in source_port and query", "name: p\nchecks:\n  - name: a\n    kind: udp\n    host: h\n    port: 53\n    payload: dns\n    query: ${zone}\n    source_port: ${sp}\n    direction: out\n    level: essential\n    purpose: p\n    source: {note: n}\n", []string{
			`p.yml:8: query of check "a" uses ${zone}, which is not declared under params:`,
			`p.yml:9: source_port of check "a" uses ${sp}, which is not declared under params:`}},
		{"udp key on a tcp check", "name: p\nchecks:\n  - name: a\n    kind: tcp\n    host: h\n    port: 1\n    expect_reply: false\n    direction: out\n    level: essential\n    purpose: p\n    source: {note: n}\n", []string{
			`p.yml:7: expect_reply in check "a": only kind udp takes expect_reply; this check is kind tcp`}},
		{"udp check without request", "name: p\nchecks:\n  - {name: a, kind: udp, host: h, port: 1, " + meta + "}\n", []string{
			`p.yml:3: check "a" of kind udp needs what to send: payload: (echo, stun or dns), send: (text) or send_hex: (bytes in hex)`}},
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

// The commented-out examples in the quickstart must stay valid when a user
// removes the "# ": they are uncommented here and expanded.
func TestQuickstartCommentedExamples(t *testing.T) {
	data, err := embedded.ReadFile("examples/quickstart.yml")
	if err != nil {
		t.Fatal(err)
	}
	_, block, ok := strings.Cut(string(data), "# More forms a check can take:\n")
	if !ok {
		t.Fatal("no examples block in the quickstart")
	}
	var b strings.Builder
	b.WriteString("checks:\n")
	for line := range strings.Lines(block) {
		if rest, ok := strings.CutPrefix(line, "  # "); ok {
			b.WriteString("  " + rest)
		} else if strings.TrimSpace(line) != "#" {
			t.Fatalf("line %q in the examples block is not a commented example", line)
		}
	}
	cfg, err := Parse("quickstart-examples.yml", []byte(b.String()))
	if err != nil {
		t.Fatalf("%v\n%s", err, b.String())
	}
	// internal-api and mail-submission name files that exist only on the
	// user's machine.
	var custom []CheckSpec
	for _, c := range cfg.Custom {
		switch c.Name {
		case "internal-api":
		case "mail-submission":
			if c.Kind != "smtp" || c.User == "" || c.PasswordFile == "" {
				t.Errorf("mail-submission: %+v", c)
			}
		default:
			custom = append(custom, c)
		}
	}
	cfg.Custom = custom
	checks, err := cfg.checks(Options{})
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]*probe.Check{}
	for _, c := range checks {
		byName[c.Name] = c
	}
	if c := byName["vendor-stun"]; c == nil || c.UDP.Payload != "stun" || c.Network != "udp" {
		t.Errorf("vendor-stun: %+v", c)
	}
	if c := byName["vendor-portal"]; c == nil || c.Proxy != "http://proxy.example.com:3128" ||
		!reflect.DeepEqual(c.GetHTTP(), probe.HTTPOptions{Method: "HEAD", Path: "/health", ExpectStatus: [][2]int{{200, 200}, {300, 399}}, MaxRedirects: 3}) {
		t.Errorf("vendor-portal: %+v", c)
	}
	if c := byName["vendor-ftp"]; c == nil || c.GetCredentials() != (probe.Credentials{User: "probe", PasswordEnv: "FTP_PASSWORD"}) ||
		c.GetFTP() != (probe.FTPOptions{ExplicitTLS: true, Path: "/pub/"}) {
		t.Errorf("vendor-ftp: %+v", c)
	}
	if c := byName["clock"]; c == nil || c.Port != 123 || c.SourcePort != 123 || c.Interval != 5*time.Minute ||
		c.GetNTP() != (probe.NTPOptions{Samples: 1, MaxRootDistance: 1500 * time.Millisecond}) {
		t.Errorf("clock: %+v", c)
	}
}

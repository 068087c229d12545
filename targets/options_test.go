package targets

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/connprobe/connprobe/probe"
)

// one is a single check at config.yml line 2 (kind, host h) with extra keys
// from line 5 on: "checks:\n  - name: a\n    kind: K\n    host: h\n".
func one(kind, extra string) string {
	return "checks:\n  - name: a\n    kind: " + kind + "\n    host: h\n" + extra
}

// Errors found while parsing: keys against kinds, and values that hold no
// ${param}.
func TestOptionParseErrors(t *testing.T) {
	tests := []struct {
		name string
		yml  string
		want []string
	}{
		// proxy: only where the check connects out over TCP.
		{"proxy on udp", one("udp", "    port: 7\n    payload: echo\n    proxy: http://p:3128\n"), []string{
			`config.yml:7: proxy in check "a": kind udp does not connect over TCP, so it cannot go through an HTTP proxy`}},
		{"proxy on ntp", one("ntp", "    proxy: http://p:3128\n"), []string{
			`config.yml:5: proxy in check "a": kind ntp does not connect over TCP, so it cannot go through an HTTP proxy`}},
		{"proxy on broadcast", one("broadcast", "    port: 67\n    proxy: direct\n"), []string{
			`config.yml:6: proxy in check "a": kind broadcast does not connect over TCP, so it cannot go through an HTTP proxy`}},
		{"proxy on listen", one("listen", "    port: 80\n    proxy: http://p:3128\n"), []string{
			`config.yml:6: proxy in check "a": kind listen waits for inbound connections and connects to nothing, so a proxy does not apply`}},
		{"proxy on sip over udp", one("sip", "    proxy: http://p:3128\n"), []string{
			`config.yml:5: proxy in check "a": kind sip goes through a proxy only with protocol: tcp or tls, and this check uses udp`}},
		{"proxy not a string", one("tcp", "    port: 1\n    proxy: [a]\n"), []string{
			`config.yml:6: proxy in check "a" must be a string, got a list`}},
		{"proxy param outside a profile, password masked", one("tcp", "    port: 1\n    proxy: 'http://u:s3cret@${p}:3128'\n"), []string{
			`config.yml:6: proxy in check "a" holds "http://u:***@${p}:3128", but ${...} params work only in profiles`}},
		{"top-level proxy param", "proxy: 'http://u:s3cret@${p}:1'\nchecks:\n  - {name: a, kind: tcp, host: h, port: 1}\n", []string{
			`config.yml:1: proxy at the top level holds "http://u:***@${p}:1", but ${...} params work only in profiles`}},
		{"top-level proxy not a string", "proxy: {a: 1}\n", []string{
			`config.yml:1: proxy in the top level must be a string, got a mapping`}},

		// Credentials.
		{"password refused, value never shown", one("ftp", "    user: bob\n    password: hunter2\n"), []string{
			`config.yml:6: password in check "a": a password must not be written in the config, which is shown, validated, logged and often kept in version control; put it in a file and set password_file:, or in an environment variable and set password_env:`}},
		{"user on tcp", one("tcp", "    port: 1\n    user: bob\n    password_env: PW\n"), []string{
			`config.yml:6: user in check "a": only kinds ftp, smtp, smtps, imaps or pop3s log in; this check is kind tcp`,
			`config.yml:7: password_env in check "a": only kinds ftp, smtp, smtps, imaps or pop3s log in; this check is kind tcp`}},
		{"password_file on https", one("https", "    password_file: pw\n"), []string{
			`config.yml:5: password_file in check "a": only kinds ftp, smtp, smtps, imaps or pop3s log in; this check is kind https`}},
		{"both password_file and password_env", one("imaps", "    user: bob\n    password_env: PW\n    password_file: pw\n"), []string{
			`config.yml:7: check "a" sets both password_env (line 6) and password_file; use one`}},
		{"password_env without user", one("ftp", "    password_env: PW\n"), []string{
			`config.yml:5: password_env in check "a" needs user: as well (the login name)`}},
		{"password_file without user", one("pop3s", "    password_file: pw\n"), []string{
			`config.yml:5: password_file in check "a" needs user: as well (the login name)`}},
		{"mail user without password", one("smtp", "    user: bob\n"), []string{
			`config.yml:5: user in check "a": kind smtp logs in only with a password; add password_file: or password_env:`}},
		{"user empty", one("ftp", "    user: ''\n"), []string{
			`config.yml:5: user in check "a" is empty; remove it for an anonymous login (ftp) or name the login user`}},
		{"user with a line break", one("ftp", "    user: \"bob\\r\\nDELE x\"\n"), []string{
			`config.yml:5: user in check "a" contains a line break or NUL, which no login command can carry`}},
		{"password_env with $", one("ftp", "    user: bob\n    password_env: $FTP_PW\n"), []string{
			`config.yml:6: password_env in check "a" names the variable without $ or braces: write password_env: FTP_PW`}},
		{"password_env with braces", one("ftp", "    user: bob\n    password_env: '${FTP_PW}'\n"), []string{
			`config.yml:6: password_env in check "a" names the variable without $ or braces: write password_env: FTP_PW`}},
		{"password_env a secret, not shown", one("ftp", "    user: bob\n    password_env: 'hunter2!'\n"), []string{
			`config.yml:6: password_env in check "a" must be the name of an environment variable (letters, digits and '_', not starting with a digit), e.g. FTP_PASSWORD; the value is not shown, in case it is the password itself`}},
		{"password_env starts with a digit", one("ftp", "    user: bob\n    password_env: 1PW\n"), []string{
			`config.yml:6: password_env in check "a" must be the name of an environment variable (letters, digits and '_', not starting with a digit), e.g. FTP_PASSWORD; the value is not shown, in case it is the password itself`}},
		{"password_file empty", one("ftp", "    user: bob\n    password_file: ''\n"), []string{
			`config.yml:6: password_file in check "a" is empty; name the file that holds the password`}},

		// ftp:
		{"ftp options on tcp", one("tcp", "    port: 21\n    ftp: {explicit_tls: true}\n"), []string{
			`config.yml:6: ftp in check "a": only kind ftp takes ftp: options; this check is kind tcp`}},
		{"ftp unknown key", one("ftp", "    ftp:\n      explicit_tsl: true\n"), []string{
			`config.yml:6: unknown key "explicit_tsl" in ftp of check "a" (did you mean "explicit_tls"?)`}},
		{"ftp explicit_tls not a bool", one("ftp", "    ftp: {explicit_tls: yes}\n"), []string{
			`config.yml:5: explicit_tls in ftp of check "a" must be true or false, got "yes"`}},
		{"ftp path with a line break", one("ftp", "    ftp: {path: \"/a\\r\\nDELE b\"}\n"), []string{
			`config.yml:5: path in ftp of check "a" contains a line break or NUL, which no FTP command can carry`}},
		{"ftp path empty", one("ftp", "    ftp: {path: ''}\n"), []string{
			`config.yml:5: path in ftp of check "a" is empty; remove it to list the login directory`}},
		{"ftp not a mapping", one("ftp", "    ftp: true\n"), []string{
			`config.yml:5: ftp of check "a" must be a mapping (key: value), got the boolean true`}},
		{"path on ftp points to ftp:", one("ftp", "    path: /pub\n"), []string{
			`config.yml:5: path in check "a": only kinds http and https take path; this check is kind ftp; for kind ftp write ftp: {path: ...}`}},

		// The http keys.
		{"http keys on tls", one("tls", "    method: HEAD\n    path: /\n    expect_status: 200\n    max_redirects: 3\n    follow_redirects: true\n"), []string{
			`config.yml:5: method in check "a": only kinds http and https take method; this check is kind tls`,
			`config.yml:6: path in check "a": only kinds http and https take path; this check is kind tls`,
			`config.yml:7: expect_status in check "a": only kinds http and https take expect_status; this check is kind tls`,
			`config.yml:8: max_redirects in check "a": only kinds http and https take max_redirects; this check is kind tls`,
			`config.yml:9: follow_redirects in check "a": only kinds http and https take follow_redirects; this check is kind tls`}},
		{"method lower case", one("https", "    method: head\n"), []string{
			`config.yml:5: method in check "a" must be upper case (methods are case-sensitive): write HEAD`}},
		{"method not a token", one("https", "    method: GET /\n"), []string{
			`config.yml:5: method in check "a" must be an HTTP method such as GET, HEAD or POST, got "GET /"`}},
		{"method empty", one("https", "    method: ''\n"), []string{
			`config.yml:5: method in check "a" is empty; write GET, HEAD, POST, ... (default GET)`}},
		{"method CONNECT", one("https", "    method: CONNECT\n"), []string{
			`config.yml:5: method in check "a": CONNECT opens a proxy tunnel, not a request a server answers; use GET or HEAD`}},
		{"path without slash", one("http", "    path: health\n"), []string{
			`config.yml:5: path in check "a" must start with "/", e.g. "/health", got "health"`}},
		{"path a URL", one("http", "    path: https://h/health\n"), []string{
			`config.yml:5: path in check "a" is a URL; write only the path, e.g. "/health" (host: and port: name the server)`}},
		{"path with a space", one("http", "    path: /a b\n"), []string{
			`config.yml:5: path in check "a" contains white space or a control character; percent-encode it (a space is %20)`}},
		{"path with a fragment", one("http", "    path: /a#top\n"), []string{
			`config.yml:5: path in check "a" holds a fragment (#...), which is never sent to a server; remove it`}},
		{"path not a string", one("http", "    path: [/]\n"), []string{
			`config.yml:5: path in check "a" must be a string, got a list`}},
		{"expect_status out of range", one("https", "    expect_status: [200, 600, \"100-700\"]\n"), []string{
			`config.yml:5: expect_status in check "a": "600" is out of range (status codes are 100-599)`,
			`config.yml:5: expect_status in check "a": "100-700" is out of range (status codes are 100-599)`}},
		{"expect_status backwards", one("https", "    expect_status: 399-200\n"), []string{
			`config.yml:5: expect_status in check "a": "399-200" runs backwards; write "200-399"`}},
		{"expect_status a word", one("https", "    expect_status:\n      - 200\n      - ok\n"), []string{
			`config.yml:7: expect_status in check "a": "ok" is not a status code or range (e.g. 200 or "200-399")`}},
		{"expect_status empty list", one("https", "    expect_status: []\n"), []string{
			`config.yml:5: expect_status in check "a" is empty; list at least one status code or range, e.g. [200, "300-399"]`}},
		{"expect_status a float", one("https", "    expect_status: 2.5\n"), []string{
			`config.yml:5: expect_status in check "a" must be a status code, a range like "200-399", or a list of them, got the number 2.5`}},
		{"expect_status a mapping", one("https", "    expect_status: {ok: 200}\n"), []string{
			`config.yml:5: expect_status in check "a" must be a status code, a range like "200-399", or a list of them, got a mapping`}},
		{"max_redirects zero", one("http", "    max_redirects: 0\n"), []string{
			`config.yml:5: max_redirects in check "a" is 0; to follow no redirect write follow_redirects: false (the redirect's own status is then judged)`}},
		{"max_redirects too many", one("http", "    max_redirects: 21\n"), []string{
			`config.yml:5: max_redirects in check "a" must be a whole number from 1 to 20, got the number 21`}},
		{"max_redirects a word", one("http", "    max_redirects: many\n"), []string{
			`config.yml:5: max_redirects in check "a" must be a whole number from 1 to 20, got "many"`}},
		{"max_redirects with follow_redirects false", one("http", "    follow_redirects: false\n    max_redirects: 3\n"), []string{
			`config.yml:6: max_redirects in check "a": follow_redirects is false (line 5), so no redirect is followed; drop one of them`}},
		{"follow_redirects not a bool", one("http", "    follow_redirects: never\n"), []string{
			`config.yml:5: follow_redirects in check "a" must be true or false, got "never"`}},

		// A check's tls: only where the check speaks TLS.
		{"tls on tcp", one("tcp", "    port: 1\n    tls: {server_name: x}\n"), []string{
			`config.yml:6: tls in check "a": kind tcp does not speak TLS; a check's tls: applies only to kinds ` + tlsKindsNote}},
		{"tls on ssh, udp, ntp, listen, broadcast", "checks:\n" +
			"  - {name: a, kind: ssh, host: h, tls: {}}\n" +
			"  - {name: b, kind: udp, host: h, port: 1, payload: echo, tls: {}}\n" +
			"  - {name: c, kind: ntp, host: h, tls: {}}\n" +
			"  - {name: d, kind: listen, host: h, port: 1, tls: {}}\n" +
			"  - {name: e, kind: broadcast, host: h, port: 1, tls: {}}\n", []string{
			`config.yml:2: tls in check "a": kind ssh does not speak TLS; a check's tls: applies only to kinds ` + tlsKindsNote,
			`config.yml:3: tls in check "b": kind udp does not speak TLS; a check's tls: applies only to kinds ` + tlsKindsNote,
			`config.yml:4: tls in check "c": kind ntp does not speak TLS; a check's tls: applies only to kinds ` + tlsKindsNote,
			`config.yml:5: tls in check "d": kind listen does not speak TLS; a check's tls: applies only to kinds ` + tlsKindsNote,
			`config.yml:6: tls in check "e": kind broadcast does not speak TLS; a check's tls: applies only to kinds ` + tlsKindsNote}},
		{"tls on plain ftp", one("ftp", "    tls: {server_name: x}\n"), []string{
			`config.yml:5: tls in check "a": kind ftp speaks TLS only with ftp: {explicit_tls: true}`}},
		{"tls on ftp with explicit_tls false", one("ftp", "    tls: {server_name: x}\n    ftp: {explicit_tls: false}\n"), []string{
			`config.yml:5: tls in check "a": kind ftp speaks TLS only with ftp: {explicit_tls: true}`}},
		{"tls on sip over tcp", one("sip", "    protocol: tcp\n    tls: {server_name: x}\n"), []string{
			`config.yml:6: tls in check "a": kind sip speaks TLS only with protocol: tls, and this check uses tcp`}},

		// broadcast:
		{"broadcast mode unknown", one("broadcast", "    port: 15000\n    broadcast: {mode: passive}\n"), []string{
			`config.yml:6: mode in broadcast of check "a" must be auto, bind or packet (default auto), got "passive"`}},
		{"broadcast mode misspelt", one("broadcast", "    port: 15000\n    broadcast:\n      mode: pakcet\n"), []string{
			`config.yml:7: mode in broadcast of check "a" must be auto, bind or packet (default auto), got "pakcet" (did you mean "packet"?)`}},
		{"broadcast mode empty", one("broadcast", "    port: 15000\n    broadcast: {mode: ''}\n"), []string{
			`config.yml:6: mode in broadcast of check "a" must be auto, bind or packet (default auto), got ""`}},
		{"broadcast mode a list", one("broadcast", "    port: 15000\n    broadcast: {mode: [packet]}\n"), []string{
			`config.yml:6: mode in broadcast of check "a" must be a string, got a list`}},
		{"broadcast unknown key", one("broadcast", "    port: 15000\n    broadcast: {mdoe: packet}\n"), []string{
			`config.yml:6: unknown key "mdoe" in broadcast of check "a" (did you mean "mode"?)`}},
		{"broadcast not a mapping", one("broadcast", "    port: 15000\n    broadcast: packet\n"), []string{
			`config.yml:6: broadcast of check "a" must be a mapping (key: value), got "packet"`}},
		{"broadcast options on listen", one("listen", "    port: 15000\n    protocol: udp\n    broadcast: {mode: packet}\n"), []string{
			`config.yml:7: broadcast in check "a": only kind broadcast takes broadcast: options; this check is kind listen`}},
		{"broadcast options on udp", one("udp", "    port: 15000\n    payload: echo\n    broadcast:\n      mode: bind\n"), []string{
			`config.yml:7: broadcast in check "a": only kind broadcast takes broadcast: options; this check is kind udp`}},
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

// Errors found when expanding: proxy values (they may come from params)
// and password files.
func TestOptionChecksErrors(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing-pw")
	tests := []struct {
		name string
		yml  string
		want []string
	}{
		{"https proxy", one("https", "    proxy: https://proxy.example:3128\n"), []string{
			`config.yml:5: proxy in check "a": "https://proxy.example:3128" uses https://, but only http:// proxies (HTTP CONNECT) are supported; a proxy that carries HTTPS is itself usually reached with http://`}},
		{"socks5 proxy, password masked", one("tcp", "    port: 1\n    proxy: socks5://bob:s3cret@proxy.example:1080\n"), []string{
			`config.yml:6: proxy in check "a": "socks5://bob:***@proxy.example:1080" uses socks5://, but only http:// proxies (HTTP CONNECT) are supported`}},
		{"proxy without scheme", one("tls", "    proxy: proxy.example:3128\n"), []string{
			`config.yml:5: proxy in check "a": "proxy.example:3128" is neither "direct" nor a URL; write it with its scheme: "http://proxy.example:3128"`}},
		{"proxy without scheme, password masked", one("tls", "    proxy: bob:s3cret@proxy.example:3128\n"), []string{
			`config.yml:5: proxy in check "a": "bob:***@proxy.example:3128" is neither "direct" nor a URL; write it with its scheme: "http://bob:***@proxy.example:3128"`}},
		{"proxy without port", one("https", "    proxy: http://bob:s3cret@proxy.example\n"), []string{
			`config.yml:5: proxy in check "a": "http://bob:***@proxy.example" names no port; write it after the host, e.g. http://proxy.example.com:3128`}},
		{"proxy without host", one("https", "    proxy: http://:3128\n"), []string{
			`config.yml:5: proxy in check "a": "http://:3128" names no host; write http://[user:pass@]host:port`}},
		{"proxy port out of range", one("https", "    proxy: http://proxy.example:99999\n"), []string{
			`config.yml:5: proxy in check "a": "http://proxy.example:99999" has port 99999, which is out of range (ports are 1-65535)`}},
		{"proxy with a path", one("https", "    proxy: http://proxy.example:3128/pac\n"), []string{
			`config.yml:5: proxy in check "a": "http://proxy.example:3128/pac" has a path, query or fragment; write only http://[user:pass@]host:port`}},
		{"proxy not a URL, a password with a slash masked", one("https", "    proxy: 'http://bob:s3/cr%zz@proxy.example:3128'\n"), []string{
			`config.yml:5: proxy in check "a": "http://bob:***@proxy.example:3128" is not a valid URL; write http://[user:pass@]host:port`}},
		{"proxy DIRECT", one("https", "    proxy: DIRECT\n"), []string{
			`config.yml:5: proxy in check "a": "DIRECT" must be written in lower case: direct`}},
		{"proxy empty", one("https", "    proxy: ''\n"), []string{
			`config.yml:5: proxy in check "a": is empty; write "direct" for no proxy, or remove proxy: to use the top-level one`}},
		{"top-level socks proxy", "proxy: socks5h://u:pw@p:1080\nchecks:\n  - {name: a, kind: tcp, host: h, port: 1}\n", []string{
			`config.yml:1: proxy at the top level: "socks5h://u:***@p:1080" uses socks5h://, but only http:// proxies (HTTP CONNECT) are supported`}},
		{"password_file missing", one("ftp", "    user: bob\n    password_file: "+missing+"\n"), []string{
			`config.yml:6: password_file in check "a": cannot read ` + missing + `: no such file or directory`}},
		{"password_file a directory", one("smtps", "    user: bob\n    password_file: "+dir+"\n"), []string{
			`config.yml:6: password_file in check "a": ` + dir + ` is a directory; name the file that holds the password`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checks, err := build(tt.yml, Options{})
			if err == nil {
				t.Fatalf("no error; %d checks", len(checks))
			}
			checkErr(t, err, tt.want)
			if strings.Contains(err.Error(), "s3cret") || strings.Contains(err.Error(), "s3/cr") {
				t.Errorf("a password is shown: %v", err)
			}
		})
	}
}

func TestPasswordFileUnreadable(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root reads any file")
	}
	dir := t.TempDir()
	pw := filepath.Join(dir, "pw")
	if err := os.WriteFile(pw, []byte("s3cret\n"), 0o000); err != nil {
		t.Fatal(err)
	}
	_, err := build(one("ftp", "    user: bob\n    password_file: "+pw+"\n"), Options{})
	checkErr(t, err, []string{`config.yml:6: password_file in check "a": cannot read ` + pw + `: permission denied`})
}

// The keys' values in the expanded checks.
func TestOptionChecks(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "ftp-pw", "s3cret\n")
	cfgPath := filepath.Join(dir, "config.yml")

	base := func(kind string, port int) probe.Check {
		c := probe.Check{Name: "a", Kind: kind, Host: "h", Port: port, Network: "tcp", IPFamily: "both",
			Essential: true, Interval: time.Minute, Timeout: 5 * time.Second}
		if kind == "http" || kind == "https" {
			c.HTTP = &probe.HTTPOptions{Method: "GET", Path: "/", ExpectStatus: [][2]int{{200, 399}}, MaxRedirects: 5}
		}
		return c
	}
	with := func(c probe.Check, f func(*probe.Check)) probe.Check { f(&c); return c }

	tests := []struct {
		name string
		yml  string
		want probe.Check
	}{
		// Proxies.
		{"proxy per check", one("tls", "    proxy: http://proxy.example:3128\n"),
			with(base("tls", 443), func(c *probe.Check) { c.Proxy = "http://proxy.example:3128" })},
		{"proxy with credentials and a trailing slash", one("ssh", "    proxy: http://bob:pw@proxy.example:8080/\n"),
			with(base("ssh", 22), func(c *probe.Check) { c.Proxy = "http://bob:pw@proxy.example:8080/" })},
		{"top-level proxy is the default", "proxy: http://p:3128\n" + one("https", ""),
			with(base("https", 443), func(c *probe.Check) { c.Proxy = "http://p:3128" })},
		{"check's proxy overrides", "proxy: http://p:3128\n" + one("https", "    proxy: http://q:8080\n"),
			with(base("https", 443), func(c *probe.Check) { c.Proxy = "http://q:8080" })},
		{"direct opts out of the top-level proxy", "proxy: http://p:3128\n" + one("https", "    proxy: direct\n"),
			with(base("https", 443), func(c *probe.Check) { c.Proxy = "direct" })},
		{"direct at the top level", "proxy: direct\n" + one("http", ""),
			with(base("http", 80), func(c *probe.Check) { c.Proxy = "direct" })},
		{"no proxy for udp from the top level", "proxy: http://p:3128\n" + one("udp", "    port: 7\n    payload: echo\n"),
			with(base("udp", 7), func(c *probe.Check) { c.Network = "udp"; c.UDP = &probe.UDPOptions{Payload: "echo"} })},
		{"no proxy for sip over udp from the top level", "proxy: http://p:3128\n" + one("sip", ""),
			with(base("sip", 5060), func(c *probe.Check) { c.Network, c.Transport, c.Interval = "udp", "udp", 5*time.Minute })},
		{"proxy for sip over tls", one("sip", "    protocol: tls\n    proxy: http://p:3128\n"),
			with(base("sip", 5061), func(c *probe.Check) { c.Transport, c.Interval, c.Proxy = "tls", 5*time.Minute, "http://p:3128" })},
		{"no proxy for listen from the top level", "proxy: http://p:3128\n" + one("listen", "    port: 8080\n"),
			with(base("listen", 8080), func(c *probe.Check) { c.Transport = "tcp" })},

		// Credentials.
		{"ftp login with a password file", one("ftp", "    user: bob\n    password_file: ftp-pw\n"),
			with(base("ftp", 21), func(c *probe.Check) {
				c.Credentials = &probe.Credentials{User: "bob", PasswordFile: filepath.Join(dir, "ftp-pw")}
			})},
		{"ftp user without password", one("ftp", "    user: ftp\n"),
			with(base("ftp", 21), func(c *probe.Check) { c.Credentials = &probe.Credentials{User: "ftp"} })},
		{"smtp login from the environment, not required to be set", one("smtp", "    user: bob@example.com\n    password_env: CONNPROBE_TEST_UNSET_PW\n"),
			with(base("smtp", 587), func(c *probe.Check) {
				c.Credentials = &probe.Credentials{User: "bob@example.com", PasswordEnv: "CONNPROBE_TEST_UNSET_PW"}
			})},
		{"imaps with a password file", one("imaps", "    user: bob\n    password_file: ftp-pw\n"),
			with(base("imaps", 993), func(c *probe.Check) {
				c.Credentials = &probe.Credentials{User: "bob", PasswordFile: filepath.Join(dir, "ftp-pw")}
			})},

		// ftp:
		{"ftp options", one("ftp", "    ftp:\n      explicit_tls: true\n      path: /pub/file.txt\n      trust_pasv_address: true\n    tls: {server_name: ftp.example}\n"),
			with(base("ftp", 21), func(c *probe.Check) {
				c.FTP = &probe.FTPOptions{ExplicitTLS: true, Path: "/pub/file.txt", TrustPASVAddress: true}
				c.TLS = &probe.TLSOptions{ServerName: "ftp.example"}
			})},
		{"ftp: alone", one("ftp", "    ftp:\n"), base("ftp", 21)},
		{"ftp relative path", one("ftp", "    ftp: {path: pub/}\n"),
			with(base("ftp", 21), func(c *probe.Check) { c.FTP = &probe.FTPOptions{Path: "pub/"} })},

		// http and https.
		{"http defaults", one("http", ""), base("http", 80)},
		{"https keys", one("https", "    method: HEAD\n    path: /health?full=1\n    expect_status: [200, \"300-302\", 401]\n    max_redirects: 20\n    follow_redirects: true\n"),
			with(base("https", 443), func(c *probe.Check) {
				c.HTTP = &probe.HTTPOptions{Method: "HEAD", Path: "/health?full=1", ExpectStatus: [][2]int{{200, 200}, {300, 302}, {401, 401}}, MaxRedirects: 20}
			})},
		{"expect_status one range", one("http", "    expect_status: 200-299\n"),
			with(base("http", 80), func(c *probe.Check) { c.HTTP.ExpectStatus = [][2]int{{200, 299}} })},
		{"expect_status one code", one("http", "    expect_status: 204\n"),
			with(base("http", 80), func(c *probe.Check) { c.HTTP.ExpectStatus = [][2]int{{204, 204}} })},
		{"follow_redirects false", one("https", "    follow_redirects: false\n    expect_status: 301\n"),
			with(base("https", 443), func(c *probe.Check) {
				c.HTTP.NoRedirects, c.HTTP.MaxRedirects, c.HTTP.ExpectStatus = true, 0, [][2]int{{301, 301}}
			})},
		{"method POST", one("http", "    method: POST\n"),
			with(base("http", 80), func(c *probe.Check) { c.HTTP.Method = "POST" })},

		// tls: where the check speaks TLS.
		{"tls on sip over tls", one("sip", "    protocol: tls\n    tls: {server_name: sbc.example}\n"),
			with(base("sip", 5061), func(c *probe.Check) {
				c.Transport, c.Interval, c.TLS = "tls", 5*time.Minute, &probe.TLSOptions{ServerName: "sbc.example"}
			})},
		{"tls on http (redirects to https)", one("http", "    tls: {server_name: h.example}\n"),
			with(base("http", 80), func(c *probe.Check) { c.TLS = &probe.TLSOptions{ServerName: "h.example"} })},
		{"tls on smtp", one("smtp", "    tls: {server_name: mx.example}\n"),
			with(base("smtp", 587), func(c *probe.Check) { c.TLS = &probe.TLSOptions{ServerName: "mx.example"} })},

		// broadcast: mode auto unless set.
		{"broadcast default mode", one("broadcast", "    port: 15000\n"),
			with(base("broadcast", 15000), func(c *probe.Check) { c.Network, c.Broadcast = "udp", &probe.BroadcastOptions{Mode: "auto"} })},
		{"broadcast: alone", one("broadcast", "    port: 15000\n    broadcast:\n"),
			with(base("broadcast", 15000), func(c *probe.Check) { c.Network, c.Broadcast = "udp", &probe.BroadcastOptions{Mode: "auto"} })},
		{"broadcast mode auto", one("broadcast", "    port: 15000\n    broadcast: {mode: auto}\n"),
			with(base("broadcast", 15000), func(c *probe.Check) { c.Network, c.Broadcast = "udp", &probe.BroadcastOptions{Mode: "auto"} })},
		{"broadcast mode bind", one("broadcast", "    port: 19813\n    broadcast: {mode: bind}\n"),
			with(base("broadcast", 19813), func(c *probe.Check) { c.Network, c.Broadcast = "udp", &probe.BroadcastOptions{Mode: "bind"} })},
		{"broadcast mode packet", one("broadcast", "    port: 15000\n    broadcast:\n      mode: packet\n"),
			with(base("broadcast", 15000), func(c *probe.Check) { c.Network, c.Broadcast = "udp", &probe.BroadcastOptions{Mode: "packet"} })},
		{"no broadcast mode on other kinds", one("udp", "    port: 7\n    payload: echo\n"),
			with(base("udp", 7), func(c *probe.Check) { c.Network, c.UDP = "udp", &probe.UDPOptions{Payload: "echo"} })},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := os.WriteFile(cfgPath, []byte(tt.yml), 0o600); err != nil {
				t.Fatal(err)
			}
			checks, _, err := Build(cfgPath, Options{})
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

// A global tls: still applies to every check, whatever its kind.
func TestGlobalTLSOnAnyKind(t *testing.T) {
	checks, err := build("tls: {expect_issuer: [Corp CA]}\nchecks:\n  - {name: a, kind: tcp, host: h, port: 1}\n  - {name: b, kind: tls, host: h}\n", Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range checks {
		if !reflect.DeepEqual(c.TLS.ExpectIssuer, []string{"Corp CA"}) {
			t.Errorf("%s: %+v", c.Name, c.TLS)
		}
	}
}

func TestRange(t *testing.T) {
	tests := []struct {
		ports string
		want  string
	}{
		{`"10000-10003"`, "10000-10003"},
		{`[80, 443]`, "80,443"},
		{`[80, 443, 8080]`, "80,443,8080"},
		{`"80, 443 ,8080"`, "80,443,8080"},
		{`[22, "8000 - 8002"]`, "22,8000-8002"},
		{`"7-7"`, ""},
		{`[9]`, ""},
		{`9`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.ports, func(t *testing.T) {
			checks, err := build("checks:\n  - {name: r, kind: tcp, host: h, ports: "+tt.ports+"}\n", Options{})
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range checks {
				if c.Range != tt.want {
					t.Errorf("port %d: Range %q, want %q", c.Port, c.Range, tt.want)
				}
			}
		})
	}
	checks, err := build("checks:\n  - {name: p, kind: tcp, host: h, port: 80}\n", Options{})
	if err != nil || len(checks) != 1 || checks[0].Range != "" {
		t.Errorf("port: %v, %+v", err, deref(checks))
	}
}

const proxyProfile = `name: corp
params:
  - name: proxy
    description: the office proxy, or "direct"
    default: ""
  - name: lo
    default: "9000"
    default_source: a test
checks:
  - name: web
    kind: https
    host: www.example
    proxy: ${proxy}
    direction: out
    level: essential
    purpose: a test check
    source: {note: a test}
  - name: range
    kind: tcp
    host: gw.example
    ports: ${lo}-9002
    proxy: http://${proxy}
    direction: out
    level: essential
    purpose: a test check
    source: {note: a test}
`

// proxy: takes ${param}; an empty value leaves the config's default.
func TestProfileProxy(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "corp.yml", proxyProfile)
	prof := filepath.Join(dir, "corp.yml")

	checks, err := build("proxy: http://top:3128\nprofiles:\n  - name: corp\n    params: {proxy: 'p.example:3128', lo: 9001}\n", Options{ProfilesDir: dir})
	if err == nil {
		t.Fatalf("no error: %+v", deref(checks))
	}
	// The first check gets no scheme, the second one is fine.
	checkErr(t, err, []string{
		prof + `:13: proxy in check "web" of profile "corp": "p.example:3128" (from "${proxy}") is neither "direct" nor a URL; write it with its scheme: "http://p.example:3128"`})

	checks, err = build("proxy: http://top:3128\nprofiles:\n  - corp\n", Options{ProfilesDir: dir, Params: []string{"corp.lo=9001"}})
	if err == nil {
		t.Fatalf("no error: %+v", deref(checks))
	}
	checkErr(t, err, []string{
		prof + `:22: proxy in check "range" of profile "corp": "http://" (from "http://${proxy}") names no host; write http://[user:pass@]host:port`})

	_, err = build("profiles:\n  - name: corp\n    params: {proxy: 'http://u:s3cret@p.example'}\n", Options{ProfilesDir: dir})
	checkErr(t, err, []string{
		prof + `:13: proxy in check "web" of profile "corp": "http://u:***@p.example" (from "${proxy}") names no port; write it after the host, e.g. http://proxy.example.com:3128`,
		// Doubled schemes mask too much rather than too little.
		prof + `:22: proxy in check "range" of profile "corp": "http://http:***@p.example" (from "http://${proxy}") names no port; write it after the host, e.g. http://proxy.example.com:3128`,
	})
	if strings.Contains(err.Error(), "s3cret") {
		t.Errorf("a password is shown: %v", err)
	}
}

func TestProfileProxyDefault(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "corp.yml", "name: corp\nparams:\n  - {name: proxy, default: ''}\nchecks:\n  - {name: web, kind: https, host: www.example, proxy: '${proxy}', "+meta+"}\n")
	checks, err := build("proxy: http://top:3128\nprofiles: [corp]\n", Options{ProfilesDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if checks[0].Proxy != "http://top:3128" {
		t.Errorf("empty param: Proxy %q, want the top-level one", checks[0].Proxy)
	}
	checks, err = build("proxy: http://top:3128\nprofiles:\n  - {name: corp, params: {proxy: direct}}\n", Options{ProfilesDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if checks[0].Proxy != "direct" {
		t.Errorf("direct: Proxy %q", checks[0].Proxy)
	}
}

func TestParseProfileProxyErrors(t *testing.T) {
	_, err := ParseProfile("p.yml", []byte("name: p\nchecks:\n  - {name: a, kind: https, host: h, proxy: 'http://u:s3cret@${px}:1', "+meta+"}\n  - {name: b, kind: https, host: h, proxy: 'http://u:pw@${px', "+meta+"}\n"))
	checkErr(t, err, []string{
		`p.yml:3: proxy of check "a" uses ${px}, which is not declared under params:`,
		`p.yml:4: proxy of check "b" holds a malformed param reference "http://u:***@${px"; write ${name}`,
	})
}

func TestMaskProxy(t *testing.T) {
	tests := []struct{ in, want string }{
		{"http://p:3128", "http://p:3128"},
		{"http://bob@p:3128", "http://bob@p:3128"},
		{"http://bob:pw@p:3128", "http://bob:***@p:3128"},
		{"http://bob:p@w/d#x@p:3128/", "http://bob:***@p:3128/"},
		{"bob:pw@p:3128", "bob:***@p:3128"},
		{"p:3128", "p:3128"},
		{"direct", "direct"},
		{"", ""},
	}
	for _, tt := range tests {
		if got := maskProxy(tt.in); got != tt.want {
			t.Errorf("maskProxy(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// Every kind is either proxyable or not, as probe decides; the config must
// agree, or a check would be refused a proxy it could use (or accept one it
// ignores).
func TestProxyableKinds(t *testing.T) {
	want := map[string]bool{
		"tcp": true, "tls": true, "http": true, "https": true, "ssh": true, "smtp": true, "smtps": true,
		"imaps": true, "pop3s": true, "ftp": true, "udp": false, "ntp": false, "listen": false, "broadcast": false,
	}
	for name, k := range probe.Kinds() {
		variant, _, _, _ := transport(k, "")
		w, ok := want[name]
		if name == "sip" {
			w, ok = false, true // udp by default
			if !proxyable(k, "tcp") || !proxyable(k, "tls") {
				t.Errorf("sip over tcp and tls connect over TCP")
			}
		}
		if !ok {
			t.Errorf("kind %s is new: decide whether it takes proxy:", name)
			continue
		}
		if got := proxyable(k, variant); got != w {
			t.Errorf("proxyable(%s) = %v, want %v", name, got, w)
		}
	}
}

func writeFile(t *testing.T, dir, name, content string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

package targets

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v4"

	"github.com/connprobe/connprobe/probe"
)

// The keys of this file: proxy (every kind that connects out over TCP),
// credentials (the kinds that log in), ftp: and the http keys. Which kind
// takes which key is the kind's to say (probe.KindSpec) and is checked in
// optionKeys, when the file is parsed; values that may hold ${param}
// (proxy) and files (password_file) are checked when the check is
// expanded.

// loginKeys are the keys of probe.OptionsLogin.
func loginKeys() []string { return []string{"user", "password_file", "password_env"} }

// httpKeys are the keys of probe.OptionsHTTP.
func httpKeys() []string {
	return []string{"method", "path", "expect_status", "max_redirects", "follow_redirects"}
}

// optionKeys checks the keys of this file against the check's kind.
// variantOK is false when the protocol: was refused, so that the
// transport is not known.
func (d *decoder) optionKeys(c *CheckSpec, k probe.KindSpec, variant string, variantOK bool, where string) {
	if ln := c.lines["proxy"]; ln > 0 && variantOK && !k.Proxyable(variant) {
		d.errorf(ln, "proxy in %s: %s", where, k.ProxyRefusal(variant))
	}
	if ln := c.lines[string(probe.OptionsTLS)]; ln > 0 && variantOK {
		if msg := k.TLSRefusal(c.options(variant)); msg != "" {
			d.errorf(ln, "%s in %s: %s", probe.OptionsTLS, where, msg)
		}
	}

	if k.Takes(probe.OptionsLogin) {
		d.credentials(c, k, where)
	} else {
		for _, key := range loginKeys() {
			if ln := c.lines[key]; ln > 0 {
				d.errorf(ln, "%s in %s: only kinds %s log in; this check is kind %s", key, where, orList(probe.KindsTaking(probe.OptionsLogin)), k.Name)
			}
		}
	}

	if k.Takes(probe.OptionsHTTP) {
		if ln := c.lines["max_redirects"]; ln > 0 && c.HTTP.FollowRedirects != nil && !*c.HTTP.FollowRedirects {
			d.errorf(ln, "max_redirects in %s: follow_redirects is false (line %d), so no redirect is followed; drop one of them",
				where, c.lines["follow_redirects"])
		}
	}
	d.refuseOthers(c, k, probe.OptionsHTTP, httpKeys(), where)
}

// credentials checks that a login names one place for its password.
func (d *decoder) credentials(c *CheckSpec, k probe.KindSpec, where string) {
	file, env := c.lines["password_file"], c.lines["password_env"]
	if file > 0 && env > 0 {
		first, second := "password_file", "password_env"
		if env < file {
			first, second = second, first
		}
		d.errorf(max(file, env), "%s sets both %s (line %d) and %s; use one", where, first, min(file, env), second)
	}
	for _, key := range []string{"password_file", "password_env"} {
		if ln := c.lines[key]; ln > 0 && c.lines["user"] == 0 {
			d.errorf(ln, "%s in %s needs user: as well (the login name)", key, where)
		}
	}
	// Some kinds may log in without a password (an ftp server may ask for
	// none); the others always send one.
	if ln := c.lines["user"]; ln > 0 && !k.PasswordOptional && file == 0 && env == 0 {
		d.errorf(ln, "user in %s: kind %s logs in only with a password; add password_file: or password_env:", where, k.Name)
	}
}

// passwordRefusal is the error for a password: key. Its value is never
// shown.
func passwordRefusal(where string) string {
	return fmt.Sprintf("password in %s: a password must not be written in the config, which is shown, validated, "+
		"logged and often kept in version control; put it in a file and set password_file:, "+
		"or in an environment variable and set password_env:", where)
}

func (d *decoder) user(v *yaml.Node, where string) string {
	s := d.str(v, "user", where)
	switch {
	case v.Kind != yaml.ScalarNode || isNull(v):
	case s == "":
		d.errorf(v.Line, "user in %s is empty; remove it for an anonymous login (ftp) or name the login user", where)
	case strings.ContainsAny(s, "\r\n\x00"):
		d.errorf(v.Line, "user in %s contains a line break or NUL, which no login command can carry", where)
	}
	return s
}

func (d *decoder) passwordFile(v *yaml.Node, where string) string {
	s := d.str(v, "password_file", where)
	if s == "" && v.Kind == yaml.ScalarNode && !isNull(v) {
		d.errorf(v.Line, "password_file in %s is empty; name the file that holds the password", where)
	}
	return s
}

// passwordEnv checks the name of the password's environment variable. An
// invalid value is not quoted: it may be the password itself, written in
// the wrong place. Whether the variable is set is checked at each probe,
// where it is read, so that a changed secret needs no reload.
func (d *decoder) passwordEnv(v *yaml.Node, where string) string {
	s := d.str(v, "password_env", where)
	if v.Kind != yaml.ScalarNode || isNull(v) || validEnvName(s) {
		return s
	}
	if name := strings.TrimSuffix(strings.TrimPrefix(strings.TrimPrefix(s, "$"), "{"), "}"); name != s && validEnvName(name) {
		d.errorf(v.Line, "password_env in %s names the variable without $ or braces: write password_env: %s", where, name)
		return ""
	}
	d.errorf(v.Line, "password_env in %s must be the name of an environment variable (letters, digits and '_', "+
		"not starting with a digit), e.g. FTP_PASSWORD; the value is not shown, in case it is the password itself", where)
	return ""
}

func validEnvName(s string) bool {
	if s == "" || (s[0] >= '0' && s[0] <= '9') {
		return false
	}
	for i := 0; i < len(s); i++ {
		if b := s[i]; !(isAlnum(b) || b == '_') {
			return false
		}
	}
	return true
}

// passwordFileProblem checks that the password file exists and can be
// opened, so that a typo fails at start rather than at the first login. It
// is opened but not read: the password is read at each probe and never
// kept.
func passwordFileProblem(path string) string {
	fi, err := os.Stat(path)
	if err == nil && fi.IsDir() {
		return fmt.Sprintf("%s is a directory; name the file that holds the password", path)
	}
	if err == nil {
		var f *os.File
		if f, err = os.Open(path); err == nil {
			f.Close()
			return ""
		}
	}
	var pe *os.PathError
	if errors.As(err, &pe) {
		err = pe.Err // the path is already in the message
	}
	return fmt.Sprintf("cannot read %s: %v", path, err)
}

func (d *decoder) ftp(v *yaml.Node, where string) FTPSpec {
	f := FTPSpec{lines: map[string]int{"": v.Line}}
	in := "ftp of " + where
	d.fields(v, in, f.lines, map[string]func(v *yaml.Node){
		"explicit_tls": func(v *yaml.Node) {
			if b := d.boolean(v, "explicit_tls", in); b != nil {
				f.ExplicitTLS = *b
			}
		},
		"trust_pasv_address": func(v *yaml.Node) {
			if b := d.boolean(v, "trust_pasv_address", in); b != nil {
				f.TrustPASVAddress = *b
			}
		},
		"path": func(v *yaml.Node) {
			f.Path = d.str(v, "path", in)
			switch {
			case v.Kind != yaml.ScalarNode || isNull(v):
			case f.Path == "":
				d.errorf(v.Line, "path in %s is empty; remove it to list the login directory", in)
			case strings.ContainsAny(f.Path, "\r\n\x00"):
				d.errorf(v.Line, "path in %s contains a line break or NUL, which no FTP command can carry", in)
			}
		},
	})
	return f
}

// method accepts an HTTP method: an upper-case token such as GET or HEAD.
func (d *decoder) method(v *yaml.Node, where string) string {
	s := d.str(v, "method", where)
	if v.Kind != yaml.ScalarNode || isNull(v) {
		return ""
	}
	switch {
	case s == "":
		d.errorf(v.Line, "method in %s is empty; write GET, HEAD, POST, ... (default GET)", where)
	case !validToken(s):
		d.errorf(v.Line, "method in %s must be an HTTP method such as GET, HEAD or POST, got %q", where, s)
	case s != strings.ToUpper(s):
		d.errorf(v.Line, "method in %s must be upper case (methods are case-sensitive): write %s", where, strings.ToUpper(s))
	case s == "CONNECT":
		d.errorf(v.Line, "method in %s: CONNECT opens a proxy tunnel, not a request a server answers; use GET or HEAD", where)
	default:
		return s
	}
	return ""
}

// validToken is RFC 9110's token, the syntax of a method.
func validToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if b := s[i]; !isAlnum(b) && !strings.ContainsRune("!#$%&'*+-.^_`|~", rune(b)) {
			return false
		}
	}
	return true
}

// httpPath accepts a request path (with an optional query): it must start
// with "/", as it follows the host in the URL.
func (d *decoder) httpPath(v *yaml.Node, key, where string) string {
	s := d.str(v, key, where)
	if v.Kind != yaml.ScalarNode || isNull(v) {
		return ""
	}
	_, err := url.ParseRequestURI(s)
	switch {
	case strings.Contains(s, "://"):
		d.errorf(v.Line, "%s in %s is a URL; write only the path, e.g. \"/health\" (host: and port: name the server)", key, where)
	case !strings.HasPrefix(s, "/"):
		d.errorf(v.Line, "%s in %s must start with \"/\", e.g. \"/health\", got %q", key, where, s)
	case strings.ContainsAny(s, " \t\r\n\x00"):
		d.errorf(v.Line, "%s in %s contains white space or a control character; percent-encode it (a space is %%20)", key, where)
	case strings.Contains(s, "#"):
		d.errorf(v.Line, "%s in %s holds a fragment (#...), which is never sent to a server; remove it", key, where)
	case err != nil:
		d.errorf(v.Line, "%s in %s is not a valid request path: %q", key, where, s)
	default:
		return s
	}
	return ""
}

// expectStatus accepts a status code, a range "200-399", or a list of them.
func (d *decoder) expectStatus(v *yaml.Node, where string) [][2]int {
	items := []*yaml.Node{v}
	if v.Kind == yaml.SequenceNode {
		items = v.Content
		if len(items) == 0 {
			d.errorf(v.Line, "expect_status in %s is empty; list at least one status code or range, e.g. [200, \"300-399\"]", where)
			return nil
		}
	}
	var out [][2]int
	for _, e := range items {
		e = resolve(e)
		if e.Kind != yaml.ScalarNode || isNull(e) || (e.Tag != "!!int" && e.Tag != "!!str") {
			d.errorf(e.Line, "expect_status in %s must be a status code, a range like \"200-399\", or a list of them, got %s", where, describe(e))
			continue
		}
		r, msg := parseStatusRange(e.Value)
		if msg != "" {
			d.errorf(e.Line, "expect_status in %s: %q %s", where, e.Value, msg)
			continue
		}
		out = append(out, r)
	}
	if len(out) < len(items) {
		return nil
	}
	return out
}

// parseStatusRange reads "204" or "200-399"; msg completes "<value> ...".
func parseStatusRange(s string) (r [2]int, msg string) {
	lo, hi, isRange := strings.Cut(s, "-")
	if !isRange {
		hi = lo
	}
	a, errA := strconv.Atoi(strings.TrimSpace(lo))
	b, errB := strconv.Atoi(strings.TrimSpace(hi))
	switch {
	case errA != nil || errB != nil:
		return r, "is not a status code or range (e.g. 200 or \"200-399\")"
	case a < 100 || a > 599 || b < 100 || b > 599:
		return r, "is out of range (status codes are 100-599)"
	case a > b:
		return r, fmt.Sprintf("runs backwards; write \"%d-%d\"", b, a)
	}
	return [2]int{a, b}, ""
}

func (d *decoder) maxRedirects(v *yaml.Node, where string) int {
	n, err := strconv.Atoi(v.Value)
	switch {
	case v.Kind != yaml.ScalarNode || v.Tag != "!!int" || err != nil || n < 0 || n > MaxRedirectsLimit:
		d.errorf(v.Line, "max_redirects in %s must be a whole number from 1 to %d, got %s", where, MaxRedirectsLimit, describe(v))
	case n == 0:
		d.errorf(v.Line, "max_redirects in %s is 0; to follow no redirect write follow_redirects: false (the redirect's own status is then judged)", where)
	default:
		return n
	}
	return 0
}

// proxyProblem says what is wrong with a proxy: value (completing
// "<value> ..."), or "". The value itself is never part of the message:
// it may hold a password.
func proxyProblem(s string) string {
	if s == probe.ProxyDirect {
		return ""
	}
	if strings.EqualFold(s, probe.ProxyDirect) {
		return "must be written in lower case: direct"
	}
	if !strings.Contains(s, "://") {
		return fmt.Sprintf("is neither \"direct\" nor a URL; write it with its scheme: \"http://%s\"", maskProxy(s))
	}
	u, err := url.Parse(s)
	switch {
	case err != nil:
		return "is not a valid URL; write http://[user:pass@]host:port"
	case u.Scheme != probe.ProxyScheme:
		hint := ""
		if u.Scheme == probe.ProxyScheme+"s" {
			hint = "; a proxy that carries HTTPS is itself usually reached with http://"
		}
		return fmt.Sprintf("uses %s://, but only http:// proxies (HTTP CONNECT) are supported%s", u.Scheme, hint)
	case u.Hostname() == "":
		return "names no host; write http://[user:pass@]host:port"
	case u.Port() == "":
		return "names no port; write it after the host, e.g. http://proxy.example.com:3128"
	case (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.ForceQuery:
		return "has a path, query or fragment; write only http://[user:pass@]host:port"
	}
	if _, msg := parsePort(u.Port()); msg != "" {
		return fmt.Sprintf("has port %s, which %s", u.Port(), msg)
	}
	return ""
}

// maskProxy replaces the password of a proxy URL with "***". It errs on
// the side of hiding: everything between the first ":" of the user
// information and its last "@" is masked, whatever characters a careless
// password holds.
func maskProxy(s string) string {
	prefix, rest := "", s
	if i := strings.Index(s, "://"); i >= 0 {
		prefix, rest = s[:i+3], s[i+3:]
	}
	at := strings.LastIndex(rest, "@")
	if at < 0 {
		return s
	}
	user, _, hasPass := strings.Cut(rest[:at], ":")
	if !hasPass {
		return s
	}
	return prefix + user + ":***" + rest[at:]
}

// proxyShown is how a check's proxy appears in errors: masked, with what it
// was substituted from.
func proxyShown(val, raw string) string {
	if val != raw {
		return fmt.Sprintf("%q (from %q)", maskProxy(val), maskProxy(raw))
	}
	return strconv.Quote(maskProxy(val))
}

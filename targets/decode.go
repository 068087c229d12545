package targets

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v4"

	"github.com/connprobe/connprobe/probe"
)

// The file is decoded from yaml.Node trees by hand rather than into structs:
// that is what lets every error name its line, reject unknown keys with a
// suggestion, and collect several errors in one pass.

// parseDoc returns the root node of the single YAML document in data, or nil
// when the file holds no document at all (empty, or only comments).
func parseDoc(file string, data []byte) (*yaml.Node, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil
		}
		return nil, yamlError(file, data, err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		return nil, &Error{File: file, Line: extra.Line, Msg: "a second YAML document (---) begins here; put everything in one document"}
	} else if !errors.Is(err, io.EOF) {
		return nil, yamlError(file, data, err)
	}
	if len(doc.Content) == 0 {
		return nil, nil
	}
	root := resolve(doc.Content[0])
	if root.Kind == yaml.ScalarNode && root.Tag == "!!null" {
		return nil, nil
	}
	return root, nil
}

// yamlError turns the YAML library's error into the file:line form used
// for every other error, at the line where the parser met what it could not
// accept (not where the enclosing block began), naming the construct still
// open when that is on another line: an unclosed { or " is found where the
// text stops making sense, and opened where the fix is.
func yamlError(file string, data []byte, err error) error {
	var le *yaml.LoadError
	if errors.As(err, &le) && le.Mark.Line > 0 {
		// End of input is reported on the line after the last one.
		line := min(le.Mark.Line, lineCount(data))
		msg := "invalid YAML: " + le.Message
		if le.Mark.Column > 0 && le.Mark.Line == line {
			msg = fmt.Sprintf("invalid YAML (column %d): %s", le.Mark.Column, le.Message)
		}
		if strings.Contains(le.Message, "did not find expected key") || strings.Contains(le.Message, "did not find expected '-' indicator") {
			msg += "; check this line's indentation against the lines above it"
		}
		if open := unclosed(le.ContextMsg); open != "" && le.ContextMark.Line > 0 && le.ContextMark.Line < line {
			msg += fmt.Sprintf(" (the %s opened on line %d is not closed)", open, le.ContextMark.Line)
		}
		return &Error{File: file, Line: line, Msg: msg}
	}
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	if rest, ok := strings.CutPrefix(msg, "line "); ok {
		if num, text, ok := strings.Cut(rest, ": "); ok {
			if line, err := strconv.Atoi(num); err == nil {
				return &Error{File: file, Line: min(line, lineCount(data)), Msg: "invalid YAML: " + text}
			}
		}
	}
	return &Error{File: file, Msg: "invalid YAML: " + msg}
}

// unclosed names the construct of a YAML error's context when it is one
// that must be closed ({...}, [...], a quoted string), or "".
func unclosed(context string) string {
	for _, c := range []struct{ in, name string }{
		{"flow mapping", "{"},
		{"flow sequence", "["},
		{"quoted scalar", "quote"},
	} {
		if strings.HasSuffix(context, c.in) {
			return c.name
		}
	}
	return ""
}

// lineCount is the number of the last line of data (at least 1), counting
// line breaks as YAML does: \n, \r\n and a lone \r.
func lineCount(data []byte) int {
	n := 1
	for i := 0; i < len(data); i++ {
		switch data[i] {
		case '\n':
			n++
		case '\r':
			if i+1 < len(data) && data[i+1] == '\n' {
				i++
			}
			n++
		}
	}
	// A final line break ends the last line rather than starting one.
	if l := len(data); l > 0 && (data[l-1] == '\n' || data[l-1] == '\r') {
		n--
	}
	return max(n, 1)
}

func resolve(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.Tag == "!!null"
}

// describe names a node's type for "must be X, got Y" messages.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		switch n.Tag {
		case "!!null":
			return "nothing"
		case "!!int", "!!float":
			return "the number " + n.Value
		case "!!bool":
			return "the boolean " + n.Value
		}
		return strconv.Quote(n.Value)
	}
	return "an unsupported YAML node"
}

type decoder struct {
	file  string
	errs  *errList
	kinds kindLookup
}

// kindLookup finds a kind by name; nil finds the registered kinds
// (probe.LookupKind). Tests pass kinds of their own, to prove that a new
// kind needs nothing in this package.
type kindLookup func(name string) (probe.KindSpec, error)

func (l kindLookup) find(name string) (probe.KindSpec, error) {
	if l == nil {
		return probe.LookupKind(name)
	}
	return l(name)
}

func (d *decoder) errorf(line int, format string, args ...any) {
	d.errs.add(d.file, line, format, args...)
}

// fields walks a mapping, rejects unknown and repeated keys, records the
// line of each key in lines (if not nil) and hands each value to its handler.
// A null value counts as an empty mapping so that "tls:" alone is harmless.
func (d *decoder) fields(n *yaml.Node, where string, lines map[string]int, handlers map[string]func(v *yaml.Node)) {
	d.fieldsRefusing(n, where, lines, handlers, nil)
}

// fieldsRefusing is fields with keys that are refused with a reason of
// their own (refused[key] reports it, given the key's node) rather than as
// unknown; they are not offered as suggestions either.
func (d *decoder) fieldsRefusing(n *yaml.Node, where string, lines map[string]int, handlers map[string]func(v *yaml.Node), refused map[string]func(k *yaml.Node)) {
	n = resolve(n)
	if isNull(n) {
		return
	}
	if n.Kind != yaml.MappingNode {
		d.errorf(n.Line, "%s must be a mapping (key: value), got %s", where, describe(n))
		return
	}
	known := make([]string, 0, len(handlers))
	for k := range handlers {
		known = append(known, k)
	}
	sort.Strings(known)
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], resolve(n.Content[i+1])
		if first, dup := seen[k.Value]; dup {
			d.errorf(k.Line, "key %q repeated in %s (first at line %d)", k.Value, where, first)
			continue
		}
		seen[k.Value] = k.Line
		if r, ok := refused[k.Value]; ok {
			r(k)
			continue
		}
		h, ok := handlers[k.Value]
		if !ok {
			d.errorf(k.Line, "unknown key %q in %s%s", k.Value, where, suggest(k.Value, known))
			continue
		}
		if lines != nil {
			lines[k.Value] = k.Line
		}
		h(v)
	}
}

// lookup returns the scalar value of key in mapping n, or "".
func lookup(n *yaml.Node, key string) string {
	n = resolve(n)
	if n.Kind != yaml.MappingNode {
		return ""
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			if v := resolve(n.Content[i+1]); v.Kind == yaml.ScalarNode {
				return v.Value
			}
		}
	}
	return ""
}

func (d *decoder) str(v *yaml.Node, key, where string) string {
	if v.Kind != yaml.ScalarNode || isNull(v) {
		d.errorf(v.Line, "%s in %s must be a string, got %s", key, where, describe(v))
		return ""
	}
	if msg := valueProblem(v.Value, MaxValueLen); msg != "" {
		d.errorf(v.Line, "%s in %s %s", key, where, msg)
		return ""
	}
	return v.Value
}

// strs accepts a list of strings, or one string as a list of one.
func (d *decoder) strs(v *yaml.Node, key, where string) []string {
	if v.Kind == yaml.ScalarNode && !isNull(v) {
		return []string{v.Value}
	}
	if v.Kind != yaml.SequenceNode {
		d.errorf(v.Line, "%s in %s must be a list of strings, got %s", key, where, describe(v))
		return nil
	}
	out := []string{}
	for _, e := range v.Content {
		if e = resolve(e); e.Kind != yaml.ScalarNode || isNull(e) {
			d.errorf(e.Line, "%s in %s must be a list of strings, got %s in it", key, where, describe(e))
			continue
		}
		if msg := valueProblem(e.Value, MaxValueLen); msg != "" {
			d.errorf(e.Line, "each of %s in %s %s", key, where, msg)
			continue
		}
		out = append(out, e.Value)
	}
	return out
}

func (d *decoder) boolean(v *yaml.Node, key, where string) *bool {
	if v.Kind != yaml.ScalarNode || v.Tag != "!!bool" {
		d.errorf(v.Line, "%s in %s must be true or false, got %s", key, where, describe(v))
		return nil
	}
	b := v.Value == "true" || v.Value == "True" || v.Value == "TRUE"
	return &b
}

func (d *decoder) duration(v *yaml.Node, key, where string) time.Duration {
	if v.Kind != yaml.ScalarNode || isNull(v) {
		d.errorf(v.Line, "%s in %s must be a duration like \"30s\", got %s", key, where, describe(v))
		return 0
	}
	dur, err := time.ParseDuration(v.Value)
	if err != nil {
		hint := `use a Go duration like "30s", "2m" or "1h30m"`
		if _, nerr := strconv.ParseFloat(v.Value, 64); nerr == nil {
			hint = fmt.Sprintf("a unit is needed, e.g. \"%ss\"", v.Value)
		}
		d.errorf(v.Line, "%s in %s: %q is not a duration (%s)", key, where, v.Value, hint)
		return 0
	}
	if dur <= 0 {
		d.errorf(v.Line, "%s in %s must be positive, got %s", key, where, v.Value)
		return 0
	}
	return dur
}

// portScalar keeps a port as written: a number, or a string that may hold
// "${param}" in profiles. It is checked once params are substituted.
func (d *decoder) portScalar(v *yaml.Node, key, where string) (string, bool) {
	if v.Kind != yaml.ScalarNode || isNull(v) || v.Tag == "!!bool" || v.Tag == "!!float" {
		d.errorf(v.Line, "%s in %s must be a port number (1-65535), got %s", key, where, describe(v))
		return "", false
	}
	return v.Value, true
}

func (d *decoder) ipFamily(v *yaml.Node, where string) string {
	s := d.str(v, "ip_family", where)
	switch s {
	case "", probe.FamilyIPv4, probe.FamilyIPv6, probe.FamilyBoth:
		return s
	}
	d.errorf(v.Line, "ip_family in %s must be ipv4, ipv6 or both, got %q", where, s)
	return ""
}

func (d *decoder) tls(v *yaml.Node, where string, global bool) TLSSpec {
	t := TLSSpec{lines: map[string]int{"": v.Line}}
	in := "tls of " + where
	h := map[string]func(v *yaml.Node){
		"ca_file":       func(v *yaml.Node) { t.CAFile = d.str(v, "ca_file", in) },
		"expect_issuer": func(v *yaml.Node) { t.ExpectIssuer = d.strs(v, "expect_issuer", in) },
	}
	if global {
		in = "the global tls"
		h["server_name"] = func(v *yaml.Node) {
			d.errorf(v.Line, "server_name cannot be global (each host has its own name); set tls.server_name in the check")
		}
	} else {
		h["server_name"] = func(v *yaml.Node) { t.ServerName = d.str(v, "server_name", in) }
	}
	d.fields(v, in, t.lines, h)
	return t
}

// check decodes one entry of a checks: list. inProfile permits "${param}".
func (d *decoder) check(n *yaml.Node, index int, inProfile bool) CheckSpec {
	n = resolve(n)
	c := CheckSpec{lines: map[string]int{"": n.Line}}
	where := fmt.Sprintf("check #%d", index+1)
	if name := lookup(n, "name"); name != "" && len(name) <= MaxNameLen && validName(name) {
		where = fmt.Sprintf("check %q", name)
	}
	var portsNode *yaml.Node
	handlers := map[string]func(v *yaml.Node){
		"name": func(v *yaml.Node) { c.Name = d.str(v, "name", where) },
		"kind": func(v *yaml.Node) { c.Kind = d.str(v, "kind", where) },
		"host": func(v *yaml.Node) { c.Host = d.str(v, "host", where) },
		"port": func(v *yaml.Node) {
			if s, ok := d.portScalar(v, "port", where); ok {
				c.Port = s
			}
		},
		"ports":                  func(v *yaml.Node) { portsNode = v },
		"essential":              func(v *yaml.Node) { c.Essential = d.boolean(v, "essential", where) },
		"interval":               func(v *yaml.Node) { c.Interval = d.duration(v, "interval", where) },
		"timeout":                func(v *yaml.Node) { c.Timeout = d.duration(v, "timeout", where) },
		"ip_family":              func(v *yaml.Node) { c.IPFamily = d.ipFamily(v, where) },
		"dns_server":             func(v *yaml.Node) { c.DNSServer = d.str(v, "dns_server", where) },
		string(probe.OptionsTLS): func(v *yaml.Node) { c.TLS = d.tls(v, where, false) },
		"protocol":               func(v *yaml.Node) { c.Transport = d.str(v, "protocol", where) },
		"source_port": func(v *yaml.Node) {
			if s, ok := d.portScalar(v, "source_port", where); ok {
				c.SourcePort = s
			}
		},
		"payload":                func(v *yaml.Node) { c.Payload = d.payload(v, where) },
		"send":                   func(v *yaml.Node) { c.Send = d.send(v, where) },
		"send_hex":               func(v *yaml.Node) { c.Send = d.sendHex(v, where) },
		"query":                  func(v *yaml.Node) { c.Query = d.str(v, "query", where) },
		"expect_reply":           func(v *yaml.Node) { c.ExpectReply = d.boolean(v, "expect_reply", where) },
		string(probe.OptionsNTP): func(v *yaml.Node) { c.NTP = d.ntp(v, where) },

		"proxy":                        func(v *yaml.Node) { c.Proxy = d.str(v, "proxy", where) },
		"user":                         func(v *yaml.Node) { c.User = d.user(v, where) },
		"password_file":                func(v *yaml.Node) { c.PasswordFile = d.passwordFile(v, where) },
		"password_env":                 func(v *yaml.Node) { c.PasswordEnv = d.passwordEnv(v, where) },
		string(probe.OptionsFTP):       func(v *yaml.Node) { c.FTP = d.ftp(v, where) },
		string(probe.OptionsBroadcast): func(v *yaml.Node) { c.Broadcast = d.broadcast(v, where) },

		"method":           func(v *yaml.Node) { c.HTTP.Method = d.method(v, where) },
		"path":             func(v *yaml.Node) { c.HTTP.Path = d.httpPath(v, "path", where) },
		"expect_status":    func(v *yaml.Node) { c.HTTP.ExpectStatus = d.expectStatus(v, where) },
		"max_redirects":    func(v *yaml.Node) { c.HTTP.MaxRedirects = d.maxRedirects(v, where) },
		"follow_redirects": func(v *yaml.Node) { c.HTTP.FollowRedirects = d.boolean(v, "follow_redirects", where) },
	}
	refused := map[string]func(k *yaml.Node){
		"password": func(k *yaml.Node) { d.errorf(k.Line, "%s", passwordRefusal(where)) },
	}
	if inProfile {
		d.metaKeys(&c, where, handlers, refused)
	} else {
		for _, key := range metaKeyNames() {
			refused[key] = func(k *yaml.Node) {
				hint := ""
				if key == "level" {
					hint = "; in a config file write essential: true or false"
				}
				d.errorf(k.Line, "%s in %s works only in profile checks%s", key, where, hint)
			}
		}
	}
	d.fieldsRefusing(n, where, c.lines, handlers, refused)
	if inProfile {
		d.checkMeta(&c, n, where)
	}
	if portsNode != nil {
		c.Ports, c.portLines = d.ports(portsNode, where)
		if c.Port != "" {
			d.errorf(c.lines["ports"], "%s sets both port (line %d) and ports; use one: port for one port, ports for a list or range", where, c.lines["port"])
		}
	}
	if c.TLS.lines == nil {
		c.TLS.lines = map[string]int{}
	}
	if c.NTP.lines == nil {
		c.NTP.lines = map[string]int{}
	}
	if c.FTP.lines == nil {
		c.FTP.lines = map[string]int{}
	}
	if c.Broadcast.lines == nil {
		c.Broadcast.lines = map[string]int{}
	}

	switch {
	case c.Name == "" && c.lines["name"] == 0:
		d.errorf(n.Line, "%s has no name; add name: (letters, digits, '.', '_', '-')", where)
	case len(c.Name) > MaxNameLen:
		d.errorf(c.lines["name"], "the name of %s is %d characters long; at most %d", where, len(c.Name), MaxNameLen)
	case c.Name != "" && !validName(c.Name):
		d.errorf(c.lines["name"], "check name %q is not allowed; use letters, digits, '.', '_' and '-', starting with a letter or digit", c.Name)
	}
	if c.Kind == "" {
		if c.lines["kind"] == 0 {
			d.errorf(n.Line, "%s has no kind; add kind: (one of: %s)", where, strings.Join(probe.KindNames(), ", "))
		}
	} else if k, err := d.kinds.find(c.Kind); err != nil {
		d.errorf(c.lines["kind"], "unknown kind %q in %s%s", c.Kind, where, suggest(c.Kind, probe.KindNames()))
	} else {
		d.kindKeys(&c, k, where)
	}
	if c.Host == "" && c.lines["host"] == 0 {
		d.errorf(n.Line, "%s has no host; add host: (a DNS name or IP address)", where)
	}
	if c.Interval > 0 && c.Interval < MinInterval {
		d.errorf(c.lines["interval"], "interval %s in %s is too short; at least %s", c.Interval, where, MinInterval)
	}
	if c.Interval > 0 && c.Timeout >= c.Interval {
		d.errorf(c.lines["timeout"], "timeout %s in %s must be below its interval %s", c.Timeout, where, c.Interval)
	}

	// Only fields that name a place may take params; elsewhere "${" is a mistake.
	for _, f := range c.paramFields() {
		if !inProfile && strings.Contains(f.value, "${") {
			d.errorf(f.line, "%s in %s holds %s, but ${...} params work only in profiles", f.key, where, f.shown())
		}
	}
	return c
}

// ports decodes ports: "23100-23199", "80,443" or a list of ports and ranges.
func (d *decoder) ports(v *yaml.Node, where string) ([]string, []int) {
	if v.Kind == yaml.ScalarNode && !isNull(v) && v.Tag != "!!bool" && v.Tag != "!!float" {
		var out []string
		var lines []int
		for p := range strings.SplitSeq(v.Value, ",") {
			out = append(out, strings.TrimSpace(p))
			lines = append(lines, v.Line)
		}
		return out, lines
	}
	if v.Kind != yaml.SequenceNode || len(v.Content) == 0 {
		d.errorf(v.Line, "ports in %s must be a range like \"23100-23199\" or a list like [80, 443], got %s", where, describe(v))
		return nil, nil
	}
	var out []string
	var lines []int
	for _, e := range v.Content {
		e = resolve(e)
		if s, ok := d.portScalar(e, "each of ports", where); ok {
			out = append(out, s)
			lines = append(lines, e.Line)
		}
	}
	return out, lines
}

func (d *decoder) checks(v *yaml.Node, inProfile bool) []CheckSpec {
	if isNull(v) {
		return nil
	}
	if v.Kind != yaml.SequenceNode {
		d.errorf(v.Line, "checks must be a list (each entry starting with \"- name:\"), got %s", describe(v))
		return nil
	}
	if len(v.Content) > MaxChecks {
		// Refused before decoding: each entry would cost far more than its text.
		d.errorf(v.Line, "checks holds %d entries; at most %d checks in all", len(v.Content), MaxChecks)
		return nil
	}
	var out []CheckSpec
	first := map[string]int{}
	for i, n := range v.Content {
		before := len(d.errs.errs)
		c := d.check(n, i, inProfile)
		c.failed = len(d.errs.errs) > before
		if c.Name != "" {
			if line, dup := first[c.Name]; dup {
				d.errorf(c.lines["name"], "duplicate check name %q (first at line %d); names must be unique", c.Name, line)
			} else {
				first[c.Name] = c.lines["name"]
			}
		}
		out = append(out, c)
	}
	return out
}

func (d *decoder) defaults(v *yaml.Node) Defaults {
	def := Defaults{lines: map[string]int{"": v.Line}}
	const where = "defaults"
	d.fields(v, where, def.lines, map[string]func(v *yaml.Node){
		"interval":   func(v *yaml.Node) { def.Interval = d.duration(v, "interval", where) },
		"timeout":    func(v *yaml.Node) { def.Timeout = d.duration(v, "timeout", where) },
		"ip_family":  func(v *yaml.Node) { def.IPFamily = d.ipFamily(v, where) },
		"dns_server": func(v *yaml.Node) { def.DNSServer = d.str(v, "dns_server", where) },
	})
	if def.Interval > 0 && def.Interval < MinInterval {
		d.errorf(def.lines["interval"], "interval %s in defaults is too short; at least %s", def.Interval, MinInterval)
	}
	if def.Interval > 0 && def.Timeout >= def.Interval {
		d.errorf(def.lines["timeout"], "timeout %s in defaults must be below the default interval %s", def.Timeout, def.Interval)
	}
	return def
}

func (d *decoder) profileRefs(v *yaml.Node) []ProfileRef {
	if isNull(v) {
		return nil
	}
	if v.Kind != yaml.SequenceNode {
		d.errorf(v.Line, "profiles must be a list (each entry starting with \"- name:\"), got %s", describe(v))
		return nil
	}
	var out []ProfileRef
	first := map[string]int{}
	for i, n := range v.Content {
		n = resolve(n)
		// "- clover" is accepted as the short form of "- name: clover".
		if n.Kind == yaml.ScalarNode && !isNull(n) {
			out = append(out, ProfileRef{Name: n.Value, line: n.Line})
			if line, dup := first[n.Value]; dup {
				d.errorf(n.Line, "profile %q listed twice (first at line %d)", n.Value, line)
			}
			first[n.Value] = n.Line
			continue
		}
		r := ProfileRef{line: n.Line, paramLines: map[string]int{}}
		where := fmt.Sprintf("profiles entry #%d", i+1)
		if name := lookup(n, "name"); name != "" {
			where = fmt.Sprintf("profile %q", name)
		}
		d.fields(n, where, nil, map[string]func(v *yaml.Node){
			"name":   func(v *yaml.Node) { r.Name = d.str(v, "name", where) },
			"params": func(v *yaml.Node) { r.Params = d.params(v, where, r.paramLines) },
		})
		if r.Name == "" {
			d.errorf(n.Line, "%s has no name; add name: (see the profile list in the README)", where)
		} else if line, dup := first[r.Name]; dup {
			d.errorf(n.Line, "profile %q listed twice (first at line %d)", r.Name, line)
		} else {
			first[r.Name] = n.Line
		}
		out = append(out, r)
	}
	return out
}

// params decodes a params: mapping of scalar values; numbers become strings.
func (d *decoder) params(v *yaml.Node, where string, lines map[string]int) map[string]string {
	if isNull(v) {
		return nil
	}
	if v.Kind != yaml.MappingNode {
		d.errorf(v.Line, "params in %s must be a mapping (key: value), got %s", where, describe(v))
		return nil
	}
	out := map[string]string{}
	for i := 0; i+1 < len(v.Content); i += 2 {
		k, val := v.Content[i], resolve(v.Content[i+1])
		if line, dup := lines[k.Value]; dup {
			d.errorf(k.Line, "param %q repeated in %s (first at line %d)", k.Value, where, line)
			continue
		}
		lines[k.Value] = k.Line
		if val.Kind != yaml.ScalarNode || isNull(val) {
			d.errorf(val.Line, "param %q in %s must be a single value, got %s", k.Value, where, describe(val))
			continue
		}
		out[k.Value] = val.Value
	}
	return out
}

func (d *decoder) config(root *yaml.Node) *Config {
	c := &Config{Source: d.file, kinds: d.kinds}
	d.fields(root, "the top level", nil, map[string]func(v *yaml.Node){
		"defaults": func(v *yaml.Node) { c.Defaults = d.defaults(v) },
		"proxy": func(v *yaml.Node) {
			c.Proxy, c.proxyLine = d.str(v, "proxy", "the top level"), v.Line
			if strings.Contains(c.Proxy, "${") {
				d.errorf(v.Line, "proxy at the top level holds %q, but ${...} params work only in profiles", maskProxy(c.Proxy))
				c.Proxy = "" // reported; not judged again as a URL
			}
		},
		string(probe.OptionsTLS): func(v *yaml.Node) { c.TLS = d.tls(v, "", true) },
		"profiles":               func(v *yaml.Node) { c.Profiles = d.profileRefs(v) },
		"checks":                 func(v *yaml.Node) { c.Custom = d.checks(v, false) },
	})
	return c
}

func (d *decoder) profile(root *yaml.Node) *Profile {
	p := &Profile{Source: d.file}
	where := "the profile"
	var checksNode *yaml.Node
	checksLine := root.Line
	d.fields(root, where, nil, map[string]func(v *yaml.Node){
		"name":        func(v *yaml.Node) { p.Name = d.str(v, "name", where) },
		"description": func(v *yaml.Node) { p.Description = d.str(v, "description", where) },
		"source":      func(v *yaml.Node) { p.Origin = d.sourceRef(v, where, false) },
		"not_covered": func(v *yaml.Node) { p.NotCovered = d.notCovered(v) },
		"params":      func(v *yaml.Node) { p.Params = d.paramDecls(v) },
		"checks":      func(v *yaml.Node) { checksNode, checksLine = v, v.Line },
	})
	if p.Name == "" {
		d.errorf(root.Line, "the profile has no name; add name: (lower-case letters, digits, '_', '-')")
	} else if !validProfileName(p.Name) {
		d.errorf(root.Line, "profile name %q is not allowed; use lower-case letters, digits, '_' and '-', starting with a letter", p.Name)
	}
	if checksNode != nil {
		p.Checks = d.checks(checksNode, true)
	}
	if len(p.Checks) == 0 {
		d.errorf(checksLine, "profile %q has no checks", p.Name)
	}
	declared := map[string]Param{}
	var bools []string
	for _, prm := range p.Params {
		declared[prm.Name] = prm
		if prm.Type == ParamBool {
			bools = append(bools, prm.Name)
		}
	}
	for _, c := range p.Checks {
		if w := c.Meta.When; w != "" {
			prm, ok := declared[w]
			switch {
			case !ok && len(bools) == 0:
				d.errorf(c.lines["when"], "when of check %q names %q, which is not declared under params: (declare it with type: bool)", c.Name, w)
			case !ok:
				d.errorf(c.lines["when"], "when of check %q names %q, which is not declared under params:%s", c.Name, w, suggest(w, bools))
			case prm.Type != ParamBool:
				d.errorf(c.lines["when"], "when of check %q names param %q, which is a %s; when: takes a param of type: bool", c.Name, w, prm.Type)
			}
		}
		for _, f := range c.paramFields() {
			refs, ok := paramRefs(f.value)
			for _, ref := range refs {
				prm, known := declared[ref]
				switch {
				case !known:
					d.errorf(f.line, "%s of check %q uses ${%s}, which is not declared under params:", f.key, c.Name, ref)
				case prm.Type == ParamBool:
					d.errorf(f.line, "%s of check %q uses ${%s}, a bool param; only string params substitute (bool params switch checks on through when:)", f.key, c.Name, ref)
				}
			}
			if !ok {
				d.errorf(f.line, "%s of check %q holds a malformed param reference %s; write ${name}", f.key, c.Name, f.shown())
			}
		}
	}
	return p
}

func (d *decoder) paramDecls(v *yaml.Node) []Param {
	if isNull(v) {
		return nil
	}
	if v.Kind != yaml.SequenceNode {
		d.errorf(v.Line, "params of the profile must be a list (each entry starting with \"- name:\"), got %s", describe(v))
		return nil
	}
	var out []Param
	first := map[string]int{}
	for i, n := range v.Content {
		n = resolve(n)
		p := Param{line: n.Line}
		where := fmt.Sprintf("param #%d", i+1)
		if name := lookup(n, "name"); name != "" {
			where = fmt.Sprintf("param %q", name)
		}
		var hasDefault bool
		lines := map[string]int{}
		d.fields(n, where, lines, map[string]func(v *yaml.Node){
			"name":        func(v *yaml.Node) { p.Name = d.str(v, "name", where) },
			"description": func(v *yaml.Node) { p.Description = d.str(v, "description", where) },
			"type":        func(v *yaml.Node) { p.Type = d.str(v, "type", where) },
			"default":     func(v *yaml.Node) { p.Default, hasDefault = d.str(v, "default", where), true },
			"default_source": func(v *yaml.Node) {
				p.DefaultSource = strings.TrimSpace(d.str(v, "default_source", where))
			},
			"example": func(v *yaml.Node) { p.Example = d.str(v, "example", where) },
			"required": func(v *yaml.Node) {
				if b := d.boolean(v, "required", where); b != nil {
					p.Required = *b
				}
			},
		})
		switch p.Type {
		case "":
			p.Type = ParamString
		case ParamString, ParamBool:
		default:
			d.errorf(lines["type"], "type of %s must be string or bool, got %q%s", where, p.Type, closeTo(p.Type, []string{ParamString, ParamBool}))
			p.Type = ParamString
		}
		if p.Type == ParamBool {
			if p.Required {
				d.errorf(lines["required"], "%s is a bool, which cannot be required: unset, it is false", where)
			}
			if hasDefault && !validBool(p.Default) {
				d.errorf(lines["default"], "default of %s must be true or false (it is a bool), got %q", where, p.Default)
			}
		} else if hasDefault && p.Default != "" && p.DefaultSource == "" {
			d.errorf(lines["default"], "%s has a default, so it needs default_source: (where this default comes from: the vendor's document, or why connprobe chose it)", where)
		}
		if lines["default_source"] > 0 && !hasDefault {
			d.errorf(lines["default_source"], "%s has default_source: but no default:", where)
		}
		switch {
		case p.Name == "":
			d.errorf(n.Line, "%s has no name", where)
		case !validParamName(p.Name):
			d.errorf(n.Line, "param name %q is not allowed; use lower-case letters, digits and '_', starting with a letter", p.Name)
		default:
			if line, dup := first[p.Name]; dup {
				d.errorf(n.Line, "param %q declared twice (first at line %d)", p.Name, line)
			}
			first[p.Name] = n.Line
		}
		if p.Required && hasDefault {
			d.errorf(n.Line, "%s is required but has a default; drop one of them", where)
		}
		if p.Required && p.Example == "" {
			d.errorf(n.Line, "%s is required, so it needs an example: (shown in the missing-param error)", where)
		}
		out = append(out, p)
	}
	return out
}

// Names become label values and parts of Check.ID (joined with "/"), so
// they are kept to a small, unambiguous alphabet.
func validName(s string) bool {
	return s != "" && isAlnum(s[0]) && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") == ""
}

// Profile and param names are typed on command lines (--param clover.key=v),
// so they carry no dots or capitals.
func validProfileName(s string) bool {
	return s != "" && isLower(s[0]) && strings.Trim(s, "abcdefghijklmnopqrstuvwxyz0123456789_-") == ""
}

func validParamName(s string) bool {
	return s != "" && isLower(s[0]) && strings.Trim(s, "abcdefghijklmnopqrstuvwxyz0123456789_") == ""
}

func isLower(b byte) bool { return b >= 'a' && b <= 'z' }
func isAlnum(b byte) bool {
	return isLower(b) || (b >= 'A' && b <= 'Z') || (b >= '0' && b <= '9')
}

// paramRefs lists the param names referenced as ${name} in s; ok is false
// when s holds a "${" that does not start a well-formed reference.
func paramRefs(s string) (refs []string, ok bool) {
	ok = true
	for {
		i := strings.Index(s, "${")
		if i < 0 {
			return refs, ok
		}
		s = s[i+2:]
		j := strings.IndexByte(s, '}')
		if j < 0 || !validParamName(s[:j]) {
			ok = false
			continue
		}
		refs = append(refs, s[:j])
		s = s[j+1:]
	}
}

package targets

import (
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/connprobe/connprobe/probe"
)

// scope is where a CheckSpec came from: the config itself or a profile.
type scope struct {
	file    string // for errors
	dir     string // base for relative tls.ca_file; "" for embedded sources
	profile string // "" for custom checks
	where   string // `check "x"` or `check "x" of profile "p"`
	params  map[string]string
}

// enabled is one profile to expand, from the config or from --profile.
type enabled struct {
	ref  ProfileRef
	flag bool // enabled by --profile only
}

// Plan is what a configuration expands to: the checks to run, and the
// profile checks skipped because a required param is not set.
type Plan struct {
	Config  *Config
	Checks  []*probe.Check
	Skipped []Skipped
}

// Skipped is a profile check that does not run because a required param
// it uses is not set. It is not an error: a profile's optional parts (a
// processor's endpoint, a SIP server) stay off until the user names them.
type Skipped struct {
	Profile   string
	Check     string
	Level     string   // the check's level
	Essential bool     // what Check.Essential would be, were it set up
	Missing   []string // the unset required params, in declaration order
	// Hint is the flags that would enable it, with the params' examples:
	// "--param clover.emv_host=emv.processor.example.com".
	Hint string
	// Detail says the same for people, with each param's description:
	// "set --param clover.emv_host=... (the payment processor's EMV endpoint)".
	Detail string
}

// checks validates the config together with the command-line options and
// expands custom checks and enabled profiles into one check per port;
// profile checks skipped for want of a param are left out (see Expand).
func (c *Config) checks(opts Options) ([]*probe.Check, error) {
	p, err := c.Expand(opts)
	if err != nil {
		return nil, err
	}
	return p.Checks, nil
}

// Expand validates the config together with the command-line options and
// expands custom checks and enabled profiles into one check per port, and
// lists the profile checks skipped because a required param is unset.
// Errors name file:line (or the flag) and are joined, so all are reported.
func (c *Config) Expand(opts Options) (*Plan, error) {
	var errs errList
	dir := baseDir(c.Source)
	c.checkGlobals(dir, &errs)

	plan := &Plan{Config: c}
	for i := range c.Custom {
		s := &c.Custom[i]
		sc := scope{file: c.Source, dir: dir, where: fmt.Sprintf("check %q", s.Name)}
		plan.Checks = append(plan.Checks, c.expand(s, sc, &errs)...)
		if len(plan.Checks) > MaxChecks {
			return nil, errTooManyChecks(c.Source)
		}
	}

	profs := c.enabledProfiles(opts)
	cli := parseParamFlags(opts.Params, profs, &errs)
	if len(profs) > 0 || opts.ProfilesDir != "" {
		cat, err := Catalogue(opts.ProfilesDir)
		if err != nil {
			errs.errs = append(errs.errs, err)
			return nil, errs.err()
		}
		for _, e := range profs {
			checks, skipped := c.expandProfile(cat, e, cli[e.ref.Name], &errs)
			plan.Checks = append(plan.Checks, checks...)
			plan.Skipped = append(plan.Skipped, skipped...)
			if len(plan.Checks) > MaxChecks {
				return nil, errTooManyChecks(c.Source)
			}
		}
	}

	seen := map[string]bool{}
	for _, ch := range plan.Checks {
		id := ch.ID()
		if seen[id] {
			// Ports and names are checked for repeats earlier; this is the last guard.
			errs.add(c.Source, 0, "check %s appears twice", id)
		}
		seen[id] = true
	}
	if errs.empty() && len(plan.Checks) == 0 {
		if len(plan.Skipped) > 0 {
			var hints []string
			for _, s := range plan.Skipped {
				hints = append(hints, s.Profile+"/"+s.Check+": "+s.Detail)
			}
			errs.add(c.Source, 0, "nothing to probe: every check is skipped for a missing param:\n  %s", strings.Join(hints, "\n  "))
		} else {
			errs.add(c.Source, 0, "nothing to probe: add checks: or profiles:, or pass --profile")
		}
	}
	if !errs.empty() {
		return nil, errs.err()
	}
	return plan, nil
}

// checkGlobals validates what defaults: and the global tls: set once, so a
// bad value is reported once and not for every check that inherits it.
func (c *Config) checkGlobals(dir string, errs *errList) {
	if s := c.Defaults.DNSServer; s != "" {
		if msg := dnsServerProblem(s); msg != "" {
			errs.add(c.Source, lineOr(c.Defaults.lines, "dns_server", 0), "dns_server in defaults: %s", msg)
		}
	}
	if c.Proxy != "" {
		if msg := proxyProblem(c.Proxy); msg != "" {
			errs.add(c.Source, c.proxyLine, "proxy at the top level: %q %s", maskProxy(c.Proxy), msg)
		}
	}
	if f := c.TLS.CAFile; f != "" {
		if msg := caFileProblem(resolvePath(dir, f)); msg != "" {
			errs.add(c.Source, lineOr(c.TLS.lines, "ca_file", 0), "ca_file in the global tls: %s", msg)
		}
	}
}

func (c *Config) enabledProfiles(opts Options) []enabled {
	var out []enabled
	seen := map[string]bool{}
	for _, r := range c.Profiles {
		out = append(out, enabled{ref: r})
		seen[r.Name] = true
	}
	for _, name := range opts.Profiles {
		if !seen[name] {
			out = append(out, enabled{ref: ProfileRef{Name: name}, flag: true})
			seen[name] = true
		}
	}
	return out
}

// cliParam is one --param flag.
type cliParam struct {
	key, value, flag string
}

// parseParamFlags groups --param PROFILE.KEY=VALUE flags by profile; a later
// flag for the same key wins, as usual for flags.
func parseParamFlags(flags []string, profs []enabled, errs *errList) map[string][]cliParam {
	on := map[string]bool{}
	for _, e := range profs {
		on[e.ref.Name] = true
	}
	out := map[string][]cliParam{}
	for _, f := range flags {
		kv, value, ok := strings.Cut(f, "=")
		prof, key, ok2 := strings.Cut(kv, ".")
		if !ok || !ok2 || prof == "" || key == "" {
			errs.add("", 0, "--param %q: want PROFILE.KEY=VALUE, e.g. --param myprofile.host=example.com", f)
			continue
		}
		if !on[prof] {
			errs.add("", 0, "--param %q: profile %q is not enabled; list it under profiles: or pass --profile %s", f, prof, prof)
			continue
		}
		out[prof] = append(out[prof], cliParam{key: key, value: value, flag: f})
	}
	return out
}

func (c *Config) expandProfile(cat []Profile, e enabled, cli []cliParam, errs *errList) ([]*probe.Check, []Skipped) {
	// file/line locate the profile reference: a config line or the flag.
	file, line := c.Source, e.ref.line
	if e.flag {
		file, line = "", 0
	}
	prof, err := FindProfile(cat, e.ref.Name)
	if err != nil {
		msg := err.Error()
		if e.flag {
			msg = fmt.Sprintf("--profile %s: %s", e.ref.Name, msg)
		}
		errs.add(file, line, "%s", msg)
		return nil, nil
	}

	unknown := func(key string) string {
		if len(prof.Params) == 0 {
			return fmt.Sprintf("profile %q has no param %q (it takes no params)", prof.Name, key)
		}
		return fmt.Sprintf("profile %q has no param %q%s", prof.Name, key, suggest(key, prof.paramNames()))
	}
	notBool := func(p Param, v string) string {
		return fmt.Sprintf("param %q of profile %q is a bool: true or false, got %q", p.Name, prof.Name, v)
	}
	values := map[string]string{}
	for _, p := range prof.Params {
		values[p.Name] = p.Default
		if p.Type == ParamBool && p.Default == "" {
			values[p.Name] = "false"
		}
	}
	keys := make([]string, 0, len(e.ref.Params))
	for k := range e.ref.Params {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	ok := true
	for _, k := range keys {
		ln := lineOr(e.ref.paramLines, k, e.ref.line)
		p, known := prof.param(k)
		switch v := e.ref.Params[k]; {
		case !known:
			errs.add(c.Source, ln, "%s", unknown(k))
			ok = false
		case p.Type == ParamBool && !validBool(v):
			errs.add(c.Source, ln, "%s", notBool(p, v))
			ok = false
		default:
			values[k] = v
		}
	}
	for _, f := range cli {
		p, known := prof.param(f.key)
		switch {
		case !known:
			errs.add("", 0, "--param %q: %s", f.flag, unknown(f.key))
			ok = false
		case p.Type == ParamBool && !validBool(f.value):
			errs.add("", 0, "--param %q: %s", f.flag, notBool(p, f.value))
			ok = false
		default:
			values[f.key] = f.value
		}
	}
	if !ok {
		return nil, nil
	}

	var out []*probe.Check
	var skipped []Skipped
	for i := range prof.Checks {
		s := &prof.Checks[i]
		if w := s.Meta.When; w != "" && values[w] != "true" {
			continue // a conditional check not asked for does not exist
		}
		if sk, skip := prof.skipped(s, values); skip {
			skipped = append(skipped, sk)
			continue
		}
		sc := scope{
			file:    prof.Source,
			dir:     baseDir(prof.Source),
			profile: prof.Name,
			where:   fmt.Sprintf("check %q of profile %q", s.Name, prof.Name),
			params:  values,
		}
		out = append(out, c.expand(s, sc, errs)...)
	}
	return out, skipped
}

// skipped says whether check s uses a required param that values leave
// empty, and if so what to set.
func (p *Profile) skipped(s *CheckSpec, values map[string]string) (Skipped, bool) {
	missing := p.missing(s, values)
	if len(missing) == 0 {
		return Skipped{}, false
	}
	sk := Skipped{Profile: p.Name, Check: s.Name, Level: s.Meta.Level, Essential: s.Meta.Essential()}
	var hints, details []string
	for _, prm := range missing {
		flag := fmt.Sprintf("--param %s.%s=", p.Name, prm.Name)
		sk.Missing = append(sk.Missing, prm.Name)
		hints = append(hints, flag+prm.Example)
		detail := flag + "..."
		if desc := strings.Join(strings.Fields(prm.Description), " "); desc != "" {
			detail += " (" + desc + ")"
		}
		details = append(details, detail)
	}
	sk.Hint = strings.Join(hints, " ")
	sk.Detail = "set " + strings.Join(details, " and ")
	return sk, true
}

// missing lists the required params check s uses that values leave empty,
// in declaration order.
func (p *Profile) missing(s *CheckSpec, values map[string]string) []Param {
	used := map[string]bool{}
	for _, f := range s.paramFields() {
		refs, _ := paramRefs(f.value)
		for _, r := range refs {
			used[r] = true
		}
	}
	var out []Param
	for _, prm := range p.Params {
		if used[prm.Name] && prm.Required && values[prm.Name] == "" {
			out = append(out, prm)
		}
	}
	return out
}

// expansion is one CheckSpec being expanded: where its errors go and how
// its params are substituted.
type expansion struct {
	c    *Config
	s    *CheckSpec
	sc   scope
	errs *errList
}

// line is the line of key in the spec, or of the spec itself.
func (e *expansion) line(key string) int { return lineOr(e.s.lines, key, e.s.lines[""]) }

// fail reports a problem with key.
func (e *expansion) fail(key, format string, args ...any) {
	e.errs.add(e.sc.file, e.line(key), "%s in %s: %s", key, e.sc.where, fmt.Sprintf(format, args...))
}

// sub substitutes params; shown is how the value appears in errors, with
// what it was substituted from.
func (e *expansion) sub(raw string) (val, shown string) {
	val = substitute(raw, e.sc.params)
	if val != raw {
		return val, fmt.Sprintf("%q (from %q)", val, raw)
	}
	return val, strconv.Quote(val)
}

// expand validates one spec against defaults and params and returns one
// check per port. What only some kinds take is built as the kind says
// (kindOptions); nothing here names a kind.
func (c *Config) expand(s *CheckSpec, sc scope, errs *errList) []*probe.Check {
	e := &expansion{c: c, s: s, sc: sc, errs: errs}
	nErrs := len(errs.errs)

	kind, err := c.kinds.find(s.Kind)
	if err != nil {
		errs.add(sc.file, e.line("kind"), "%s: %v", sc.where, err)
		return nil
	}
	// The protocol: key was checked against the kind when the file was parsed.
	variant, network, defaultPort, _ := transport(kind, s.Transport)
	ck := &probe.Check{
		Profile:   sc.profile,
		Name:      s.Name,
		Kind:      kind.Name,
		Network:   network,
		Transport: variant,
		IPFamily:  firstSet(s.IPFamily, c.Defaults.IPFamily, DefaultIPFamily),
	}
	ck.Host = e.host(ck.IPFamily)
	ports := e.ports(kind, defaultPort)
	ck.Interval, ck.Timeout = e.timing(kind)
	ck.DNSServer = e.dnsServer()
	ck.TLS = probe.OptionsOf(e.tls())
	ck.Credentials = probe.OptionsOf(e.credentials())
	ck.SourcePort = e.sourcePort()
	// A proxy applies only where the kind connects out over TCP (checked
	// when parsed): the top-level one is the default there, and nowhere else.
	if kind.Proxyable(variant) {
		ck.Proxy = e.proxy()
	}
	e.kindOptions(kind, ck)
	var meta probe.CheckMeta
	ck.Essential, meta = s.essential()
	ck.Meta = probe.OptionsOf(meta)
	if len(errs.errs) > nErrs {
		return nil
	}
	rng := e.rangeName(ports)
	out := make([]*probe.Check, 0, len(ports))
	for _, p := range ports {
		one := *ck
		one.Port, one.Range = p, rng
		out = append(out, &one)
	}
	return out
}

func (e *expansion) host(family string) string {
	host, shown := e.sub(e.s.Host)
	if msg := hostProblem(host, family); msg != "" {
		e.fail("host", "%s %s", shown, msg)
	}
	return host
}

// ports are the ports the spec names, or the kind's default port.
func (e *expansion) ports(kind probe.KindSpec, defaultPort int) []int {
	s := e.s
	switch {
	case s.Port != "":
		v, shown := e.sub(s.Port)
		p, msg := parsePort(v)
		if msg != "" {
			e.fail("port", "%s %s", shown, msg)
			return nil
		}
		return []int{p}
	case len(s.Ports) > 0:
		return e.c.expandPorts(s, e.sc, e.sub, e.errs)
	case defaultPort != 0:
		return []int{defaultPort}
	}
	e.errs.add(e.sc.file, s.lines[""], "%s has no port, and kind %s has no default port; add port: or ports:", e.sc.where, kind.Name)
	return nil
}

// rangeName names the checks of one ports: value with more than one port,
// spelled as written (a list joined with ","), after substitution; "" for
// one port.
func (e *expansion) rangeName(ports []int) string {
	if len(e.s.Ports) == 0 || len(ports) < 2 {
		return ""
	}
	parts := make([]string, len(e.s.Ports))
	for i, raw := range e.s.Ports {
		parts[i] = strings.Join(strings.Fields(substitute(raw, e.sc.params)), "")
	}
	return strings.Join(parts, ",")
}

// timing is the check's interval and timeout: set in the check, from
// defaults:, or the defaults (the kind's for the interval).
func (e *expansion) timing(kind probe.KindSpec) (interval, timeout time.Duration) {
	s, d := e.s, e.c.Defaults
	interval, intervalFrom := s.Interval, "set in the check"
	if interval == 0 {
		interval, intervalFrom = d.Interval, "from defaults"
	}
	if interval == 0 {
		interval, intervalFrom = defaultInterval(kind), "the default for kind "+kind.Name
	}
	timeout, timeoutFrom := s.Timeout, "set in the check"
	if timeout == 0 {
		timeout, timeoutFrom = d.Timeout, "from defaults"
	}
	if timeout == 0 {
		timeout, timeoutFrom = DefaultTimeout, "the default"
	}
	if timeout >= interval {
		ln := lineOr(s.lines, "timeout", e.line("interval"))
		e.errs.add(e.sc.file, ln, "%s: timeout %s (%s) must be below interval %s (%s); lower the timeout or raise the interval",
			e.sc.where, timeout, timeoutFrom, interval, intervalFrom)
	}
	return interval, timeout
}

func (e *expansion) dnsServer() string {
	if e.s.DNSServer == "" {
		return e.c.Defaults.DNSServer
	}
	dns, shown := e.sub(e.s.DNSServer)
	if msg := dnsServerProblem(dns); msg != "" {
		e.fail("dns_server", "%s: %s", shown, msg)
	}
	return dns
}

// tls is the check's tls: over the global one, field by field.
func (e *expansion) tls() probe.TLSOptions {
	c, s := e.c, e.s
	opt := probe.TLSOptions{CAFile: resolvePath(baseDir(c.Source), c.TLS.CAFile), ExpectIssuer: c.TLS.ExpectIssuer}
	if s.TLS.CAFile != "" {
		opt.CAFile = resolvePath(e.sc.dir, s.TLS.CAFile)
		if msg := caFileProblem(opt.CAFile); msg != "" {
			e.errs.add(e.sc.file, lineOr(s.TLS.lines, "ca_file", e.line(string(probe.OptionsTLS))), "tls.ca_file in %s: %s", e.sc.where, msg)
		}
	}
	if s.TLS.ServerName != "" {
		opt.ServerName, _ = e.sub(s.TLS.ServerName)
	}
	if s.TLS.ExpectIssuer != nil {
		opt.ExpectIssuer = s.TLS.ExpectIssuer
	}
	return opt
}

// proxy is the check's proxy: over the top-level one.
func (e *expansion) proxy() string {
	s := e.s
	if s.lines["proxy"] == 0 {
		return e.c.Proxy
	}
	v := substitute(s.Proxy, e.sc.params)
	switch {
	case s.Proxy == "":
		e.fail("proxy", `is empty; write "direct" for no proxy, or remove proxy: to use the top-level one`)
	case v == "":
		return e.c.Proxy // a param left empty: the top-level proxy applies
	default:
		if msg := proxyProblem(v); msg != "" {
			e.fail("proxy", "%s %s", proxyShown(v, s.Proxy), msg)
		}
	}
	return v
}

// credentials were checked against the kind when parsed; the password
// file is only proven readable here, never read.
func (e *expansion) credentials() probe.Credentials {
	cred := probe.Credentials{User: e.s.User, PasswordEnv: e.s.PasswordEnv}
	if e.s.PasswordFile != "" {
		cred.PasswordFile = resolvePath(e.sc.dir, e.s.PasswordFile)
		if msg := passwordFileProblem(cred.PasswordFile); msg != "" {
			e.fail("password_file", "%s", msg)
		}
	}
	return cred
}

func (e *expansion) sourcePort() int {
	if e.s.SourcePort == "" {
		return 0
	}
	v, shown := e.sub(e.s.SourcePort)
	p, msg := parsePort(v)
	if msg != "" {
		e.fail("source_port", "%s %s", shown, msg)
	}
	return p
}

// kindOptions fills the options of every option set the kind takes, with
// their defaults written in, so that what runs is what the check shows.
func (e *expansion) kindOptions(kind probe.KindSpec, ck *probe.Check) {
	for _, set := range kind.Options {
		switch set {
		case probe.OptionsRequest:
			ck.UDP = probe.OptionsOf(e.request())
		case probe.OptionsNTP:
			ck.NTP = probe.OptionsOf(e.s.NTP.options())
		case probe.OptionsFTP:
			ck.FTP = probe.OptionsOf(e.s.FTP.options())
		case probe.OptionsHTTP:
			ck.HTTP = probe.OptionsOf(e.s.HTTP.options())
		case probe.OptionsBroadcast:
			ck.Broadcast = probe.OptionsOf(e.s.Broadcast.options())
		}
	}
}

// request is the datagram of probe.OptionsRequest.
func (e *expansion) request() probe.UDPOptions {
	s := e.s
	udp := probe.UDPOptions{Payload: s.Payload, Send: s.Send, AcceptSilence: s.ExpectReply != nil && !*s.ExpectReply}
	if s.lines["query"] > 0 {
		var shown string
		udp.Query, shown = e.sub(s.Query)
		if msg := queryProblem(udp.Query); msg != "" {
			e.fail("query", "%s %s", shown, msg)
		}
	}
	return udp
}

func (n NTPSpec) options() probe.NTPOptions {
	o := probe.NTPOptions{Samples: DefaultNTPSamples, MaxRootDistance: DefaultMaxRootDistance}
	if n.Samples > 0 {
		o.Samples = n.Samples
	}
	if n.MaxRootDistance > 0 {
		o.MaxRootDistance = n.MaxRootDistance
	}
	return o
}

func (f FTPSpec) options() probe.FTPOptions {
	return probe.FTPOptions{ExplicitTLS: f.ExplicitTLS, Path: f.Path, TrustPASVAddress: f.TrustPASVAddress}
}

func (h HTTPSpec) options() probe.HTTPOptions {
	o := probe.HTTPOptions{
		Method:       firstSet(h.Method, DefaultHTTPMethod),
		Path:         firstSet(h.Path, DefaultHTTPPath),
		ExpectStatus: h.ExpectStatus,
		MaxRedirects: h.MaxRedirects,
		NoRedirects:  h.FollowRedirects != nil && !*h.FollowRedirects,
	}
	if o.ExpectStatus == nil {
		o.ExpectStatus = DefaultExpectStatus()
	}
	if o.MaxRedirects == 0 && !o.NoRedirects {
		o.MaxRedirects = DefaultMaxRedirects
	}
	return o
}

func (b BroadcastSpec) options() probe.BroadcastOptions {
	return probe.BroadcastOptions{Mode: firstSet(b.Mode, probe.BroadcastAuto)}
}

// options is what a check's sections say, before params and files are
// looked at: what a kind's conditions (probe.Condition) are judged on when
// the file is parsed.
func (c *CheckSpec) options(variant string) *probe.Check {
	return &probe.Check{Kind: c.Kind, Transport: variant, NTP: probe.OptionsOf(c.NTP.options()), FTP: probe.OptionsOf(c.FTP.options()),
		HTTP: probe.OptionsOf(c.HTTP.options()), Broadcast: probe.OptionsOf(c.Broadcast.options())}
}

// essential and meta: what a profile's level says, else essential: (true
// when not set).
func (c *CheckSpec) essential() (bool, probe.CheckMeta) {
	m := c.Meta
	if m.Level == "" {
		return c.Essential == nil || *c.Essential, probe.CheckMeta{}
	}
	return m.Essential(), probe.CheckMeta{Direction: m.Direction, Level: m.Level, Purpose: strings.Join(strings.Fields(m.Purpose), " "), Source: m.Source.String()}
}

// expandPorts turns the ports: items into a sorted-as-written, repeat-free list.
func (c *Config) expandPorts(s *CheckSpec, sc scope, sub func(string) (string, string), errs *errList) []int {
	var ports []int
	seen := map[int]bool{}
	bad := false
	for i, raw := range s.Ports {
		ln := s.lines["ports"]
		if i < len(s.portLines) {
			ln = s.portLines[i]
		}
		v, shown := sub(raw)
		lo, hi, msg := parsePortRange(v)
		if msg != "" {
			errs.add(sc.file, ln, "ports in %s: %s %s", sc.where, shown, msg)
			bad = true
			continue
		}
		if hi-lo+1 > MaxPortsPerCheck {
			errs.add(sc.file, ln, "ports in %s: range %s has %d ports; at most %d per check (split it into several checks)",
				sc.where, shown, hi-lo+1, MaxPortsPerCheck)
			bad = true
			continue
		}
		for p := lo; p <= hi; p++ {
			if seen[p] {
				errs.add(sc.file, ln, "ports in %s: port %d is listed twice", sc.where, p)
				bad = true
				break
			}
			seen[p] = true
			ports = append(ports, p)
		}
	}
	if !bad && len(ports) > MaxPortsPerCheck {
		errs.add(sc.file, s.lines["ports"], "ports in %s expand to %d ports; at most %d per check (split it into several checks)",
			sc.where, len(ports), MaxPortsPerCheck)
	}
	return ports
}

// defaultInterval applies when neither the check nor defaults: set one:
// kinds whose servers must not be polled often raise the floor.
func defaultInterval(k probe.KindSpec) time.Duration {
	return max(DefaultInterval, k.MinInterval)
}

// parsePort checks one port number; msg completes "<value> ..." on error.
func parsePort(s string) (int, string) {
	p, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil {
		return 0, "is not a port number (1-65535)"
	}
	if p < 1 || p > 65535 {
		return 0, "is out of range (ports are 1-65535)"
	}
	return p, ""
}

// parsePortRange accepts "443" or "23100-23199".
func parsePortRange(s string) (lo, hi int, msg string) {
	a, b, isRange := strings.Cut(s, "-")
	if !isRange {
		p, msg := parsePort(s)
		return p, p, msg
	}
	lo, msgA := parsePort(a)
	hi, msgB := parsePort(b)
	switch {
	case strings.TrimSpace(a) == "" || strings.TrimSpace(b) == "":
		return 0, 0, `is not a range; write "low-high", e.g. "23100-23199"`
	case msgA != "":
		return 0, 0, fmt.Sprintf("starts with %q, which %s", strings.TrimSpace(a), msgA)
	case msgB != "":
		return 0, 0, fmt.Sprintf("ends with %q, which %s", strings.TrimSpace(b), msgB)
	case lo > hi:
		return 0, 0, fmt.Sprintf("runs backwards; write \"%d-%d\"", hi, lo)
	}
	return lo, hi, ""
}

// hostProblem says what is wrong with a host (completing "<host> ..."), or "".
func hostProblem(host, family string) string {
	switch {
	case host == "":
		return "is empty; set a DNS name or IP address"
	case strings.Contains(host, "://"):
		rest := host[strings.Index(host, "://")+3:]
		if i := strings.IndexAny(rest, "/?#"); i >= 0 {
			rest = rest[:i]
		}
		return fmt.Sprintf("is a URL; write only the name, e.g. host: %s", rest)
	case strings.ContainsAny(host, " \t/@"):
		return "is not a DNS name or IP address"
	}
	if msg := hostCharsProblem(host); msg != "" {
		return msg
	}
	if ip := net.ParseIP(strings.Trim(host, "[]")); ip != nil {
		if strings.HasPrefix(host, "[") {
			return fmt.Sprintf("needs no brackets; write host: %s", ip)
		}
		if ip.To4() != nil && family == probe.FamilyIPv6 {
			return "is an IPv4 address, but ip_family is ipv6"
		}
		if ip.To4() == nil && family == probe.FamilyIPv4 {
			return "is an IPv6 address, but ip_family is ipv4"
		}
		return ""
	}
	if h, p, err := net.SplitHostPort(host); err == nil {
		return fmt.Sprintf("includes a port; write host: %s and port: %s", h, p)
	}
	if strings.Contains(host, ":") {
		return "is not a DNS name or IP address"
	}
	return ""
}

// dnsServerProblem checks a host:port resolver address.
func dnsServerProblem(s string) string {
	h, p, err := net.SplitHostPort(s)
	if err != nil {
		if net.ParseIP(s) != nil {
			return fmt.Sprintf("needs a port, e.g. %q", net.JoinHostPort(s, "53"))
		}
		return fmt.Sprintf("%q is not host:port, e.g. \"127.0.0.1:53\"", s)
	}
	if h == "" {
		return fmt.Sprintf("%q has no host, e.g. \"127.0.0.1:53\"", s)
	}
	if _, msg := parsePort(p); msg != "" {
		return fmt.Sprintf("port %q %s", p, msg)
	}
	return ""
}

// caFileProblem checks that path is a readable PEM bundle with at least one
// certificate, so that a typo fails at start and not as "tls_untrusted".
func caFileProblem(path string) string {
	data, err := readFileLimited(path, MaxCAFileBytes)
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			err = pe.Err // the path is already in the message
		}
		return fmt.Sprintf("cannot read %s: %v", path, err)
	}
	if !x509.NewCertPool().AppendCertsFromPEM(data) {
		return fmt.Sprintf("%s holds no PEM certificate (expected \"-----BEGIN CERTIFICATE-----\" blocks)", path)
	}
	return ""
}

// substitute replaces each ${name} with params[name] in one pass, so a
// value that itself holds "${" is taken literally.
func substitute(s string, params map[string]string) string {
	if params == nil {
		return s
	}
	var b strings.Builder
	for {
		i := strings.Index(s, "${")
		if i < 0 {
			b.WriteString(s)
			return b.String()
		}
		j := strings.IndexByte(s[i:], '}')
		if j < 0 {
			b.WriteString(s)
			return b.String()
		}
		name := s[i+2 : i+j]
		b.WriteString(s[:i])
		if v, ok := params[name]; ok {
			b.WriteString(v)
		} else {
			b.WriteString(s[i : i+j+1])
		}
		s = s[i+j+1:]
	}
}

// baseDir is where relative paths in a source resolve from; embedded and
// command-line sources have none (relative paths stay relative to the
// working directory).
func baseDir(source string) string {
	if source == "" || source == "command line" || strings.HasPrefix(source, "embedded:") {
		return ""
	}
	return filepath.Dir(source)
}

func resolvePath(dir, p string) string {
	if p == "" || dir == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(dir, p)
}

func lineOr(lines map[string]int, key string, fallback int) int {
	if l := lines[key]; l > 0 {
		return l
	}
	return fallback
}

func firstSet(vals ...string) string {
	for _, v := range vals {
		if v != "" {
			return v
		}
	}
	return ""
}

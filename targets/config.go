// Package targets turns configuration files and built-in profiles into
// validated, fully expanded probe checks. It knows nothing of sockets: every
// error it reports names a file and line, and what would be right.
package targets

import (
	"embed"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/connprobe/connprobe/probe"
)

// Defaults that apply when neither a check nor the defaults: section sets a value.
const (
	DefaultInterval = 60 * time.Second
	DefaultTimeout  = 5 * time.Second
	DefaultIPFamily = probe.FamilyBoth

	// MinInterval is the shortest interval accepted: a probe agent must not
	// hammer the vendors it watches.
	MinInterval = time.Second

	// MaxPortsPerCheck bounds port ranges: a typo like "1-65535" must not
	// turn one check into a port scan of a vendor.
	MaxPortsPerCheck = 1000

	// DefaultSource is the Source of the embedded quickstart configuration.
	DefaultSource = "embedded:quickstart.yml"

	// MaxSendBytes bounds a udp check's send/send_hex. With IPv6 and UDP
	// headers (48 bytes) and some tunnel overhead it still fits a 1500-byte
	// MTU: a fragmented datagram is often dropped by firewalls, which would
	// read as a filtered port.
	MaxSendBytes = 1400

	// DefaultNTPSamples is one query per run: public NTP servers ask
	// clients to poll rarely, and one reply shows reachability.
	DefaultNTPSamples = 1
	// MaxNTPSamples matches NTP's clock filter, which keeps eight samples;
	// more per run would only load the server.
	MaxNTPSamples = 8
	// DefaultMaxRootDistance is NTP's MAXDIST (RFC 5905): beyond it ntpd
	// and chrony refuse a server as unsynchronised, so connprobe does too.
	DefaultMaxRootDistance = 1500 * time.Millisecond
	// MaxRootDistanceLimit is NTP's MAXDISP: a larger threshold would
	// accept any server, however unsynchronised.
	MaxRootDistanceLimit = 16 * time.Second

	// DefaultHTTPMethod, DefaultHTTPPath, DefaultMaxRedirects and
	// DefaultExpectStatus (a function, so that no caller can change it) are
	// the http and https kinds' defaults, written into every such check so
	// that what runs is what the check shows. They match probe's own.
	DefaultHTTPMethod   = "GET"
	DefaultHTTPPath     = "/"
	DefaultMaxRedirects = 5
	// MaxRedirectsLimit bounds max_redirects: a longer chain is a loop or
	// a misconfiguration, and every hop costs the vendor a request.
	MaxRedirectsLimit = 20
)

// DefaultExpectStatus is the status range an http or https check accepts
// unless expect_status says otherwise: success and redirects.
func DefaultExpectStatus() [][2]int { return [][2]int{{200, 399}} }

// embedded holds the quickstart config and the built-in profile catalogue.
//
//go:embed examples/quickstart.yml profiles
var embedded embed.FS

// Config is one decoded configuration file. It is checked for structure
// when parsed; Expand validates the rest and expands it.
type Config struct {
	Source   string // file name used in errors, or DefaultSource
	Defaults Defaults
	TLS      TLSSpec      // global TLS defaults; ServerName is always empty
	Profiles []ProfileRef // profiles: built-in or directory profiles to enable
	Custom   []CheckSpec  // checks: the user's own checks

	// Proxy is the top-level proxy: (an http:// URL or "direct"), the
	// default of every check that connects out over TCP; "" when not set.
	Proxy     string
	proxyLine int

	kinds kindLookup // as decoder.kinds
}

// Defaults is the defaults: section. Zero values mean "not set".
type Defaults struct {
	Interval  time.Duration
	Timeout   time.Duration
	IPFamily  string
	DNSServer string
	lines     map[string]int
}

// TLSSpec is a tls: section, global or per check. Per check, each field set
// overrides the global one; an explicit empty expect_issuer: [] turns a
// global pin off for that check.
type TLSSpec struct {
	CAFile       string
	ServerName   string
	ExpectIssuer []string // nil: not set
	lines        map[string]int
}

// ProfileRef is one entry of the profiles: list.
type ProfileRef struct {
	Name       string
	Params     map[string]string
	line       int
	paramLines map[string]int
}

// CheckSpec is one check as written, in a config file or a profile. Host,
// Port, Ports, DNSServer, TLS.ServerName, SourcePort, Query and Proxy may hold
// "${param}" in profiles, which is why ports stay strings until expansion.
type CheckSpec struct {
	Name      string
	Kind      string
	Host      string
	Port      string   // "" when not set
	Ports     []string // each a port or a "low-high" range
	Essential *bool    // nil: not set (default true)
	Interval  time.Duration
	Timeout   time.Duration
	IPFamily  string
	DNSServer string
	TLS       TLSSpec

	// Transport is the protocol: key, the wire variant of kinds that have
	// several (Check.Transport); "" means the kind's default.
	Transport  string
	SourcePort string // "" when not set

	// The udp kind's request: exactly one of Payload and Send (from send or
	// send_hex); Query only with payload dns.
	Payload     string
	Send        []byte
	Query       string
	ExpectReply *bool // nil: not set (default true)

	NTP NTPSpec

	// Proxy is the proxy: key (an http:// URL or "direct"); "" when not set.
	// It may hold ${param} in profiles.
	Proxy string

	// Credentials (kinds ftp, smtp, smtps, imaps, pop3s): a user and where
	// its password is. PasswordFile is as written (resolved against the
	// file's directory when expanded); the password itself is never read
	// here.
	User         string
	PasswordFile string
	PasswordEnv  string

	FTP       FTPSpec
	HTTP      HTTPSpec
	Broadcast BroadcastSpec

	// Meta holds the keys only profile checks take: direction, level,
	// when, purpose and source. Zero in a config file's checks.
	Meta CheckMeta

	lines     map[string]int // key -> line; "" -> the entry itself
	portLines []int
	failed    bool // decoding it found errors: not expanded
}

// FTPSpec is the ftp: section of an ftp check. Zero values mean "not set".
type FTPSpec struct {
	ExplicitTLS      bool
	Path             string
	TrustPASVAddress bool
	lines            map[string]int
}

// HTTPSpec holds the http and https kinds' keys (method, path,
// expect_status, max_redirects, follow_redirects), which sit directly in
// the check. Zero values mean "not set".
type HTTPSpec struct {
	Method          string
	Path            string
	ExpectStatus    [][2]int // nil: not set
	MaxRedirects    int
	FollowRedirects *bool // nil: not set (default true)
}

// BroadcastSpec is the broadcast: section of a broadcast check. Zero
// values mean "not set".
type BroadcastSpec struct {
	Mode  string // auto, bind or packet
	lines map[string]int
}

// NTPSpec is the ntp: section of an ntp check. Zero values mean "not set".
type NTPSpec struct {
	Samples         int
	MaxRootDistance time.Duration
	lines           map[string]int
}

type paramField struct {
	key, value string
	line       int
}

// shown is the field's value as errors quote it: a proxy URL's password
// is masked.
func (f paramField) shown() string {
	if f.key == "proxy" {
		return strconv.Quote(maskProxy(f.value))
	}
	return strconv.Quote(f.value)
}

// paramFields are the fields that may reference params, with their lines.
func (c *CheckSpec) paramFields() []paramField {
	out := []paramField{
		{"host", c.Host, c.lines["host"]},
		{"port", c.Port, c.lines["port"]},
		{"dns_server", c.DNSServer, c.lines["dns_server"]},
		{"tls.server_name", c.TLS.ServerName, c.TLS.lines["server_name"]},
		{"source_port", c.SourcePort, c.lines["source_port"]},
		{"query", c.Query, c.lines["query"]},
		{"proxy", c.Proxy, c.lines["proxy"]},
	}
	for i, p := range c.Ports {
		out = append(out, paramField{"ports", p, c.portLines[i]})
	}
	return out
}

// Options carry what the command line adds to a config.
type Options struct {
	ProfilesDir string   // --profiles.dir: extra profiles, overriding built-ins of the same name
	Profiles    []string // --profile NAME (repeatable)
	Params      []string // --param PROFILE.KEY=VALUE (repeatable)
}

// Load reads and parses a configuration file; one larger than MaxFileBytes
// is refused before it is read.
func Load(path string) (*Config, error) {
	data, err := readLimited(path)
	var le *Error
	if errors.As(err, &le) {
		return nil, err
	}
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return Parse(path, data)
}

// Parse decodes a configuration; name is used in error messages and as the
// base for relative tls.ca_file paths.
func Parse(name string, data []byte) (*Config, error) {
	cfg, err := parse(name, data)
	if err != nil {
		return nil, err
	}
	return cfg, nil
}

// parse is Parse that also returns what was decoded when the file has
// errors (nil only when nothing could be: size, YAML syntax, empty), with
// the checks that had errors marked, so that the rest can still be judged.
func parse(name string, data []byte) (*Config, error) {
	if err := checkSize(name, data); err != nil {
		return nil, err
	}
	root, err := parseDoc(name, data)
	if err != nil {
		return nil, err
	}
	if root == nil {
		return nil, &Error{File: name, Msg: "the file is empty; it needs checks: or profiles: (see the quickstart example)"}
	}
	var errs errList
	d := &decoder{file: name, errs: &errs}
	cfg := d.config(root)
	if !errs.empty() {
		return cfg, errs.err()
	}
	return cfg, nil
}

// expandRest expands the checks of a config whose decoding found errors,
// leaving out those that had errors of their own, so that one run reports
// the errors of the whole file (up to the cap) rather than one kind of
// error per run. It returns the expansion's errors only.
func (c *Config) expandRest(opts Options) error {
	rest := *c
	rest.Custom = nil
	for _, s := range c.Custom {
		if !s.failed {
			rest.Custom = append(rest.Custom, s)
		}
	}
	if len(rest.Custom) == 0 && len(rest.Profiles) == 0 && len(opts.Profiles) == 0 {
		return nil // nothing left to judge; "nothing to probe" would mislead
	}
	_, err := rest.Expand(opts)
	return err
}

// Default returns the embedded quickstart configuration, used when no file
// is given so that the agent does something useful out of the box.
func Default() (*Config, error) {
	data, err := embedded.ReadFile("examples/quickstart.yml")
	if err != nil {
		return nil, err
	}
	return Parse(DefaultSource, data)
}

// Build loads the config at path (the embedded quickstart when path is ""
// and no --profile is given; an empty config when only profiles are given)
// and expands it into checks. Profile checks skipped for want of a param
// are left out; BuildPlan lists them.
func Build(path string, opts Options) ([]*probe.Check, *Config, error) {
	plan, err := BuildPlan(path, opts)
	if err != nil {
		var cfg *Config
		if plan != nil {
			cfg = plan.Config
		}
		return nil, cfg, err
	}
	return plan.Checks, plan.Config, nil
}

// BuildPlan is Build with the skipped profile checks. On an error in the
// checks, the returned Plan holds only the Config.
func BuildPlan(path string, opts Options) (*Plan, error) {
	var cfg *Config
	var err error
	switch {
	case path != "":
		var data []byte
		if data, err = readLimited(path); err != nil {
			var le *Error
			if !errors.As(err, &le) {
				err = fmt.Errorf("config: %w", err)
			}
			return nil, err
		}
		if cfg, err = parse(path, data); err != nil {
			if cfg != nil {
				err = joinErrors(err, cfg.expandRest(opts))
			}
			return nil, err
		}
	case len(opts.Profiles) == 0:
		cfg, err = Default()
	default:
		cfg = &Config{Source: "command line"}
	}
	if err != nil {
		return nil, err
	}
	plan, err := cfg.Expand(opts)
	if err != nil {
		return &Plan{Config: cfg}, err
	}
	return plan, nil
}

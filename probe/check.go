// Package probe does one attempt against one endpoint and classifies what it
// observed. It knows nothing of YAML, Prometheus or scheduling.
package probe

import (
	"context"
	"net"
	"reflect"
	"strconv"
	"time"
)

// IP families a check may ask for.
const (
	FamilyIPv4 = "ipv4"
	FamilyIPv6 = "ipv6"
	FamilyBoth = "both"
)

// Check is one fully expanded check: one kind against one host and port.
type Check struct {
	Profile string // built-in profile it came from; empty for custom checks
	Name    string
	Kind    string
	Host    string
	Port    int
	// Network is the transport-layer protocol, NetworkTCP or NetworkUDP
	// (the metrics' and output's "protocol"), derived from the kind and
	// Transport.
	Network string
	// Transport is the kind's wire variant where it has several (sip: udp,
	// tcp or tls; listen: tcp or udp), as the config's protocol: key names
	// it; empty for single-transport kinds.
	Transport string
	IPFamily  string // FamilyIPv4, FamilyIPv6 or FamilyBoth
	Essential bool
	Interval  time.Duration
	Timeout   time.Duration
	// DNSServer (host:port) is asked instead of the system resolver.
	DNSServer string

	// Range groups the checks expanded from one port range or list (its
	// spelling, e.g. "10000-10100"); empty for a single port. The scheduler
	// samples a range and metrics aggregate it.
	Range string

	// SourcePort binds the local port (some firewalls pass NTP only from
	// 123 to 123); 0 lets the system choose.
	SourcePort int

	// Proxy is an HTTP proxy URL (http://[user:pass@]host:port): TCP-based
	// kinds then reach the target through an HTTP CONNECT tunnel.
	Proxy string

	// The option structs below are pointers, nil where the check sets none
	// (read them through the Get methods, which read nil as the zero
	// value): inline, every check carried every kind's options, 368 of a
	// TCP check's 576 bytes (issue 10: 10,000 checks). A Check is not
	// modified once built, so copies may share them.

	// Credentials log in where a kind can (ftp, mail); nil: anonymous ftp,
	// no mail login. The secret itself is read at probe time, never stored.
	Credentials *Credentials

	TLS       *TLSOptions
	UDP       *UDPOptions
	NTP       *NTPOptions
	FTP       *FTPOptions
	HTTP      *HTTPOptions
	Broadcast *BroadcastOptions

	// Meta describes a profile check for people; nil for custom checks.
	// Nothing is probed by it.
	Meta *CheckMeta
}

// GetCredentials is c.Credentials, the zero value when nil.
func (c *Check) GetCredentials() Credentials { return deref(c.Credentials) }

// GetTLS is c.TLS, the zero value when nil.
func (c *Check) GetTLS() TLSOptions { return deref(c.TLS) }

// GetUDP is c.UDP, the zero value when nil.
func (c *Check) GetUDP() UDPOptions { return deref(c.UDP) }

// GetNTP is c.NTP, the zero value when nil.
func (c *Check) GetNTP() NTPOptions { return deref(c.NTP) }

// GetFTP is c.FTP, the zero value when nil.
func (c *Check) GetFTP() FTPOptions { return deref(c.FTP) }

// GetHTTP is c.HTTP, the zero value when nil.
func (c *Check) GetHTTP() HTTPOptions { return deref(c.HTTP) }

// GetBroadcast is c.Broadcast, the zero value when nil.
func (c *Check) GetBroadcast() BroadcastOptions { return deref(c.Broadcast) }

// GetMeta is c.Meta, the zero value when nil.
func (c *Check) GetMeta() CheckMeta { return deref(c.Meta) }

func deref[T any](p *T) T {
	if p == nil {
		var zero T
		return zero
	}
	return *p
}

// OptionsOf is o by pointer, nil when o is T's zero value: what a Check
// holds for options that say nothing.
func OptionsOf[T any](o T) *T {
	if reflect.ValueOf(o).IsZero() {
		return nil
	}
	return &o
}

// CheckMeta is what a profile says about a check: plain text for output.
type CheckMeta struct {
	Direction string // "out" or "in"
	Level     string // "essential", "recommended" or "conditional"
	Purpose   string // what the check proves
	Source    string // the document row (or note) it follows
}

// Credentials name a user and where its password is; the password never
// appears in a Check, a result, a metric or a log.
type Credentials struct {
	User         string
	PasswordFile string // read at probe time, trailing newline trimmed
	PasswordEnv  string // name of an environment variable
}

// FTPOptions tune the ftp kind.
type FTPOptions struct {
	// ExplicitTLS upgrades the control channel with AUTH TLS (FTPS) and
	// protects the data channel (PBSZ 0, PROT P).
	ExplicitTLS bool
	// Path is listed (a directory) or fetched (a file, bounded) over the data
	// channel; empty: a listing of the login directory.
	Path string
	// TrustPASVAddress connects to the address a PASV reply names instead of
	// the control connection's own address (off: a NATed or hostile server
	// cannot steer the probe elsewhere).
	TrustPASVAddress bool
}

// HTTPOptions tune the http and https kinds.
type HTTPOptions struct {
	Method string // default GET
	Path   string // default /
	// ExpectStatus lists accepted status ranges as [low, high] pairs;
	// default 200-399.
	ExpectStatus [][2]int
	// MaxRedirects is how many redirects are followed (0: the default, 5).
	MaxRedirects int
	// NoRedirects reports a redirect's own status instead of following it.
	NoRedirects bool
}

// UDPOptions shape the datagram of the udp kind.
type UDPOptions struct {
	// Payload is a built-in request that real servers answer: "echo" (a
	// random token expected back), "stun" (a Binding Request), "dns" (a query
	// for Query). Empty when Send is used.
	Payload string
	// Send is custom request bytes (from `send` or `send_hex`); any reply counts.
	Send []byte
	// Query is the name asked for by the dns payload ("." when empty).
	Query string
	// AcceptSilence makes silence (no reply and no ICMP error) count as up:
	// for ports where nothing answers. It proves only that nothing rejected
	// the datagram. (Config: expect_reply: false.)
	AcceptSilence bool
}

// BroadcastOptions tune the broadcast kind.
type BroadcastOptions struct {
	// Mode is how the port is watched: BroadcastAuto (also when empty),
	// BroadcastBind or BroadcastPacket; see broadcast.go.
	Mode string
}

// NTPOptions tune the ntp kind.
type NTPOptions struct {
	// Samples is how many queries one run sends (1..8); the reply with the
	// lowest round-trip time is kept.
	Samples int
	// MaxRootDistance is the largest root distance a usable server may have.
	MaxRootDistance time.Duration
}

// TLSOptions apply to every kind that speaks TLS.
type TLSOptions struct {
	// CAFile is a PEM bundle trusted in addition to the system roots.
	CAFile string
	// ServerName overrides the SNI and verification name (default: Host).
	ServerName string
	// ExpectIssuer pins the chain: a CA certificate in the verified chain must
	// have one of these subject CNs or Os, or the result is "intercepted".
	ExpectIssuer []string
}

// Target is one check bound to one resolved address.
type Target struct {
	Check  *Check
	Addr   net.IP
	Family string
}

// HostPort is the address:port string to dial; through a proxy (no
// address), the check's host:port, which the proxy resolves.
func (t Target) HostPort() string {
	if t.Addr == nil {
		return net.JoinHostPort(t.Check.Host, strconv.Itoa(t.Check.Port))
	}
	return net.JoinHostPort(t.Addr.String(), strconv.Itoa(t.Check.Port))
}

// ProberFunc does one attempt against one resolved address. It must honour
// ctx (which carries the check's deadline) in every dial and read, and return
// a classified Result; it never panics on hostile input.
type ProberFunc func(ctx context.Context, t Target) Result

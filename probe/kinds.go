package probe

import (
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"
)

// Networks: the transport-layer protocol a check's packets use.
const (
	NetworkTCP = "tcp"
	NetworkUDP = "udp"
)

// transportTLS is the transport variant that speaks TLS (sip over tls).
const transportTLS = "tls"

// OptionSet is a group of check options that only some kinds take. Its
// value is how configuration errors name the group, and, for the groups
// written as a section of their own (tls:, ntp:, ftp:, broadcast:), the
// section's key.
type OptionSet string

// The option sets. A kind lists those it takes in KindSpec.Options; the
// configuration refuses the keys of every other set.
const (
	// OptionsTLS is the tls: section (TLSOptions); see KindSpec.TLSOnlyWith.
	OptionsTLS OptionSet = "tls"
	// OptionsLogin is user, password_file and password_env (Credentials);
	// see KindSpec.PasswordOptional.
	OptionsLogin OptionSet = "login"
	// OptionsSourcePort is source_port (Check.SourcePort): only datagram
	// requesters, over UDP, bind one.
	OptionsSourcePort OptionSet = "source_port"
	// OptionsRequest is the datagram a check sends: payload, send, send_hex,
	// query and expect_reply (UDPOptions).
	OptionsRequest OptionSet = "request"
	// OptionsNTP is the ntp: section (NTPOptions).
	OptionsNTP OptionSet = "ntp"
	// OptionsFTP is the ftp: section (FTPOptions).
	OptionsFTP OptionSet = "ftp"
	// OptionsHTTP is method, path, expect_status, max_redirects and
	// follow_redirects (HTTPOptions).
	OptionsHTTP OptionSet = "http"
	// OptionsBroadcast is the broadcast: section (BroadcastOptions).
	OptionsBroadcast OptionSet = "broadcast"
)

// Condition is a setting a kind needs before an option applies, such as
// the ftp kind's explicit_tls before it speaks TLS.
type Condition struct {
	Text  string              // the setting as written in a config, for errors
	Holds func(c *Check) bool // whether c has it
}

// KindSpec describes a check kind: how it is probed, and what its checks
// accept in a configuration. The configuration asks the kind (Takes,
// TLSRefusal, SourcePortRefusal, ProxyRefusal, ...) and never names one.
type KindSpec struct {
	Name        string
	Network     string // NetworkTCP or NetworkUDP
	DefaultPort int    // 0: a port is required
	// Transports lists the values the config's `protocol` may take for kinds
	// with several wire variants, the default first; nil for one variant.
	Transports []string
	// TransportPorts overrides DefaultPort per transport (sip over tls: 5061).
	TransportPorts map[string]int
	// MinInterval is the default interval floor for kinds whose servers must
	// not be polled often (NTP); an interval set explicitly in config wins.
	MinInterval time.Duration
	// Local kinds watch this host (a listening port, broadcasts arriving)
	// and connect nowhere: their results say nothing of the way out, so the
	// site-wide uplink verdict leaves them out, and no proxy applies.
	Local bool
	// EnvProxy kinds follow HTTPS_PROXY, HTTP_PROXY and NO_PROXY when the
	// check sets no proxy, like any HTTP client.
	EnvProxy bool

	// Options are the option sets the kind's checks take; the keys of
	// every other set are refused.
	Options []OptionSet
	// TLSOnlyWith is what a kind that takes OptionsTLS needs before it
	// speaks TLS; nil: it always does. A kind with a "tls" transport speaks
	// TLS over that transport only, and needs no condition.
	TLSOnlyWith *Condition
	// TLSNote says how the kind speaks TLS where that is not obvious, for
	// the list of TLS kinds in errors ("STARTTLS").
	TLSNote string
	// PasswordOptional lets a kind that takes OptionsLogin log in with a
	// user and no password (some FTP servers ask for none).
	PasswordOptional bool

	Prober ProberFunc
}

// registered is the kind table: a new kind is one file in this package
// and one line here. The order is the order in which errors list kinds.
func registered() []KindSpec {
	return []KindSpec{
		{Name: "tcp", Network: NetworkTCP, Prober: probeTCP},
		{Name: "tls", Network: NetworkTCP, DefaultPort: 443, Options: []OptionSet{OptionsTLS}, Prober: probeTLS},
		{Name: "udp", Network: NetworkUDP, Options: []OptionSet{OptionsRequest, OptionsSourcePort}, Prober: probeUDP},
		{Name: "ntp", Network: NetworkUDP, DefaultPort: 123, MinInterval: ntpMinInterval, Options: []OptionSet{OptionsNTP, OptionsSourcePort}, Prober: probeNTP},
		{Name: "http", Network: NetworkTCP, DefaultPort: 80, Options: []OptionSet{OptionsHTTP, OptionsTLS}, TLSNote: "for redirects to https", EnvProxy: true, Prober: probeHTTP},
		{Name: "https", Network: NetworkTCP, DefaultPort: 443, Options: []OptionSet{OptionsHTTP, OptionsTLS}, EnvProxy: true, Prober: probeHTTP},
		{Name: "ssh", Network: NetworkTCP, DefaultPort: 22, Prober: probeSSH},
		{Name: "ftp", Network: NetworkTCP, DefaultPort: 21, Options: []OptionSet{OptionsFTP, OptionsLogin, OptionsTLS}, PasswordOptional: true, TLSOnlyWith: &Condition{Text: "ftp: {explicit_tls: true}", Holds: func(c *Check) bool { return c.GetFTP().ExplicitTLS }}, Prober: probeFTP},
		{Name: "smtp", Network: NetworkTCP, DefaultPort: 587, Options: []OptionSet{OptionsLogin, OptionsTLS}, TLSNote: "STARTTLS", Prober: probeSMTP},
		{Name: "smtps", Network: NetworkTCP, DefaultPort: 465, Options: []OptionSet{OptionsLogin, OptionsTLS}, Prober: probeSMTPS},
		{Name: "imaps", Network: NetworkTCP, DefaultPort: 993, Options: []OptionSet{OptionsLogin, OptionsTLS}, Prober: probeIMAPS},
		{Name: "pop3s", Network: NetworkTCP, DefaultPort: 995, Options: []OptionSet{OptionsLogin, OptionsTLS}, Prober: probePOP3S},
		{Name: "sip", Network: NetworkUDP, DefaultPort: sipPort, Transports: []string{NetworkUDP, NetworkTCP, transportTLS}, TransportPorts: map[string]int{transportTLS: sipsPort}, MinInterval: 5 * time.Minute, Options: []OptionSet{OptionsTLS, OptionsSourcePort}, Prober: probeSIP},
		{Name: "listen", Network: NetworkTCP, Transports: []string{NetworkTCP, NetworkUDP}, Local: true, Prober: probeListen},
		{Name: "broadcast", Network: NetworkUDP, Local: true, Options: []OptionSet{OptionsBroadcast}, Prober: probeBroadcast},
	}
}

// kindTable is built once; nothing changes it afterwards.
type kindTable struct {
	list   []KindSpec
	byName map[string]KindSpec
	names  []string // sorted
}

// The table is built at first use, once: a package-level initializer would
// form a cycle (probers consult the table).
var (
	kindsOnce  sync.Once
	kindsTable *kindTable
)

func kinds() *kindTable {
	kindsOnce.Do(func() {
		t := &kindTable{list: registered(), byName: map[string]KindSpec{}}
		for _, s := range t.list {
			t.byName[s.Name] = s
			t.names = append(t.names, s.Name)
		}
		sort.Strings(t.names)
		kindsTable = t
	})
	return kindsTable
}

// Kinds returns the registered check kinds by name (a copy: changing it
// changes nothing else).
func Kinds() map[string]KindSpec { return maps.Clone(kinds().byName) }

// kindList returns the registered kinds in registration order.
func kindList() []KindSpec { return slices.Clone(kinds().list) }

// KindNames lists the registered kinds, sorted.
func KindNames() []string { return slices.Clone(kinds().names) }

// LookupKind returns the spec of a kind or an error naming the known kinds.
func LookupKind(name string) (KindSpec, error) {
	s, ok := kinds().byName[name]
	if !ok {
		return KindSpec{}, fmt.Errorf("unknown check kind %q (known: %v)", name, KindNames())
	}
	return s, nil
}

// NetworkOf is the network (NetworkTCP or NetworkUDP) of a transport
// variant.
func NetworkOf(transport string) string {
	if transport == NetworkUDP {
		return NetworkUDP
	}
	return NetworkTCP
}

// Outbound reports whether checks of this kind connect out from this host.
func (k KindSpec) Outbound() bool { return !k.Local }

// Takes reports whether the kind's checks take the options of set.
func (k KindSpec) Takes(set OptionSet) bool { return slices.Contains(k.Options, set) }

// variant is the transport a check of this kind uses: the given one, or
// the kind's default; "" for a kind of one variant.
func (k KindSpec) variant(transport string) string {
	if transport == "" && len(k.Transports) > 0 {
		return k.Transports[0]
	}
	return transport
}

// NetworkOf is the network (NetworkTCP or NetworkUDP) of a check of this
// kind over transport ("" for the default).
func (k KindSpec) NetworkOf(transport string) string {
	if v := k.variant(transport); v != "" {
		return NetworkOf(v)
	}
	return k.Network
}

// transportsOver lists the kind's transports whose network is network.
func (k KindSpec) transportsOver(network string) []string {
	var out []string
	for _, t := range k.Transports {
		if NetworkOf(t) == network {
			out = append(out, t)
		}
	}
	return out
}

// Proxyable reports whether a check of this kind over transport connects
// out over TCP and so may go through an HTTP CONNECT proxy: UDP cannot be
// tunnelled, and a local kind connects to nothing.
func (k KindSpec) Proxyable(transport string) bool {
	return !k.Local && k.NetworkOf(transport) == NetworkTCP
}

// ProxyRefusal completes "proxy in <check>: " for a check of this kind
// over transport that cannot use a proxy.
func (k KindSpec) ProxyRefusal(transport string) string {
	switch tcp := k.transportsOver(NetworkTCP); {
	case k.Local && (k.Network == NetworkTCP || len(tcp) > 0):
		return fmt.Sprintf("kind %s waits for inbound connections and connects to nothing, so a proxy does not apply", k.Name)
	case len(tcp) > 0:
		return fmt.Sprintf("kind %s goes through a proxy only with protocol: %s, and this check uses %s", k.Name, orList(tcp), transport)
	}
	return fmt.Sprintf("kind %s does not connect over TCP, so it cannot go through an HTTP proxy", k.Name)
}

// BindsSourcePort reports whether a check of this kind over transport may
// set source_port: only the UDP requesters, because some firewalls pass
// NTP (and SIP) only from the well-known port. A TCP client's port is
// ephemeral by nature.
func (k KindSpec) BindsSourcePort(transport string) bool {
	return k.Takes(OptionsSourcePort) && k.NetworkOf(transport) == NetworkUDP
}

// SourcePortRefusal completes "source_port in <check>: " for a check that
// cannot bind its source port.
func (k KindSpec) SourcePortRefusal(transport string) string {
	if k.Takes(OptionsSourcePort) {
		return fmt.Sprintf("kind %s binds a source port only with protocol: %s, and this check uses %s",
			k.Name, orList(k.transportsOver(NetworkUDP)), transport)
	}
	var binders []string
	for _, s := range kinds().list {
		if !s.Takes(OptionsSourcePort) {
			continue
		}
		if udp := s.transportsOver(NetworkUDP); len(s.Transports) > len(udp) {
			binders = append(binders, fmt.Sprintf("%s (over %s)", s.Name, orList(udp)))
		} else {
			binders = append(binders, s.Name)
		}
	}
	return fmt.Sprintf("kind %s does not bind a source port; only kinds %s do", k.Name, andList(binders))
}

// TLSRefusal completes "tls in <check>: " for a check of this kind that
// does not speak TLS with its transport and options (c), or is "" when it
// does.
func (k KindSpec) TLSRefusal(c *Check) string {
	switch {
	case !k.Takes(OptionsTLS):
		return fmt.Sprintf("kind %s does not speak TLS; a check's tls: applies only to kinds %s", k.Name, TLSKindsNote())
	case slices.Contains(k.Transports, transportTLS):
		if v := k.variant(c.Transport); v != transportTLS {
			return fmt.Sprintf("kind %s speaks TLS only with protocol: %s, and this check uses %s", k.Name, transportTLS, v)
		}
	case k.TLSOnlyWith != nil && !k.TLSOnlyWith.Holds(c):
		return fmt.Sprintf("kind %s speaks TLS only with %s", k.Name, k.TLSOnlyWith.Text)
	}
	return ""
}

// TLSKindsNote lists, for errors, the kinds whose checks take tls:, with
// what each needs for it.
func TLSKindsNote() string {
	var out []string
	for _, s := range kinds().list {
		switch {
		case !s.Takes(OptionsTLS):
			continue
		case slices.Contains(s.Transports, transportTLS):
			out = append(out, fmt.Sprintf("%s (with protocol: %s)", s.Name, transportTLS))
		case s.TLSOnlyWith != nil:
			out = append(out, fmt.Sprintf("%s (with %s)", s.Name, s.TLSOnlyWith.Text))
		case s.TLSNote != "":
			out = append(out, fmt.Sprintf("%s (%s)", s.Name, s.TLSNote))
		default:
			out = append(out, s.Name)
		}
	}
	return andList(out)
}

// KindsTaking lists, in registration order, the kinds that take set.
func KindsTaking(set OptionSet) []string {
	var out []string
	for _, s := range kinds().list {
		if s.Takes(set) {
			out = append(out, s.Name)
		}
	}
	return out
}

// OnlyKindsTake completes "<key> in <check>: " for a key of set in a check
// of another kind: "only kind udp takes" or "only kinds http and https
// take".
func OnlyKindsTake(set OptionSet) string {
	names := KindsTaking(set)
	if len(names) == 1 {
		return "only kind " + names[0] + " takes"
	}
	return "only kinds " + andList(names) + " take"
}

// orList joins words as "a", "a or b", "a, b or c".
func orList(words []string) string { return joinList(words, " or ") }

// andList joins words as "a", "a and b", "a, b and c".
func andList(words []string) string { return joinList(words, " and ") }

func joinList(words []string, last string) string {
	if len(words) < 2 {
		return strings.Join(words, "")
	}
	return strings.Join(words[:len(words)-1], ", ") + last + words[len(words)-1]
}

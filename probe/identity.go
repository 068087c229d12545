package probe

import (
	"slices"
	"strconv"
	"strings"
)

// Key is everything that makes a check's series distinct: two checks with
// the same Key are the same check, and two checks whose Keys differ must
// never share a result, a schedule or a metric series. The transport is part
// of it (a sip check over udp and over tcp are different series), and so is
// range membership (a port probed alone and the same port as a member of a
// range are exported differently).
//
// Every other identity is derived from it: Check.ID (the results store, the
// scheduler's per-check state, the metrics' recorded series) and
// Check.GroupID (one schedule and one set of aggregates per range).
type Key struct {
	Profile   string
	Name      string
	Kind      string
	Transport string
	Host      string
	Port      int    // 0 in the key of a whole range (see Group)
	Range     string // the range's spelling; "" for a single port
}

// Key returns the check's identity.
func (c *Check) Key() Key {
	return Key{
		Profile:   c.Profile,
		Name:      c.Name,
		Kind:      c.Kind,
		Transport: c.Transport,
		Host:      c.Host,
		Port:      c.Port,
		Range:     c.Range,
	}
}

// Group is the key of the schedule and aggregates k belongs to: the key of
// its range, without the port, for a range member; k itself otherwise.
func (k Key) Group() Key {
	if k.Range != "" {
		k.Port = 0
	}
	return k
}

// keyEscaper keeps String unambiguous whatever a name or host holds.
var keyEscaper = strings.NewReplacer("%", "%25", "/", "%2F", "+", "%2B")

// String spells k for maps and logs:
// profile/name/kind[+transport]/host/port[/range=R]; a range's group key
// has "range=R" in place of the port. Fields are escaped, so different keys
// never spell the same.
func (k Key) String() string {
	kind := keyEscaper.Replace(k.Kind)
	if k.Transport != "" {
		kind += "+" + keyEscaper.Replace(k.Transport)
	}
	parts := []string{keyEscaper.Replace(k.Profile), keyEscaper.Replace(k.Name), kind, keyEscaper.Replace(k.Host)}
	if k.Port != 0 {
		parts = append(parts, strconv.Itoa(k.Port))
	}
	if k.Range != "" {
		parts = append(parts, "range="+keyEscaper.Replace(k.Range))
	}
	return strings.Join(parts, "/")
}

// ID identifies a check uniquely within one configuration: its Key, spelled.
func (c *Check) ID() string { return c.Key().String() }

// GroupID identifies what a check is scheduled and exported with: its range
// for a range member, the check itself (GroupID == ID) otherwise.
func (c *Check) GroupID() string { return c.Key().Group().String() }

// SameSettings reports whether c and o probe the same thing the same way:
// every field that reaches a prober, the resolver or the schedule is
// compared. A scheduler keeps a check's timer and state only while this
// holds. The fields that do not change a probe are listed in
// settingsIgnored, and a test fails when a field of Check is in neither
// place.
func (c *Check) SameSettings(o *Check) bool {
	return c.Key() == o.Key() &&
		c.Network == o.Network &&
		c.IPFamily == o.IPFamily &&
		c.Interval == o.Interval &&
		c.Timeout == o.Timeout &&
		c.DNSServer == o.DNSServer &&
		c.SourcePort == o.SourcePort &&
		c.Proxy == o.Proxy &&
		c.GetCredentials() == o.GetCredentials() &&
		sameTLS(c.GetTLS(), o.GetTLS()) &&
		sameUDP(c.GetUDP(), o.GetUDP()) &&
		c.GetNTP() == o.GetNTP() &&
		c.GetFTP() == o.GetFTP() &&
		sameHTTP(c.GetHTTP(), o.GetHTTP()) &&
		c.GetBroadcast() == o.GetBroadcast()
}

func sameTLS(a, b TLSOptions) bool {
	return a.CAFile == b.CAFile && a.ServerName == b.ServerName && slices.Equal(a.ExpectIssuer, b.ExpectIssuer)
}

func sameUDP(a, b UDPOptions) bool {
	return a.Payload == b.Payload && slices.Equal(a.Send, b.Send) && a.Query == b.Query && a.AcceptSilence == b.AcceptSilence
}

func sameHTTP(a, b HTTPOptions) bool {
	return a.Method == b.Method && a.Path == b.Path && slices.Equal(a.ExpectStatus, b.ExpectStatus) &&
		a.MaxRedirects == b.MaxRedirects && a.NoRedirects == b.NoRedirects
}

// settingsIgnored are the fields of Check that SameSettings leaves out
// because no probe and no schedule depends on them: they describe the check
// for people and alerts, and are read from the current Check at each use.
func settingsIgnored() []string { return []string{"Essential", "Meta"} }

package targets

import (
	"fmt"
	"maps"
	"slices"
	"sort"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v4"

	"github.com/connprobe/connprobe/probe"
)

// Keys that only some kinds take: protocol (the transport of kinds that
// have several), source_port, the udp kind's request and the ntp kind's
// options here; tls, proxy, credentials, ftp: and the http keys in
// options.go. They are checked as soon as the kind is known, while the file is
// parsed, so that a profile with a misplaced key fails when it is loaded
// and not only when someone enables it. Values that may hold ${param}
// (source_port, query) are checked again after substitution, in expand.

// udpPayloads are the built-in requests of the udp kind
// (probe.UDPOptions.Payload). A function, not a variable, so that no caller
// can change the list.
func udpPayloads() []string { return []string{"echo", "stun", "dns"} }

// udpRequestKeys are the keys of the udp kind's request; no other kind
// takes them.
func udpRequestKeys() []string {
	return []string{"payload", "send", "send_hex", "query", "expect_reply"}
}

// transport resolves a check's protocol: against its kind. variant becomes
// Check.Transport ("" for single-transport kinds), network Check.Network and
// port is the kind's default port for that variant (0: none). msg, when not
// "", completes "protocol in <check>: " and the other results hold the
// kind's defaults.
func transport(k probe.KindSpec, protocol string) (variant, network string, port int, msg string) {
	if len(k.Transports) == 0 {
		if protocol != "" && protocol != k.Network {
			msg = fmt.Sprintf("kind %s speaks only %s, got %q", k.Name, k.Network, protocol)
		}
		return "", k.Network, k.DefaultPort, msg
	}
	variant = k.Transports[0]
	switch {
	case protocol == "":
	case slices.Contains(k.Transports, protocol):
		variant = protocol
	default:
		msg = fmt.Sprintf("kind %s speaks %s (default %s), got %q", k.Name, orList(k.Transports), k.Transports[0], protocol)
	}
	port = k.DefaultPort
	if p, ok := k.TransportPorts[variant]; ok {
		port = p
	}
	return variant, probe.NetworkOf(variant), port, msg
}

// protocolHint follows a refused protocol: with what the user most likely
// meant. The generic kinds are named after their protocol (tcp, udp), so
// "kind: tcp, protocol: udp" means "kind: udp"; for any other kind the key
// itself is the misunderstanding. A kind with several transports has
// already listed them, which is hint enough.
func protocolHint(k probe.KindSpec, protocol string, kinds map[string]probe.KindSpec) string {
	if len(k.Transports) > 0 {
		return ""
	}
	if _, ok := kinds[protocol]; ok && k.Name == k.Network && protocol != k.Name {
		return fmt.Sprintf("; for %s use kind: %s", strings.ToUpper(protocol), protocol)
	}
	var multi []string
	for name, s := range kinds {
		if len(s.Transports) > 0 {
			multi = append(multi, name)
		}
	}
	if len(multi) == 0 {
		return "; remove protocol:"
	}
	sort.Strings(multi)
	return fmt.Sprintf("; protocol: chooses the transport only for kind %s", orList(multi))
}

// sections are the option sets written as a section of their own (ftp:
// {...}), with the keys each takes; the other sets' keys sit in the check.
func sections() map[probe.OptionSet][]string {
	return map[probe.OptionSet][]string{
		probe.OptionsNTP:       {"samples", "max_root_distance"},
		probe.OptionsFTP:       {"explicit_tls", "trust_pasv_address", "path"},
		probe.OptionsBroadcast: {"mode"},
	}
}

// refuseOthers reports each of the keys of set that a check sets while its
// kind does not take set, saying which kinds do.
func (d *decoder) refuseOthers(c *CheckSpec, k probe.KindSpec, set probe.OptionSet, keys []string, where string) {
	if k.Takes(set) {
		return
	}
	for _, key := range keys {
		if ln := c.lines[key]; ln > 0 {
			d.errorf(ln, "%s in %s: %s %s; this check is kind %s%s", key, where, probe.OnlyKindsTake(set), key, k.Name, sectionHint(k, key))
		}
	}
}

// sectionHint points a key that belongs in one of the kind's sections
// there: "; for kind ftp write ftp: {path: ...}".
func sectionHint(k probe.KindSpec, key string) string {
	for set, keys := range sections() {
		if k.Takes(set) && slices.Contains(keys, key) {
			return fmt.Sprintf("; for kind %s write %s: {%s: ...}", k.Name, set, key)
		}
	}
	return ""
}

// kindKeys checks the keys that depend on the kind, once it is known.
func (d *decoder) kindKeys(c *CheckSpec, k probe.KindSpec, where string) {
	variant, _, _, msg := transport(k, c.Transport)
	if msg != "" {
		d.errorf(c.lines["protocol"], "protocol in %s: %s%s", where, msg, protocolHint(k, c.Transport, probe.Kinds()))
	} else if ln := c.lines["source_port"]; ln > 0 && !k.BindsSourcePort(variant) {
		d.errorf(ln, "source_port in %s: %s", where, k.SourcePortRefusal(variant))
	}

	if k.Takes(probe.OptionsRequest) {
		d.udpRequest(c, k, where)
	}
	d.refuseOthers(c, k, probe.OptionsRequest, udpRequestKeys(), where)
	for _, set := range slices.Sorted(maps.Keys(sections())) {
		if ln := c.lines[string(set)]; ln > 0 && !k.Takes(set) {
			d.errorf(ln, "%s in %s: %s %s: options; this check is kind %s", set, where, probe.OnlyKindsTake(set), set, k.Name)
		}
	}
	d.optionKeys(c, k, variant, msg == "", where)
}

// udpRequest checks that a check that sends a datagram says what to send,
// in one way only.
func (d *decoder) udpRequest(c *CheckSpec, k probe.KindSpec, where string) {
	var set []string
	for _, key := range []string{"payload", "send", "send_hex"} {
		if c.lines[key] > 0 {
			set = append(set, key)
		}
	}
	sort.Slice(set, func(i, j int) bool { return c.lines[set[i]] < c.lines[set[j]] })
	if len(set) == 0 {
		d.errorf(c.lines[""], "%s of kind %s needs what to send: payload: (%s), send: (text) or send_hex: (bytes in hex)",
			where, k.Name, orList(udpPayloads()))
	}
	for _, key := range set[min(1, len(set)):] {
		d.errorf(c.lines[key], "%s sets both %s (line %d) and %s; use one of payload, send or send_hex",
			where, set[0], c.lines[set[0]], key)
	}

	ln := c.lines["query"]
	badPayload := c.lines["payload"] > 0 && c.Payload == "" // already reported
	if ln == 0 || c.Payload == "dns" || badPayload {
		return
	}
	detail := ""
	switch {
	case c.Payload != "":
		detail = ", and this check has payload: " + c.Payload
	case len(c.Send) > 0:
		detail = ", and this check sends its own bytes"
	}
	d.errorf(ln, "query in %s: only payload: dns sends a query%s", where, detail)
}

func (d *decoder) payload(v *yaml.Node, where string) string {
	if v.Kind != yaml.ScalarNode || isNull(v) {
		return d.str(v, "payload", where)
	}
	if slices.Contains(udpPayloads(), v.Value) {
		return v.Value
	}
	hint := suggest(v.Value, udpPayloads())
	if !strings.HasPrefix(hint, " (did you mean") {
		hint = ""
	}
	d.errorf(v.Line, "payload in %s must be %s, got %q%s", where, orList(udpPayloads()), v.Value, hint)
	return ""
}

// send takes the request as text; YAML's double-quoted escapes ("\r\n",
// "\x00") reach bytes that plain text cannot.
func (d *decoder) send(v *yaml.Node, where string) []byte {
	if v.Kind != yaml.ScalarNode || isNull(v) {
		d.str(v, "send", where)
		return nil
	}
	return d.sendSize([]byte(v.Value), v, "send", where)
}

func (d *decoder) sendHex(v *yaml.Node, where string) []byte {
	// An unquoted 0012 is a YAML number, but Value keeps the text as
	// written, leading zeros included, so it is read as hex all the same.
	if v.Kind != yaml.ScalarNode || isNull(v) {
		d.errorf(v.Line, "send_hex in %s must be a string of hex digits like \"0a0b 0c0d\", got %s", where, describe(v))
		return nil
	}
	b, msg := parseHex(v.Value)
	if msg != "" {
		d.errorf(v.Line, "send_hex in %s %s", where, msg)
		return nil
	}
	return d.sendSize(b, v, "send_hex", where)
}

func (d *decoder) sendSize(b []byte, v *yaml.Node, key, where string) []byte {
	switch {
	case len(b) == 0:
		d.errorf(v.Line, "%s in %s is empty; a request needs at least one byte (or use payload: echo)", key, where)
		return nil
	case len(b) > MaxSendBytes:
		d.errorf(v.Line, "%s in %s is %d bytes; at most %d, because a larger datagram may be fragmented and firewalls often drop fragments",
			key, where, len(b), MaxSendBytes)
		return nil
	}
	return b
}

// parseHex decodes hex digits, skipping white space between bytes so that
// long requests can be grouped ("0a0b 0c0d") or folded over lines. White
// space inside a byte is refused: "1 2 3 4" would otherwise silently become
// 12 34 when 01 02 03 04 was as likely meant. msg completes
// "send_hex in <check> ".
func parseHex(s string) (b []byte, msg string) {
	var digits []byte
	pos, prev := 0, rune(0)
	for _, r := range s {
		pos++
		switch {
		case r == ' ' || r == '\t' || r == '\n' || r == '\r':
			if len(digits)%2 != 0 {
				return nil, fmt.Sprintf("splits a byte with white space at character %d; write each byte as two hex digits, e.g. \"01 02\"", pos)
			}
		case '0' <= r && r <= '9' || 'a' <= r && r <= 'f' || 'A' <= r && r <= 'F':
			digits = append(digits, byte(r))
		default:
			hint := " (0-9, a-f; spaces are allowed between bytes)"
			if (r == 'x' || r == 'X') && prev == '0' {
				hint = "; write the digits without a 0x prefix"
			}
			return nil, fmt.Sprintf("holds %q at character %d, which is not a hex digit%s", r, pos, hint)
		}
		prev = r
	}
	switch {
	case len(digits) == 0:
		return nil, `is empty; write the bytes in hex, e.g. "0a0b 0c0d"`
	case len(digits)%2 != 0:
		return nil, fmt.Sprintf("has %d hex digits, an odd number; write two digits per byte", len(digits))
	}
	b = make([]byte, len(digits)/2)
	for i := range b {
		n, _ := strconv.ParseUint(string(digits[2*i:2*i+2]), 16, 8)
		b[i] = byte(n)
	}
	return b, ""
}

// queryProblem says what is wrong with the dns payload's query name
// (completing "<query> ..."), or "".
func queryProblem(q string) string {
	name := strings.TrimSuffix(q, ".")
	switch {
	case q == "":
		return `is empty; write a name such as example.com, or "." for the root`
	case q == ".":
		return ""
	case strings.Contains(q, "://") || strings.ContainsAny(q, " \t/@:"):
		return "is not a DNS name"
	case len(name) > 253:
		return "is longer than 253 characters, the limit of a DNS name"
	}
	for label := range strings.SplitSeq(name, ".") {
		if label == "" {
			return "has an empty label (a leading dot or two dots in a row)"
		}
		if len(label) > 63 {
			return fmt.Sprintf("has a label of %d characters; DNS allows at most 63", len(label))
		}
	}
	return ""
}

func (d *decoder) ntp(v *yaml.Node, where string) NTPSpec {
	n := NTPSpec{lines: map[string]int{"": v.Line}}
	in := "ntp of " + where
	d.fields(v, in, n.lines, map[string]func(v *yaml.Node){
		"samples": func(v *yaml.Node) { n.Samples = d.samples(v, in) },
		"max_root_distance": func(v *yaml.Node) {
			dist := d.duration(v, "max_root_distance", in)
			if dist > MaxRootDistanceLimit {
				d.errorf(v.Line, "max_root_distance in %s is %s; at most %s (NTP's maximum dispersion: a larger limit accepts any server)",
					in, dist, MaxRootDistanceLimit)
				dist = 0
			}
			n.MaxRootDistance = dist
		},
	})
	return n
}

// broadcast decodes a broadcast check's broadcast: section.
func (d *decoder) broadcast(v *yaml.Node, where string) BroadcastSpec {
	b := BroadcastSpec{lines: map[string]int{"": v.Line}}
	in := "broadcast of " + where
	d.fields(v, in, b.lines, map[string]func(v *yaml.Node){
		"mode": func(v *yaml.Node) {
			s := d.str(v, "mode", in)
			if v.Kind != yaml.ScalarNode || isNull(v) || slices.Contains(probe.BroadcastModes(), s) {
				b.Mode = s
				return
			}
			d.errorf(v.Line, "mode in %s must be %s (default %s), got %q%s",
				in, orList(probe.BroadcastModes()), probe.BroadcastAuto, s, closeTo(s, probe.BroadcastModes()))
		},
	})
	return b
}

func (d *decoder) samples(v *yaml.Node, where string) int {
	n, err := strconv.Atoi(v.Value)
	if v.Kind != yaml.ScalarNode || v.Tag != "!!int" || err != nil || n < 1 || n > MaxNTPSamples {
		d.errorf(v.Line, "samples in %s must be a whole number from 1 to %d, got %s", where, MaxNTPSamples, describe(v))
		return 0
	}
	return n
}

// orList joins words as "a", "a or b", "a, b or c".
func orList(words []string) string {
	if len(words) < 2 {
		return strings.Join(words, "")
	}
	return strings.Join(words[:len(words)-1], ", ") + " or " + words[len(words)-1]
}

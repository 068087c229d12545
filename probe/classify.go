package probe

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"syscall"
	"time"
)

// This file is the one place where errors become a Reason and a detail:
// every kind hands its raw errors to classify (through fail), proxy errors
// included (classifyProxy). A kind sets a Reason itself only for a verdict
// that is no error: what it observed (ok, an NTP reply unfit to set a clock,
// nothing arriving at a watched port) or its own internal error.

// errOrigin says what produced a queued socket error.
type errOrigin int

// Origins of an icmpError.
const (
	originOther errOrigin = iota
	originLocal           // the local stack itself (e.g. EMSGSIZE)
	originICMP
	originICMP6
)

// icmpError is one entry of a socket's error queue: an ICMP (ICMPv6) error and
// the address of the device that sent it.
type icmpError struct {
	Origin   errOrigin
	Type     uint8
	Code     uint8
	Errno    syscall.Errno
	Offender net.IP
}

// Describe names the ICMP message for people.
func (e *icmpError) Describe() string {
	switch e.Origin {
	case originICMP:
		switch e.Type {
		case 3:
			if n, ok := icmp4Unreach[e.Code]; ok {
				return "ICMP destination unreachable (" + n + ")"
			}
			return fmt.Sprintf("ICMP destination unreachable (code %d)", e.Code)
		case 11:
			return "ICMP time exceeded"
		}
		return fmt.Sprintf("ICMP type %d code %d", e.Type, e.Code)
	case originICMP6:
		switch e.Type {
		case 1:
			if n, ok := icmp6Unreach[e.Code]; ok {
				return "ICMPv6 destination unreachable (" + n + ")"
			}
			return fmt.Sprintf("ICMPv6 destination unreachable (code %d)", e.Code)
		case 3:
			return "ICMPv6 time exceeded"
		}
		return fmt.Sprintf("ICMPv6 type %d code %d", e.Type, e.Code)
	case originLocal:
		return "local error: " + e.Errno.Error()
	}
	return "socket error: " + e.Errno.Error()
}

// isPortUnreachable reports ICMP port unreachable (v4 type 3 code 3, v6 type 1 code 4).
func (e *icmpError) isPortUnreachable() bool {
	return (e.Origin == originICMP && e.Type == 3 && e.Code == 3) ||
		(e.Origin == originICMP6 && e.Type == 1 && e.Code == 4)
}

// isTimeExceeded reports ICMP time exceeded (v4 type 11, v6 type 3).
func (e *icmpError) isTimeExceeded() bool {
	return (e.Origin == originICMP && e.Type == 11) || (e.Origin == originICMP6 && e.Type == 3)
}

// isNoRoute reports the messages a stack sends itself when the next hop does
// not answer neighbour discovery (host/net unreachable, v6 address unreachable).
func (e *icmpError) isNoRoute() bool {
	return (e.Origin == originICMP && e.Type == 3 && (e.Code == 0 || e.Code == 1)) ||
		(e.Origin == originICMP6 && e.Type == 1 && (e.Code == 0 || e.Code == 3))
}

var icmp4Unreach = map[uint8]string{
	0: "net unreachable", 1: "host unreachable", 2: "protocol unreachable",
	3: "port unreachable", 4: "fragmentation needed", 5: "source route failed",
	6: "destination network unknown", 7: "destination host unknown",
	9: "network administratively prohibited", 10: "host administratively prohibited",
	11: "network unreachable for TOS", 12: "host unreachable for TOS",
	13: "communication administratively prohibited", 14: "host precedence violation",
	15: "precedence cutoff",
}

var icmp6Unreach = map[uint8]string{
	0: "no route to destination", 1: "communication administratively prohibited",
	2: "beyond scope of source address", 3: "address unreachable", 4: "port unreachable",
	5: "source address failed ingress/egress policy", 6: "reject route to destination",
}

// dialError is a failed connect or send, with the ICMP error that caused it
// when the socket's error queue held one.
type dialError struct {
	Op      string
	Err     error
	ICMP    *icmpError
	Timeout bool
	// Elapsed is how long after the first packet the error came; it tells a
	// router's failed neighbour resolution (about 3s) from a firewall (at once).
	Elapsed time.Duration
	// Resent is how many times the kernel sent the SYN again before the
	// connect ended; filled only for a path trace's TTL-limited connects.
	Resent int
}

func (e *dialError) Error() string { return e.Op + ": " + e.Err.Error() }
func (e *dialError) Unwrap() error { return e.Err }

// protocolError is an endpoint that answered, but not as the protocol requires.
type protocolError struct{ Msg string }

func (e *protocolError) Error() string { return e.Msg }

// configError is a check whose configuration cannot be used at probe time
// (e.g. an unreadable tls ca_file); it says nothing about the target.
type configError struct{ Err error }

func (e *configError) Error() string { return e.Err.Error() }
func (e *configError) Unwrap() error { return e.Err }

// silentError is an accepted connection that stayed silent where the server
// must speak first.
type silentError struct{ Waited time.Duration }

func (e *silentError) Error() string {
	return fmt.Sprintf("connection accepted but the server sent nothing in %s", e.Waited.Round(time.Millisecond))
}

// interceptedError is a TLS chain whose issuers do not match the pinned ones.
type interceptedError struct {
	Presented string
	Expected  []string
	Verified  bool
}

func (e *interceptedError) Error() string {
	how := "a chain that verifies"
	if !e.Verified {
		how = "an untrusted chain"
	}
	return fmt.Sprintf("TLS interception suspected: the server presented %s issued by %q, expected an issuer among %q",
		how, e.Presented, e.Expected)
}

// localAddrs lists this host's own addresses; overridable in tests.
type localAddrFunc func() []net.IP

func hostAddrs() []net.IP {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil
	}
	var ips []net.IP
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok {
			ips = append(ips, n.IP)
		}
	}
	return ips
}

func containsIP(ips []net.IP, ip net.IP) bool {
	for _, x := range ips {
		if x.Equal(ip) {
			return true
		}
	}
	return false
}

// classify turns an error from phase into a reason and a detail for people.
// target is the address that was probed.
func classify(err error, phase Phase, target net.IP) (Reason, string) {
	return classifyWith(err, phase, target, hostAddrs)
}

func classifyWith(err error, phase Phase, target net.IP, local localAddrFunc) (Reason, string) {
	if err == nil {
		return ReasonOK, ""
	}

	// First: a proxy error wraps dial errors whose peer is the proxy, not the target.
	var pxe *proxyError
	if errors.As(err, &pxe) {
		return classifyProxy(pxe, phase, local)
	}

	var de *dialError
	if errors.As(err, &de) && de.ICMP != nil && (de.ICMP.Origin == originICMP || de.ICMP.Origin == originICMP6) {
		return classifyICMP(de.ICMP, target, local, de.Elapsed)
	}

	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		switch {
		case dnsErr.IsNotFound && dnsErr.Err == errNoFamilyAddress:
			return ReasonDNS, fmt.Sprintf("name %q has no address of the requested family", dnsErr.Name)
		case dnsErr.IsNotFound:
			return ReasonDNS, fmt.Sprintf("name %q does not exist (NXDOMAIN or no address)", dnsErr.Name)
		case dnsErr.IsTimeout:
			return ReasonDNS, fmt.Sprintf("DNS lookup of %q timed out", dnsErr.Name)
		default:
			return ReasonDNS, fmt.Sprintf("DNS lookup of %q failed: %s", dnsErr.Name, dnsErr.Err)
		}
	}

	var ce *configError
	if errors.As(err, &ce) {
		return ReasonInternalError, ce.Error()
	}

	var ie *interceptedError
	if errors.As(err, &ie) {
		return ReasonIntercepted, ie.Error()
	}
	if r, d, ok := classifyTLS(err); ok {
		return r, d
	}
	var nr *noReplyError
	if errors.As(err, &nr) {
		return ReasonNoReply, nr.Error()
	}
	var se *silentError
	if errors.As(err, &se) {
		return ReasonProtocol, se.Error()
	}
	var pe *protocolError
	if errors.As(err, &pe) {
		return ReasonProtocol, pe.Msg
	}

	if isTimeout(err) {
		if phase == PhaseConnect {
			return ReasonTimeout, "no answer to the connection attempt (packets dropped)"
		}
		return ReasonTimeout, fmt.Sprintf("deadline reached in phase %s", phase)
	}

	var errno syscall.Errno
	if errors.As(err, &errno) {
		r, d := classifyErrno(errno, phase)
		if r == ReasonLocal {
			d += " (" + err.Error() + ")" // what this host was trying to do
		}
		return r, d
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		if phase == PhaseTLS {
			return ReasonTLSHandshake, "server closed the connection during the TLS handshake"
		}
		return ReasonProtocol, fmt.Sprintf("server closed the connection in phase %s", phase)
	}
	return ReasonProtocol, err.Error()
}

// arpFailureDelay is the least delay after which a host- or net-unreachable
// from a router reads as its neighbour resolution failing (Linux answers after
// 3 unanswered probes, about 3s) rather than a firewall rule, which answers at once.
const arpFailureDelay = 2500 * time.Millisecond

func classifyICMP(e *icmpError, target net.IP, local localAddrFunc, elapsed time.Duration) (Reason, string) {
	what := e.Describe()
	switch {
	case e.Offender == nil || e.Offender.IsUnspecified():
		return ReasonUnreachable, what + " (no offender address)"
	case e.isTimeExceeded():
		// Not a refusal: the packet died of old age in a routing loop.
		return ReasonUnreachable, fmt.Sprintf("%s from %s: a routing loop or a path longer than the TTL", what, e.Offender)
	case e.Offender.Equal(target):
		if e.isPortUnreachable() {
			return ReasonRefused, fmt.Sprintf("%s from the target %s: nothing listens on that port", what, e.Offender)
		}
		return ReasonRejected, fmt.Sprintf("%s from the target %s itself (its own firewall)", what, e.Offender)
	case containsIP(local(), e.Offender):
		if e.isNoRoute() {
			return ReasonUnreachable, fmt.Sprintf("%s reported by this host (%s): the next hop did not answer", what, e.Offender)
		}
		return ReasonLocal, fmt.Sprintf("%s from this host's own address %s: its own firewall rejected the packet", what, e.Offender)
	default:
		// The rule is "a device on the path said no", whatever the cause; the
		// detail says when the timing points at a dead host behind a router.
		d := fmt.Sprintf("%s from %s, a device on the path", what, e.Offender)
		if e.isNoRoute() && elapsed >= arpFailureDelay {
			d += fmt.Sprintf("; it came after %s, which is typical of a router whose neighbour (ARP/NDP) lookup "+
				"for the target went unanswered (target down or absent) rather than of a firewall rule", elapsed.Round(100*time.Millisecond))
		}
		return ReasonRejected, d
	}
}

func classifyErrno(errno syscall.Errno, phase Phase) (Reason, string) {
	switch errno {
	case syscall.ECONNREFUSED:
		if phase == PhaseConnect {
			return ReasonRefused, "connection refused (TCP reset from the target)"
		}
		return ReasonRefused, fmt.Sprintf("connection refused in phase %s", phase)
	case syscall.ENETUNREACH:
		return ReasonUnreachable, "network is unreachable: this host has no route to it"
	case syscall.EHOSTUNREACH:
		return ReasonUnreachable, "no route to host"
	case syscall.EPERM, syscall.EACCES:
		return ReasonLocal, fmt.Sprintf("this host refused to send (%s): a local firewall or policy", errno)
	case syscall.EMFILE, syscall.ENFILE:
		return ReasonLocal, "out of file descriptors on this host"
	case syscall.ENOBUFS, syscall.ENOMEM:
		return ReasonLocal, fmt.Sprintf("this host is out of buffers (%s)", errno)
	case syscall.EADDRNOTAVAIL, syscall.EADDRINUSE:
		return ReasonLocal, fmt.Sprintf("no usable local address or port (%s)", errno)
	case syscall.ECONNRESET, syscall.EPIPE:
		if phase == PhaseTLS {
			return ReasonTLSHandshake, "connection reset during the TLS handshake (a filtering firewall often does this)"
		}
		return ReasonProtocol, fmt.Sprintf("connection reset in phase %s", phase)
	case syscall.ETIMEDOUT:
		return ReasonTimeout, fmt.Sprintf("timed out in phase %s", phase)
	}
	return ReasonProtocol, fmt.Sprintf("%s in phase %s", errno.Error(), phase)
}

func classifyTLS(err error) (Reason, string, bool) {
	var uae x509.UnknownAuthorityError
	var he x509.HostnameError
	var cie x509.CertificateInvalidError
	var cve *tls.CertificateVerificationError
	issuer := ""
	if errors.As(err, &cve) && len(cve.UnverifiedCertificates) > 0 {
		issuer = fmt.Sprintf(" (presented certificate for %q issued by %q)",
			certName(cve.UnverifiedCertificates[0].Subject.CommonName, cve.UnverifiedCertificates[0].DNSNames),
			cve.UnverifiedCertificates[0].Issuer.String())
	}
	switch {
	case errors.As(err, &uae):
		return ReasonTLSUntrusted, "certificate signed by an unknown authority" + issuer, true
	case errors.As(err, &he):
		return ReasonTLSHostname, he.Error() + issuer, true
	case errors.As(err, &cie):
		if cie.Reason == x509.Expired {
			return ReasonTLSExpired, "certificate expired or not yet valid: " + cie.Detail + issuer, true
		}
		return ReasonTLSUntrusted, "certificate invalid: " + cie.Error() + issuer, true
	case cve != nil:
		return ReasonTLSUntrusted, cve.Error(), true
	}
	var rhe tls.RecordHeaderError
	if errors.As(err, &rhe) {
		return ReasonProtocol, fmt.Sprintf("the server does not speak TLS (it sent \"%s\")", printable(rhe.RecordHeader[:])), true
	}
	var ae tls.AlertError
	if errors.As(err, &ae) {
		return ReasonTLSHandshake, "the server aborted the handshake: " + ae.Error(), true
	}
	if strings.HasPrefix(err.Error(), "tls: ") {
		return ReasonTLSHandshake, err.Error(), true
	}
	return "", "", false
}

func certName(cn string, dns []string) string {
	if cn != "" {
		return cn
	}
	return strings.Join(dns, ",")
}

func isTimeout(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded) {
		return true
	}
	var de *dialError
	if errors.As(err, &de) && de.Timeout {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// printable renders bytes received from a peer safely for a detail line.
func printable(b []byte) string {
	const max = 64
	if len(b) > max {
		b = b[:max]
	}
	var sb strings.Builder
	for _, c := range b {
		if c >= 0x20 && c < 0x7f {
			sb.WriteByte(c)
		} else {
			fmt.Fprintf(&sb, "\\x%02x", c)
		}
	}
	return sb.String()
}

// classifyProxy is classify for proxy errors: a refusal is proxy_denied; a
// failure to reach or talk to the proxy is classified as if the proxy were
// the target (ICMP attribution compares the sender with the proxy's address)
// and the detail names the proxy, so that nobody reads it as news about the
// target.
func classifyProxy(e *proxyError, phase Phase, local localAddrFunc) (Reason, string) {
	if e.Status != 0 {
		return ReasonProxyDenied, e.Error()
	}
	if !e.Connected {
		r, d := classifyWith(e.Err, phase, e.ProxyIP, local)
		// The generic wording calls the peer "the target"; here it is the proxy.
		return r, "proxy " + e.Proxy + ": " + strings.ReplaceAll(d, "the target", "the proxy")
	}
	if isTimeout(e.Err) {
		return ReasonTimeout, fmt.Sprintf("proxy %s accepted the connection but did not answer %s %s before the deadline",
			e.Proxy, e.Method, e.Target)
	}
	if errors.Is(e.Err, io.EOF) || errors.Is(e.Err, io.ErrUnexpectedEOF) {
		return ReasonProtocol, fmt.Sprintf("proxy %s closed the connection instead of answering %s %s", e.Proxy, e.Method, e.Target)
	}
	r, d := classifyWith(e.Err, phase, e.ProxyIP, local)
	return r, fmt.Sprintf("proxy %s, %s %s: %s", e.Proxy, e.Method, e.Target, d)
}

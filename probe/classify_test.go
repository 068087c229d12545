package probe

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

// These rows only build error values; no packet is sent to any address here.

func TestClassifyICMP(t *testing.T) {
	target4 := net.ParseIP("192.0.2.10")
	router4 := net.ParseIP("198.51.100.1")
	self4 := net.ParseIP("10.9.8.7")
	target6 := net.ParseIP("2001:db8::10")
	router6 := net.ParseIP("2001:db8:ffff::1")
	self6 := net.ParseIP("fd00::7")
	local := func() []net.IP { return []net.IP{net.ParseIP("127.0.0.1"), self4, self6} }

	icmp4 := func(code uint8, off net.IP) error {
		return &dialError{Op: "connect", Err: os.NewSyscallError("connect", syscall.EHOSTUNREACH),
			ICMP: &icmpError{Origin: originICMP, Type: 3, Code: code, Errno: syscall.EHOSTUNREACH, Offender: off}}
	}
	icmp6 := func(code uint8, off net.IP) error {
		return &dialError{Op: "connect", Err: os.NewSyscallError("connect", syscall.EACCES),
			ICMP: &icmpError{Origin: originICMP6, Type: 1, Code: code, Errno: syscall.EACCES, Offender: off}}
	}
	for _, tc := range []struct {
		name   string
		err    error
		target net.IP
		reason Reason
		parts  []string
	}{
		{"v4 port unreachable from target", icmp4(3, target4), target4, ReasonRefused,
			[]string{"port unreachable", "192.0.2.10", "nothing listens"}},
		{"v4 admin prohibited from target", icmp4(13, target4), target4, ReasonRejected,
			[]string{"communication administratively prohibited", "from the target 192.0.2.10", "its own firewall"}},
		{"v4 host prohibited from target", icmp4(10, target4), target4, ReasonRejected,
			[]string{"host administratively prohibited"}},
		{"v4 admin prohibited from router", icmp4(13, router4), target4, ReasonRejected,
			[]string{"ICMP destination unreachable (communication administratively prohibited)", "198.51.100.1", "on the path"}},
		{"v4 port unreachable from router", icmp4(3, router4), target4, ReasonRejected,
			[]string{"port unreachable", "198.51.100.1"}},
		{"v4 admin prohibited from this host", icmp4(13, self4), target4, ReasonLocal,
			[]string{"10.9.8.7", "this host's own address", "firewall"}},
		{"v4 host unreachable from this host", icmp4(1, self4), target4, ReasonUnreachable,
			[]string{"host unreachable", "10.9.8.7", "next hop did not answer"}},
		{"v4 net unreachable from this host", icmp4(0, self4), target4, ReasonUnreachable,
			[]string{"net unreachable"}},
		{"v4 no offender", icmp4(1, nil), target4, ReasonUnreachable, []string{"no offender address"}},
		{"v4 unspecified offender", icmp4(13, net.IPv4zero), target4, ReasonUnreachable, []string{"no offender address"}},
		{"v4 unknown code", icmp4(8, router4), target4, ReasonRejected, []string{"(code 8)"}},
		{"v4 mapped target equals offender", icmp4(3, target4.To4()), target4.To16(), ReasonRefused, []string{"nothing listens"}},
		{"v4 time exceeded from router", &dialError{Op: "connect", Err: syscall.EHOSTUNREACH,
			ICMP: &icmpError{Origin: originICMP, Type: 11, Offender: router4}}, target4, ReasonUnreachable, []string{"ICMP time exceeded", "198.51.100.1", "routing loop"}},

		{"v6 port unreachable from target", icmp6(4, target6), target6, ReasonRefused,
			[]string{"ICMPv6 destination unreachable (port unreachable)", "2001:db8::10", "nothing listens"}},
		{"v6 admin prohibited from target", icmp6(1, target6), target6, ReasonRejected,
			[]string{"communication administratively prohibited", "its own firewall"}},
		{"v6 admin prohibited from router", icmp6(1, router6), target6, ReasonRejected,
			[]string{"ICMPv6 destination unreachable (communication administratively prohibited)", "2001:db8:ffff::1", "on the path"}},
		{"v6 reject route from router", icmp6(6, router6), target6, ReasonRejected, []string{"reject route to destination"}},
		{"v6 admin prohibited from this host", icmp6(1, self6), target6, ReasonLocal, []string{"fd00::7", "own firewall"}},
		{"v6 address unreachable from this host", icmp6(3, self6), target6, ReasonUnreachable,
			[]string{"address unreachable", "next hop did not answer"}},
		{"v6 no route from this host", icmp6(0, self6), target6, ReasonUnreachable, []string{"no route to destination"}},
		{"v6 no offender", icmp6(3, nil), target6, ReasonUnreachable, []string{"no offender address"}},

		{"soft ICMP error seen before the timeout", &dialError{Op: "connect", Err: context.DeadlineExceeded, Timeout: true,
			ICMP: &icmpError{Origin: originICMP, Type: 3, Code: 13, Offender: router4}}, target4, ReasonRejected,
			[]string{"198.51.100.1"}},
		{"local-origin queue entry falls back to errno", &dialError{Op: "connect", Err: os.NewSyscallError("connect", syscall.ENETUNREACH),
			ICMP: &icmpError{Origin: originLocal, Errno: syscall.ENETUNREACH}}, target4, ReasonUnreachable,
			[]string{"network is unreachable"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reason, detail := classifyWith(tc.err, PhaseConnect, tc.target, local)
			lbCheckClass(t, reason, detail, tc.reason, tc.parts)
		})
	}
}

func lbCheckClass(t *testing.T, reason Reason, detail string, want Reason, parts []string) {
	t.Helper()
	if reason != want {
		t.Errorf("reason %q, want %q (detail %q)", reason, want, detail)
	}
	if detail == "" {
		t.Error("empty detail")
	}
	for _, p := range parts {
		if !strings.Contains(detail, p) {
			t.Errorf("detail %q does not contain %q", detail, p)
		}
	}
}

func TestClassifyErrors(t *testing.T) {
	noLocal := func() []net.IP { return nil }
	sys := func(call string, e syscall.Errno) error {
		return &dialError{Op: call, Err: os.NewSyscallError(call, e)}
	}
	readErr := func(e error) error {
		return &net.OpError{Op: "read", Net: "tcp", Err: e}
	}
	for _, tc := range []struct {
		name   string
		err    error
		phase  Phase
		reason Reason
		parts  []string
	}{
		{"nil", nil, PhaseConnect, ReasonOK, nil},
		{"ECONNREFUSED connect", sys("connect", syscall.ECONNREFUSED), PhaseConnect, ReasonRefused, []string{"TCP reset from the target"}},
		{"ECONNREFUSED later", readErr(os.NewSyscallError("read", syscall.ECONNREFUSED)), PhaseBanner, ReasonRefused, []string{"phase banner"}},
		{"ENETUNREACH", sys("connect", syscall.ENETUNREACH), PhaseConnect, ReasonUnreachable, []string{"no route to it"}},
		{"EHOSTUNREACH", sys("connect", syscall.EHOSTUNREACH), PhaseConnect, ReasonUnreachable, []string{"no route to host"}},
		{"EPERM", sys("connect", syscall.EPERM), PhaseConnect, ReasonLocal, []string{"local firewall"}},
		{"EACCES", sys("connect", syscall.EACCES), PhaseConnect, ReasonLocal, []string{"permission denied"}},
		{"EMFILE", sys("socket", syscall.EMFILE), PhaseConnect, ReasonLocal, []string{"file descriptors"}},
		{"ENFILE", sys("socket", syscall.ENFILE), PhaseConnect, ReasonLocal, []string{"file descriptors"}},
		{"ENOBUFS", sys("connect", syscall.ENOBUFS), PhaseConnect, ReasonLocal, []string{"out of buffers"}},
		{"EADDRNOTAVAIL", sys("connect", syscall.EADDRNOTAVAIL), PhaseConnect, ReasonLocal, []string{"local address or port"}},
		{"ECONNRESET tls", readErr(os.NewSyscallError("read", syscall.ECONNRESET)), PhaseTLS, ReasonTLSHandshake,
			[]string{"reset during the TLS handshake"}},
		{"ECONNRESET banner", readErr(os.NewSyscallError("read", syscall.ECONNRESET)), PhaseBanner, ReasonProtocol,
			[]string{"connection reset in phase banner"}},
		{"EPIPE tls", readErr(os.NewSyscallError("write", syscall.EPIPE)), PhaseTLS, ReasonTLSHandshake, []string{"reset"}},
		{"unlisted errno", sys("connect", syscall.EPROTO), PhaseConnect, ReasonProtocol, []string{"phase connect"}},
		{"EOF tls", io.EOF, PhaseTLS, ReasonTLSHandshake, []string{"closed the connection during the TLS handshake"}},
		{"unexpected EOF banner", fmt.Errorf("reading greeting: %w", io.ErrUnexpectedEOF), PhaseBanner, ReasonProtocol,
			[]string{"closed the connection in phase banner"}},

		{"dial timeout", &dialError{Op: "connect", Err: context.DeadlineExceeded, Timeout: true}, PhaseConnect, ReasonTimeout,
			[]string{"no answer to the connection attempt"}},
		{"ETIMEDOUT connect", sys("connect", syscall.ETIMEDOUT), PhaseConnect, ReasonTimeout, []string{"no answer to the connection attempt"}},
		{"context deadline tls", context.DeadlineExceeded, PhaseTLS, ReasonTimeout, []string{"deadline reached in phase tls"}},
		{"read deadline banner", readErr(os.ErrDeadlineExceeded), PhaseBanner, ReasonTimeout, []string{"deadline reached in phase banner"}},

		{"NXDOMAIN", &net.DNSError{Err: "no such host", Name: "missing.example", IsNotFound: true}, PhaseDNS, ReasonDNS,
			[]string{`"missing.example"`, "does not exist"}},
		{"DNS timeout", &net.DNSError{Err: "i/o timeout", Name: "slow.example", IsTimeout: true}, PhaseDNS, ReasonDNS,
			[]string{`"slow.example"`, "timed out"}},
		{"DNS server failure", &net.DNSError{Err: "server misbehaving", Name: "broken.example", IsTemporary: true}, PhaseDNS, ReasonDNS,
			[]string{`"broken.example"`, "failed: server misbehaving"}},
		{"wrapped DNS error", fmt.Errorf("lookup: %w", &net.DNSError{Err: "no such host", Name: "x.example", IsNotFound: true}),
			PhaseDNS, ReasonDNS, []string{"does not exist"}},

		{"not TLS", tls.RecordHeaderError{Msg: "first record does not look like a TLS handshake", RecordHeader: [5]byte{'H', 'T', 'T', 'P', '/'}},
			PhaseTLS, ReasonProtocol, []string{`it sent "HTTP/"`}},
		{"not TLS, binary", tls.RecordHeaderError{RecordHeader: [5]byte{0, 1, 'a', 0x7f, '"'}},
			PhaseTLS, ReasonProtocol, []string{`x00`, `x01a`, `x7f`}},
		{"alert", fmt.Errorf("remote error: %w", tls.AlertError(40)), PhaseTLS, ReasonTLSHandshake, []string{"aborted the handshake"}},
		{"other tls error", errors.New("tls: server selected unsupported protocol version 300"), PhaseTLS, ReasonTLSHandshake,
			[]string{"unsupported protocol version"}},
		{"intercepted", &interceptedError{Presented: "Corp Inspection CA", Expected: []string{"Vendor CA"}, Verified: true},
			PhaseTLS, ReasonIntercepted, []string{`issued by "Corp Inspection CA"`, `"Vendor CA"`, "a chain that verifies"}},
		{"intercepted, untrusted", &interceptedError{Presented: "Corp Inspection CA", Expected: []string{"Vendor CA"}},
			PhaseTLS, ReasonIntercepted, []string{"an untrusted chain"}},
		{"silent server", &silentError{Waited: 1500000000}, PhaseBanner, ReasonProtocol, []string{"sent nothing in 1.5s"}},
		{"protocol error", &protocolError{Msg: "unexpected greeting \"xyz\""}, PhaseBanner, ReasonProtocol, []string{"unexpected greeting"}},
		{"anything else", errors.New("something odd"), PhaseData, ReasonProtocol, []string{"something odd"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reason, detail := classifyWith(tc.err, tc.phase, net.ParseIP("192.0.2.10"), noLocal)
			if tc.err == nil {
				if reason != ReasonOK || detail != "" {
					t.Errorf("nil error: %q %q", reason, detail)
				}
				return
			}
			lbCheckClass(t, reason, detail, tc.reason, tc.parts)
		})
	}
}

func TestICMPDescribe(t *testing.T) {
	for _, tc := range []struct {
		e    icmpError
		want string
	}{
		{icmpError{Origin: originICMP, Type: 3, Code: 13}, "ICMP destination unreachable (communication administratively prohibited)"},
		{icmpError{Origin: originICMP, Type: 3, Code: 99}, "ICMP destination unreachable (code 99)"},
		{icmpError{Origin: originICMP, Type: 11}, "ICMP time exceeded"},
		{icmpError{Origin: originICMP, Type: 5, Code: 1}, "ICMP type 5 code 1"},
		{icmpError{Origin: originICMP6, Type: 1, Code: 4}, "ICMPv6 destination unreachable (port unreachable)"},
		{icmpError{Origin: originICMP6, Type: 1, Code: 9}, "ICMPv6 destination unreachable (code 9)"},
		{icmpError{Origin: originICMP6, Type: 3}, "ICMPv6 time exceeded"},
		{icmpError{Origin: originLocal, Errno: syscall.EMSGSIZE}, "local error: message too long"},
		{icmpError{Origin: originOther, Errno: syscall.EIO}, "socket error: input/output error"},
	} {
		if got := tc.e.Describe(); got != tc.want {
			t.Errorf("%+v: %q, want %q", tc.e, got, tc.want)
		}
	}
}

func TestPrintable(t *testing.T) {
	if got := printable([]byte("HTTP/\r\n\x00")); got != `HTTP/\x0d\x0a\x00` {
		t.Errorf("printable = %q", got)
	}
	long := strings.Repeat("a", 100)
	if got := printable([]byte(long)); len(got) != 64 {
		t.Errorf("printable did not cut at 64 bytes: %d", len(got))
	}
}

func TestClassifyRouterUnreachableTimingHint(t *testing.T) {
	target := net.ParseIP("10.9.2.7")
	router := net.ParseIP("10.9.1.1")
	noLocal := func() []net.IP { return nil }
	icmp := &icmpError{Origin: originICMP, Type: 3, Code: 1, Offender: router}
	for _, tc := range []struct {
		elapsed  time.Duration
		wantHint bool
	}{
		{2 * time.Millisecond, false},   // a firewall REJECT answers at once
		{3100 * time.Millisecond, true}, // the router's ARP for the target went unanswered
	} {
		err := &dialError{Op: "connect", Err: syscall.EHOSTUNREACH, ICMP: icmp, Elapsed: tc.elapsed}
		reason, detail := classifyWith(err, PhaseConnect, target, noLocal)
		if reason != ReasonRejected {
			t.Errorf("elapsed %s: reason %s, want rejected (a device on the path said no)", tc.elapsed, reason)
		}
		if got := strings.Contains(detail, "neighbour (ARP/NDP) lookup"); got != tc.wantHint {
			t.Errorf("elapsed %s: hint present = %v, want %v; detail %q", tc.elapsed, got, tc.wantHint, detail)
		}
	}
	// Admin-prohibited is a firewall whatever the delay: no hint.
	slowAdmin := &dialError{Op: "connect", Err: syscall.EHOSTUNREACH, Elapsed: 4 * time.Second,
		ICMP: &icmpError{Origin: originICMP, Type: 3, Code: 13, Offender: router}}
	if _, d := classifyWith(slowAdmin, PhaseConnect, target, noLocal); strings.Contains(d, "ARP") {
		t.Errorf("admin-prohibited must not carry the ARP hint: %q", d)
	}
}

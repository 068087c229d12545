//go:build linux

package probe_test

import (
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/connprobe/connprobe/internal/netlab"
	"github.com/connprobe/connprobe/probe"
)

// The UDP kinds against real packets: each case builds its own netlab,
// installs the rule under test and runs probe.Run in the client namespace
// (see firewall_linux_test.go). The verdicts follow one rule for ICMP errors:
// port unreachable from the target is "refused", any ICMP error from another
// device is "rejected" naming it, and this host's own firewall is "local"
// (OUTPUT REJECT: an ICMP error from its own address; OUTPUT DROP: EPERM on
// send). Silence is "no_reply".

// udpFwEcho runs a UDP echo server on ip in the server namespace and returns
// an echo check against it.
func udpFwEcho(t *testing.T, lab *netlab.Lab, ip net.IP) *probe.Check {
	t.Helper()
	pc := lab.ListenUDP(lab.Server(), net.JoinHostPort(ip.String(), "0"))
	go func() {
		buf := make([]byte, 2048)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return // closed on cleanup
			}
			_, _ = pc.WriteTo(buf[:n], from)
		}
	}()
	return &probe.Check{
		Name: "fw", Kind: "udp", Host: ip.String(), Port: pc.LocalAddr().(*net.UDPAddr).Port,
		UDP: &probe.UDPOptions{Payload: "echo"},
	}
}

func udpFwEchoV4(t *testing.T, lab *netlab.Lab) (*probe.Check, string) {
	c := udpFwEcho(t, lab, lab.ServerIP())
	return c, strconv.Itoa(c.Port)
}

// udpFwRouterReject: the router's FORWARD chain rejects the datagram.
func udpFwRouterReject(rejectWith, icmpText string) fwCase {
	return fwCase{
		name: "router_reject_" + rejectWith,
		setup: func(t *testing.T, lab *netlab.Lab) *probe.Check {
			c, port := udpFwEchoV4(t, lab)
			lab.IPTables(lab.Router(), "-A", "FORWARD", "-p", "udp", "--dport", port, "-j", "REJECT", "--reject-with", rejectWith)
			return c
		},
		reason: probe.ReasonRejected, phase: probe.PhaseResponse,
		detail: func(lab *netlab.Lab) []string {
			return []string{icmpText + " from " + lab.RouterClientSideIP().String() + ", a device on the path"}
		},
		atMost: time.Second,
	}
}

func TestUDPFirewallReasons(t *testing.T) {
	if err := netlab.Available(); err != nil {
		t.Skipf("netlab: %v", err)
	}
	runFwCases(t, []fwCase{
		{
			name: "echo_ok",
			setup: func(t *testing.T, lab *netlab.Lab) *probe.Check {
				c, _ := udpFwEchoV4(t, lab)
				return c
			},
			up: true, reason: probe.ReasonOK, phase: probe.PhaseResponse,
			detail: func(*netlab.Lab) []string { return []string{"echo token returned"} },
			atMost: time.Second,
			check: func(t *testing.T, _ *netlab.Lab, r probe.Result) {
				if f := r.Facts.UDPFacts; f == nil || f.ReplyBytes != 47 || f.SourcePort == 0 {
					t.Errorf("facts = %+v, want 47 reply bytes and a source port", f)
				}
			},
		},
		{
			name:    "router_drop",
			timeout: 1500 * time.Millisecond,
			setup: func(t *testing.T, lab *netlab.Lab) *probe.Check {
				c, port := udpFwEchoV4(t, lab)
				lab.IPTables(lab.Router(), "-A", "FORWARD", "-p", "udp", "--dport", port, "-j", "DROP")
				return c
			},
			reason: probe.ReasonNoReply, phase: probe.PhaseResponse,
			// The wait is measured from the send, after the socket's setup:
			// on a loaded machine it reads 1.49x s, so only its order is checked
			// here (atLeast bounds it).
			detail:  func(*netlab.Lab) []string { return []string{"no reply and no ICMP error within 1.", "open|filtered"} },
			atLeast: 1400 * time.Millisecond, atMost: 3 * time.Second,
		},
		{
			// The replies are dropped, not the request: the service did get
			// it, but from here that is the same silence.
			name:    "router_drop_replies",
			timeout: 1500 * time.Millisecond,
			setup: func(t *testing.T, lab *netlab.Lab) *probe.Check {
				c, port := udpFwEchoV4(t, lab)
				lab.IPTables(lab.Router(), "-A", "FORWARD", "-p", "udp", "--sport", port, "-j", "DROP")
				return c
			},
			reason: probe.ReasonNoReply, phase: probe.PhaseResponse,
			atLeast: 1400 * time.Millisecond, atMost: 3 * time.Second,
		},
		{
			name:    "router_drop_accept_silence",
			timeout: 1500 * time.Millisecond,
			setup: func(t *testing.T, lab *netlab.Lab) *probe.Check {
				c, port := udpFwEchoV4(t, lab)
				own(&c.UDP).AcceptSilence = true
				lab.IPTables(lab.Router(), "-A", "FORWARD", "-p", "udp", "--dport", port, "-j", "DROP")
				return c
			},
			up: true, reason: probe.ReasonNoReply, phase: probe.PhaseResponse,
			detail: func(*netlab.Lab) []string {
				return []string{"proves only that nothing on the path rejected the datagram"}
			},
			atLeast: 1400 * time.Millisecond, atMost: 3 * time.Second,
		},
		{
			// An ICMP error is an answer, not silence: never up.
			name: "router_reject_accept_silence",
			setup: func(t *testing.T, lab *netlab.Lab) *probe.Check {
				c, port := udpFwEchoV4(t, lab)
				own(&c.UDP).AcceptSilence = true
				lab.IPTables(lab.Router(), "-A", "FORWARD", "-p", "udp", "--dport", port, "-j", "REJECT", "--reject-with", "icmp-admin-prohibited")
				return c
			},
			reason: probe.ReasonRejected, phase: probe.PhaseResponse,
			detail: func(lab *netlab.Lab) []string {
				return []string{"(communication administratively prohibited) from " + lab.RouterClientSideIP().String()}
			},
			atMost: time.Second,
		},
		udpFwRouterReject("icmp-port-unreachable", "(port unreachable)"),
		udpFwRouterReject("icmp-admin-prohibited", "(communication administratively prohibited)"),
		udpFwRouterReject("icmp-host-unreachable", "(host unreachable)"),
		udpFwRouterReject("icmp-net-unreachable", "(net unreachable)"),
		{
			name: "closed_port",
			setup: func(t *testing.T, lab *netlab.Lab) *probe.Check {
				return &probe.Check{Name: "fw", Kind: "udp", Host: lab.ServerIP().String(), Port: 9, UDP: &probe.UDPOptions{Payload: "echo"}}
			},
			reason: probe.ReasonRefused, phase: probe.PhaseResponse,
			detail: func(lab *netlab.Lab) []string {
				return []string{"(port unreachable) from the target " + lab.ServerIP().String(), "nothing listens"}
			},
			atMost: time.Second,
		},
		{
			name: "server_input_reject_admin_prohibited",
			setup: func(t *testing.T, lab *netlab.Lab) *probe.Check {
				c, port := udpFwEchoV4(t, lab)
				lab.IPTables(lab.Server(), "-A", "INPUT", "-p", "udp", "--dport", port, "-j", "REJECT", "--reject-with", "icmp-admin-prohibited")
				return c
			},
			reason: probe.ReasonRejected, phase: probe.PhaseResponse,
			detail: func(lab *netlab.Lab) []string {
				return []string{"from the target " + lab.ServerIP().String() + " itself (its own firewall)"}
			},
			atMost: time.Second,
		},
		{
			name: "client_output_reject_admin_prohibited",
			setup: func(t *testing.T, lab *netlab.Lab) *probe.Check {
				c, port := udpFwEchoV4(t, lab)
				lab.IPTables(lab.Client(), "-A", "OUTPUT", "-p", "udp", "--dport", port, "-j", "REJECT", "--reject-with", "icmp-admin-prohibited")
				return c
			},
			// The REJECT answers inside the send call: it fails at once.
			reason: probe.ReasonLocal, phase: probe.PhaseRequest,
			detail: func(lab *netlab.Lab) []string {
				return []string{"administratively prohibited", "this host's own address " + lab.ClientIP().String()}
			},
			atMost: time.Second,
		},
		{
			// Unlike TCP's SYN, a datagram dropped by this host's OUTPUT
			// chain fails the send itself with EPERM: "local", at once.
			name: "client_output_drop",
			setup: func(t *testing.T, lab *netlab.Lab) *probe.Check {
				c, port := udpFwEchoV4(t, lab)
				lab.IPTables(lab.Client(), "-A", "OUTPUT", "-p", "udp", "--dport", port, "-j", "DROP")
				return c
			},
			reason: probe.ReasonLocal, phase: probe.PhaseRequest,
			detail: func(*netlab.Lab) []string { return []string{"this host refused to send", "operation not permitted"} },
			atMost: time.Second,
		},
		{
			name: "ipv6_echo_ok",
			setup: func(t *testing.T, lab *netlab.Lab) *probe.Check {
				return udpFwEcho(t, lab, lab.ServerIP6())
			},
			up: true, reason: probe.ReasonOK, phase: probe.PhaseResponse,
			detail: func(*netlab.Lab) []string { return []string{"echo token returned"} },
			atMost: time.Second,
		},
		{
			name: "ipv6_router_reject_admin_prohibited",
			setup: func(t *testing.T, lab *netlab.Lab) *probe.Check {
				c := udpFwEcho(t, lab, lab.ServerIP6())
				lab.IP6Tables(lab.Router(), "-A", "FORWARD", "-p", "udp", "--dport", strconv.Itoa(c.Port), "-j", "REJECT", "--reject-with", "icmp6-adm-prohibited")
				return c
			},
			reason: probe.ReasonRejected, phase: probe.PhaseResponse,
			detail: func(lab *netlab.Lab) []string {
				return []string{"ICMPv6 destination unreachable (communication administratively prohibited) from " +
					lab.RouterClientSideIP6().String() + ", a device on the path"}
			},
			atMost: time.Second,
		},
		{
			name: "ipv6_closed_port",
			setup: func(t *testing.T, lab *netlab.Lab) *probe.Check {
				return &probe.Check{Name: "fw", Kind: "udp", Host: lab.ServerIP6().String(), Port: 9, UDP: &probe.UDPOptions{Payload: "echo"}}
			},
			reason: probe.ReasonRefused, phase: probe.PhaseResponse,
			detail: func(lab *netlab.Lab) []string {
				return []string{"ICMPv6 destination unreachable (port unreachable) from the target " + lab.ServerIP6().String()}
			},
			atMost: time.Second,
		},
	})
}

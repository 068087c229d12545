//go:build linux

package probe_test

import (
	"context"
	"net"
	"strconv"
	"strings"
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

// udpFwCase is one situation for a UDP kind and the verdict it must reach.
type udpFwCase struct {
	name    string
	timeout time.Duration // check timeout; 2s unless set
	setup   func(t *testing.T, lab *netlab.Lab) *probe.Check
	up      bool
	reason  probe.Reason
	phase   probe.Phase
	detail  func(lab *netlab.Lab) []string
	// atLeast/atMost bound how long the attempt may take: silence must wait
	// for the deadline, an ICMP error or EPERM is immediate.
	atLeast, atMost time.Duration
	// check inspects the result further (facts).
	check func(t *testing.T, lab *netlab.Lab, r probe.Result)
}

func runUDPFwCases(t *testing.T, cases []udpFwCase) {
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			lab := netlab.New(t)
			c := tc.setup(t, lab)
			c.Timeout = tc.timeout
			if c.Timeout == 0 {
				c.Timeout = 2 * time.Second
			}
			r := udpFwRun(t, lab, c)
			t.Logf("%s -> up=%v %s (phase %s, %s): %s", tc.name, r.Up, r.Reason, r.Phase, r.Duration.Round(time.Millisecond), r.Detail)
			if r.Up != tc.up || r.Reason != tc.reason || r.Phase != tc.phase {
				t.Errorf("got up=%v reason %q phase %q, want up=%v %q phase %q (detail: %s)",
					r.Up, r.Reason, r.Phase, tc.up, tc.reason, tc.phase, r.Detail)
			}
			if r.Address != c.Host {
				t.Errorf("Address = %q, want %q", r.Address, c.Host)
			}
			if tc.detail != nil {
				for _, want := range tc.detail(lab) {
					if !strings.Contains(r.Detail, want) {
						t.Errorf("detail %q does not contain %q", r.Detail, want)
					}
				}
			}
			if tc.atLeast > 0 && r.Duration < tc.atLeast {
				t.Errorf("took %s, want at least %s", r.Duration, tc.atLeast)
			}
			if tc.atMost > 0 && r.Duration > tc.atMost {
				t.Errorf("took %s, want at most %s", r.Duration, tc.atMost)
			}
			if tc.check != nil {
				tc.check(t, lab, r)
			}
		})
	}
}

// udpFwHelperTest is the helper process the UDP lab tests run in the client
// namespace. Unlike the firewall tests' helper it returns each kind's facts
// separately: Facts encodes NTP and UDP facts into one JSON object, and their
// shared names (source_port, rtt_seconds) would not decode back.
const udpFwHelperTest = "TestUDPNetlabHelperProcess"

type udpFwOutput struct {
	Result probe.Result
	NTP    *probe.NTPFacts
	UDP    *probe.UDPFacts
}

// TestUDPNetlabHelperProcess is not a test: it is the helper process that
// udpFwRun starts inside a lab's client namespace. It runs one probe.Run.
func TestUDPNetlabHelperProcess(t *testing.T) {
	var in fwHelperInput
	ok, err := netlab.HelperInput(&in)
	if !ok {
		t.Skip("helper process for the UDP netlab tests; runs only when they start it")
	}
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), in.Check.Timeout+5*time.Second)
	defer cancel()
	var out []udpFwOutput
	for _, r := range probe.Run(ctx, &in.Check) {
		out = append(out, udpFwOutput{Result: r, NTP: r.Facts.NTPFacts, UDP: r.Facts.UDPFacts})
	}
	if err := netlab.WriteHelperOutput(out); err != nil {
		t.Fatal(err)
	}
}

// udpFwRun runs c once from the lab's client namespace and returns its single
// result, facts included.
func udpFwRun(t *testing.T, lab *netlab.Lab, c *probe.Check) probe.Result {
	t.Helper()
	var out []udpFwOutput
	if err := lab.RunHelper(lab.Client(), udpFwHelperTest, fwHelperInput{Check: *c}, &out, c.Timeout+10*time.Second); err != nil {
		t.Fatal(err)
	}
	if len(out) != 1 {
		t.Fatalf("got %d results, want 1: %+v", len(out), out)
	}
	r := out[0].Result
	r.Facts = probe.Facts{NTPFacts: out[0].NTP, UDPFacts: out[0].UDP}
	return r
}

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
		UDP: probe.UDPOptions{Payload: "echo"},
	}
}

func udpFwEchoV4(t *testing.T, lab *netlab.Lab) (*probe.Check, string) {
	c := udpFwEcho(t, lab, lab.ServerIP())
	return c, strconv.Itoa(c.Port)
}

// udpFwRouterReject: the router's FORWARD chain rejects the datagram.
func udpFwRouterReject(rejectWith, icmpText string) udpFwCase {
	return udpFwCase{
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
	runUDPFwCases(t, []udpFwCase{
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
			detail:  func(*netlab.Lab) []string { return []string{"no reply and no ICMP error within 1.5", "open|filtered"} },
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
				c.UDP.AcceptSilence = true
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
				c.UDP.AcceptSilence = true
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
				return &probe.Check{Name: "fw", Kind: "udp", Host: lab.ServerIP().String(), Port: 9, UDP: probe.UDPOptions{Payload: "echo"}}
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
				return &probe.Check{Name: "fw", Kind: "udp", Host: lab.ServerIP6().String(), Port: 9, UDP: probe.UDPOptions{Payload: "echo"}}
			},
			reason: probe.ReasonRefused, phase: probe.PhaseResponse,
			detail: func(lab *netlab.Lab) []string {
				return []string{"ICMPv6 destination unreachable (port unreachable) from the target " + lab.ServerIP6().String()}
			},
			atMost: time.Second,
		},
	})
}

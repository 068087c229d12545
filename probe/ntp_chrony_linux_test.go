//go:build linux

package probe_test

import (
	"math"
	"net"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/connprobe/connprobe/internal/netlab"
	"github.com/connprobe/connprobe/probe"
)

// The ntp kind against chrony, a real NTP server, in the lab's server
// namespace: it serves its own clock at stratum 8 (the host's clock, so the
// offset is about 0). Each case has its own lab and chronyd.

const chronyStratum = 8

// chronyCheck starts chronyd on the server and returns an ntp check against it.
func chronyCheck(t *testing.T, lab *netlab.Lab) *probe.Check {
	t.Helper()
	lab.StartChronyd(lab.Server(), chronyStratum)
	return &probe.Check{Name: "fw", Kind: "ntp", Host: lab.ServerIP().String(), Port: 123}
}

// chronyRouterReject: the router rejects NTP with the given ICMP message.
func chronyRouterReject(rejectWith, icmpText string) fwCase {
	return fwCase{
		name: "router_reject_" + rejectWith,
		setup: func(t *testing.T, lab *netlab.Lab) *probe.Check {
			c := chronyCheck(t, lab)
			lab.IPTables(lab.Router(), "-A", "FORWARD", "-p", "udp", "--dport", "123", "-j", "REJECT", "--reject-with", rejectWith)
			return c
		},
		reason: probe.ReasonRejected, phase: probe.PhaseResponse,
		detail: func(lab *netlab.Lab) []string {
			return []string{icmpText + " from " + lab.RouterClientSideIP().String() + ", a device on the path"}
		},
		atMost: time.Second,
		check:  ntpNotReachable,
	}
}

func ntpNotReachable(t *testing.T, _ *netlab.Lab, r probe.Result) {
	t.Helper()
	f := r.Facts.NTPFacts
	if f == nil {
		t.Fatalf("no NTP facts: %+v", r)
	}
	if f.Reachable || f.Usable {
		t.Errorf("facts = %+v, want neither reachable nor usable", *f)
	}
}

// ntpUsable checks the facts of a good reply from chronyd.
func ntpUsable(t *testing.T, _ *netlab.Lab, r probe.Result) {
	t.Helper()
	f := r.Facts.NTPFacts
	if f == nil {
		t.Fatalf("no NTP facts: %+v", r)
	}
	if !f.Reachable || !f.Usable || f.Stratum != chronyStratum || f.Leap != 0 || f.KissCode != "" || f.SourcePort == 0 {
		t.Errorf("facts = %+v, want reachable, usable, stratum %d, leap 0, a source port", *f, chronyStratum)
	}
	// chronyd serves this very host's clock.
	if math.Abs(f.OffsetSeconds) > 0.05 {
		t.Errorf("offset %fs against a server on the same clock", f.OffsetSeconds)
	}
	if f.RTTSeconds <= 0 || f.RTTSeconds > 0.5 {
		t.Errorf("rtt %fs", f.RTTSeconds)
	}
	if r.Throttle != probe.ThrottleNone {
		t.Errorf("throttle %v", r.Throttle)
	}
}

func TestNTPChrony(t *testing.T) {
	if err := netlab.Available(); err != nil {
		t.Skipf("netlab: %v", err)
	}
	if _, err := netlab.ChronydPath(); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%v: CI must install it (.ci/run)", err)
		}
		t.Skipf("%v; the chrony tests need a real NTP server", err)
	}
	runFwCases(t, []fwCase{
		{
			name:   "ok",
			setup:  chronyCheck,
			up:     true,
			reason: probe.ReasonOK, phase: probe.PhaseResponse,
			detail: func(*netlab.Lab) []string { return []string{"stratum 8", "offset", "from source port"} },
			atMost: time.Second,
			check:  ntpUsable,
		},
		{
			name: "samples_3",
			setup: func(t *testing.T, lab *netlab.Lab) *probe.Check {
				c := chronyCheck(t, lab)
				own(&c.NTP).Samples = 3
				return c
			},
			up:     true,
			reason: probe.ReasonOK, phase: probe.PhaseResponse,
			detail: func(*netlab.Lab) []string { return []string{"stratum 8"} },
			atMost: time.Second,
			check:  ntpUsable,
		},
		{
			// A path that passes NTP only from port 123: the source_port
			// option gets through, the default source port does not.
			name: "source_port_123",
			setup: func(t *testing.T, lab *netlab.Lab) *probe.Check {
				c := chronyCheck(t, lab)
				c.SourcePort = 123
				lab.IPTables(lab.Router(), "-A", "FORWARD", "-p", "udp", "--dport", "123", "!", "--sport", "123", "-j", "DROP")
				return c
			},
			up:     true,
			reason: probe.ReasonOK, phase: probe.PhaseResponse,
			detail: func(*netlab.Lab) []string { return []string{"from source port 123"} },
			atMost: time.Second,
			check: func(t *testing.T, lab *netlab.Lab, r probe.Result) {
				ntpUsable(t, lab, r)
				if f := r.Facts.NTPFacts; f != nil && f.SourcePort != 123 {
					t.Errorf("source_port = %d, want 123", f.SourcePort)
				}
			},
		},
		{
			name:    "router_drop",
			timeout: 1500 * time.Millisecond,
			setup: func(t *testing.T, lab *netlab.Lab) *probe.Check {
				c := chronyCheck(t, lab)
				lab.IPTables(lab.Router(), "-A", "FORWARD", "-p", "udp", "--dport", "123", "-j", "DROP")
				return c
			},
			reason: probe.ReasonNoReply, phase: probe.PhaseResponse,
			detail:  func(*netlab.Lab) []string { return []string{"no reply and no ICMP error within "} },
			atLeast: 1400 * time.Millisecond, atMost: 3 * time.Second,
			check: ntpNotReachable,
		},
		chronyRouterReject("icmp-port-unreachable", "(port unreachable)"),
		chronyRouterReject("icmp-admin-prohibited", "(communication administratively prohibited)"),
		chronyRouterReject("icmp-host-unreachable", "(host unreachable)"),
		{
			name: "server_input_reject_port_unreachable",
			setup: func(t *testing.T, lab *netlab.Lab) *probe.Check {
				c := chronyCheck(t, lab)
				lab.IPTables(lab.Server(), "-A", "INPUT", "-p", "udp", "--dport", "123", "-j", "REJECT", "--reject-with", "icmp-port-unreachable")
				return c
			},
			reason: probe.ReasonRefused, phase: probe.PhaseResponse,
			detail: func(lab *netlab.Lab) []string {
				return []string{"(port unreachable) from the target " + lab.ServerIP().String()}
			},
			atMost: time.Second,
			check:  ntpNotReachable,
		},
		{
			name: "client_output_reject_admin_prohibited",
			setup: func(t *testing.T, lab *netlab.Lab) *probe.Check {
				c := chronyCheck(t, lab)
				lab.IPTables(lab.Client(), "-A", "OUTPUT", "-p", "udp", "--dport", "123", "-j", "REJECT", "--reject-with", "icmp-admin-prohibited")
				return c
			},
			reason: probe.ReasonLocal, phase: probe.PhaseRequest,
			detail: func(lab *netlab.Lab) []string {
				return []string{"administratively prohibited", "this host's own address " + lab.ClientIP().String()}
			},
			atMost: time.Second,
			check:  ntpNotReachable,
		},
		{
			name: "client_output_drop",
			setup: func(t *testing.T, lab *netlab.Lab) *probe.Check {
				c := chronyCheck(t, lab)
				lab.IPTables(lab.Client(), "-A", "OUTPUT", "-p", "udp", "--dport", "123", "-j", "DROP")
				return c
			},
			reason: probe.ReasonLocal, phase: probe.PhaseRequest,
			detail: func(*netlab.Lab) []string { return []string{"this host refused to send", "operation not permitted"} },
			atMost: time.Second,
			check:  ntpNotReachable,
		},
		{
			name: "chronyd_stopped",
			setup: func(t *testing.T, lab *netlab.Lab) *probe.Check {
				cmd := lab.StartChronyd(lab.Server(), chronyStratum)
				chronydStop(t, lab, cmd)
				return &probe.Check{Name: "fw", Kind: "ntp", Host: lab.ServerIP().String(), Port: 123}
			},
			reason: probe.ReasonRefused, phase: probe.PhaseResponse,
			detail: func(lab *netlab.Lab) []string {
				return []string{"(port unreachable) from the target " + lab.ServerIP().String(), "nothing listens"}
			},
			atMost: time.Second,
			check:  ntpNotReachable,
		},
	})
}

// chronydStop kills the chronyd this case started (its process group, which
// lab.Start created) and waits, bounded, until port 123 on the server is free.
func chronydStop(t *testing.T, lab *netlab.Lab, cmd *exec.Cmd) {
	t.Helper()
	if err := syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); err != nil {
		t.Fatalf("stopping chronyd (pid %d): %v", cmd.Process.Pid, err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		var pc net.PacketConn
		err := lab.Do(lab.Server(), func() error {
			var err error
			pc, err = net.ListenPacket("udp4", "0.0.0.0:123")
			return err
		})
		if err == nil {
			pc.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("port 123 still taken 5s after stopping chronyd: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

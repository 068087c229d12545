//go:build linux

package probe_test

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/connprobe/connprobe/internal/netlab"
	"github.com/connprobe/connprobe/probe"
)

// The path tracer against real routers: a two-router lab (client ->
// gateway -> ISP router -> server), a firewall rule somewhere on the path,
// one failing check traced from the client exactly as the agent does it. Each
// case asserts where the trace places the block (location, hop, address) and
// counts the packets the trace sent with an iptables counter on the client.

// traceCase is one block on the path and where the trace must place it.
type traceCase struct {
	name string
	kind string // "tcp" or "ntp"
	v6   bool
	// block installs the rule(s); fw is iptables or ip6tables for the family.
	block func(lab *netlab.Lab, fw func(ns string, rule ...string), proto, port string, v6 bool)
	loc   probe.PathLocation
	hop   int
	// addr is the address the path must name.
	addr     func(lab *netlab.Lab, v6 bool) string
	rejected bool
	// maxProbes bounds the packets this trace may send on this topology.
	maxProbes int
	// asUser runs the check and its trace as this unprivileged user.
	asUser *syscall.Credential
}

func rejectWith(v6 bool) string {
	if v6 {
		return "icmp6-adm-prohibited"
	}
	return "icmp-admin-prohibited"
}

func gatewayAddr(lab *netlab.Lab, v6 bool) string {
	if v6 {
		return lab.RouterClientSideIP6().String()
	}
	return lab.RouterClientSideIP().String()
}

func ispAddr(lab *netlab.Lab, v6 bool) string {
	if v6 {
		return lab.ISPGatewaySideIP6().String()
	}
	return lab.ISPGatewaySideIP().String()
}

func clientAddr(lab *netlab.Lab, v6 bool) string {
	if v6 {
		return lab.ClientIP6().String()
	}
	return lab.ClientIP().String()
}

func noAddr(*netlab.Lab, bool) string { return "" }

// Bounds per topology, with TraceTries per silent TTL: hops that answer
// take one probe (a retry only if an answer was lost), then
// TraceSilentHops silent TTLs take TraceTries each.
const (
	silentTail = probe.TraceSilentHops * probe.TraceTries
)

func traceScenarios() []traceCase {
	return []traceCase{
		{
			name: "gateway_drop",
			block: func(lab *netlab.Lab, fw func(string, ...string), proto, port string, _ bool) {
				fw(lab.Router(), "-A", "FORWARD", "-p", proto, "--dport", port, "-j", "DROP")
			},
			loc: probe.PathGateway, hop: 1, addr: gatewayAddr,
			maxProbes: 1*probe.TraceTries + silentTail,
		},
		{
			name: "gateway_reject",
			block: func(lab *netlab.Lab, fw func(string, ...string), proto, port string, v6 bool) {
				fw(lab.Router(), "-A", "FORWARD", "-p", proto, "--dport", port, "-j", "REJECT", "--reject-with", rejectWith(v6))
			},
			loc: probe.PathGateway, hop: 1, addr: gatewayAddr, rejected: true,
			maxProbes: 2 * probe.TraceTries,
		},
		{
			name: "isp_drop",
			block: func(lab *netlab.Lab, fw func(string, ...string), proto, port string, _ bool) {
				fw(lab.ISP(), "-A", "FORWARD", "-p", proto, "--dport", port, "-j", "DROP")
			},
			loc: probe.PathUpstream, hop: 2, addr: ispAddr,
			maxProbes: 2*probe.TraceTries + silentTail,
		},
		{
			name: "isp_reject",
			block: func(lab *netlab.Lab, fw func(string, ...string), proto, port string, v6 bool) {
				fw(lab.ISP(), "-A", "FORWARD", "-p", proto, "--dport", port, "-j", "REJECT", "--reject-with", rejectWith(v6))
			},
			loc: probe.PathUpstream, hop: 2, addr: ispAddr, rejected: true,
			maxProbes: 3 * probe.TraceTries,
		},
		{
			// TCP: the SYNs vanish silently (the kernel ignores the EPERM),
			// and the control probe tells this host from a silent gateway.
			// UDP: the send fails with EPERM at once.
			name: "host_drop",
			block: func(lab *netlab.Lab, fw func(string, ...string), proto, port string, _ bool) {
				fw(lab.Client(), "-A", "OUTPUT", "-p", proto, "--dport", port, "-j", "DROP")
			},
			loc: probe.PathThisHost, hop: 0, addr: clientAddr, // rejected depends on the transport
			maxProbes: silentTail + 1,
		},
		{
			name: "host_reject",
			block: func(lab *netlab.Lab, fw func(string, ...string), proto, port string, v6 bool) {
				fw(lab.Client(), "-A", "OUTPUT", "-p", proto, "--dport", port, "-j", "REJECT", "--reject-with", rejectWith(v6))
			},
			loc: probe.PathThisHost, hop: 0, addr: clientAddr, rejected: true,
			maxProbes: 1,
		},
	}
}

// dropTimeExceeded makes both routers send no ICMP time exceeded.
func dropTimeExceeded(lab *netlab.Lab, v6 bool) {
	for _, ns := range []string{lab.Router(), lab.ISP()} {
		if v6 {
			lab.IP6Tables(ns, "-A", "OUTPUT", "-p", "ipv6-icmp", "--icmpv6-type", "time-exceeded", "-j", "DROP")
		} else {
			lab.IPTables(ns, "-A", "OUTPUT", "-p", "icmp", "--icmp-type", "time-exceeded", "-j", "DROP")
		}
	}
}

func traceCases() []traceCase {
	var cases []traceCase
	for _, sc := range traceScenarios() {
		for _, kind := range []string{"tcp", "ntp"} {
			for _, v6 := range []bool{false, true} {
				c := sc
				c.kind, c.v6 = kind, v6
				c.name = fmt.Sprintf("%s/%s/%s", sc.name, kind, family(v6))
				if sc.name == "host_drop" {
					c.rejected = kind == "ntp" // EPERM on send; TCP's SYNs just vanish
					if kind == "ntp" {
						c.maxProbes = 1
					}
				}
				cases = append(cases, c)
			}
		}
	}
	for _, kind := range []string{"tcp", "ntp"} {
		for _, v6 := range []bool{false, true} {
			cases = append(cases, traceCase{
				// Routers that send no time exceeded and a silent drop: nothing
				// places the block, and the trace says so instead of guessing.
				name: fmt.Sprintf("no_time_exceeded/%s/%s", kind, family(v6)), kind: kind, v6: v6,
				block: func(lab *netlab.Lab, fw func(string, ...string), proto, port string, v6 bool) {
					dropTimeExceeded(lab, v6)
					fw(lab.ISP(), "-A", "FORWARD", "-p", proto, "--dport", port, "-j", "DROP")
				},
				loc: probe.PathUnknown, hop: 0, addr: noAddr,
				maxProbes: silentTail + 1,
			})
		}
	}
	// The same traces as an unprivileged user: no capability needed.
	for _, kind := range []string{"tcp", "ntp"} {
		for _, v6 := range []bool{false, true} {
			cases = append(cases, traceCase{
				name: fmt.Sprintf("unprivileged_isp_reject/%s/%s", kind, family(v6)), kind: kind, v6: v6,
				block: func(lab *netlab.Lab, fw func(string, ...string), proto, port string, v6 bool) {
					fw(lab.ISP(), "-A", "FORWARD", "-p", proto, "--dport", port, "-j", "REJECT", "--reject-with", rejectWith(v6))
				},
				loc: probe.PathUpstream, hop: 2, addr: ispAddr, rejected: true,
				maxProbes: 3 * probe.TraceTries,
				asUser:    netlab.Nobody,
			})
		}
	}
	return cases
}

func family(v6 bool) string {
	if v6 {
		return "v6"
	}
	return "v4"
}

// TestTracePathLab places blocks on a real two-router path, for a TCP kind
// and for ntp, over IPv4 and IPv6.
func TestTracePathLab(t *testing.T) {
	if err := netlab.Available(); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("netlab: %v (CI must run the path tracer lab)", err)
		}
		t.Skipf("netlab: %v", err)
	}
	// Most of a silent case is idle waiting for silence (5-6 s), so the
	// cases run side by side, more of them than -parallel (GOMAXPROCS) would
	// allow, bounded by traceLabConcurrency; each has its own lab.
	sem := make(chan struct{}, traceLabConcurrency)
	var wg sync.WaitGroup
	for _, tc := range traceCases() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			t.Run(tc.name, func(t *testing.T) { runTraceCase(t, tc) })
		}()
	}
	wg.Wait()
}

// traceLabConcurrency bounds the labs TestTracePathLab runs at once.
const traceLabConcurrency = 8

func runTraceCase(t *testing.T, tc traceCase) {
	lab := netlab.NewTwoRouter(t)
	server := lab.ServerIP()
	fw, ttlMatch := lab.IPTables, []string{"-m", "ttl", "--ttl-lt", "64"}
	control := []string{"-m", "ttl", "--ttl-eq", "1"}
	if tc.v6 {
		server = lab.ServerIP6()
		fw, ttlMatch = lab.IP6Tables, []string{"-m", "hl", "--hl-lt", "64"}
		control = []string{"-m", "hl", "--hl-eq", "1"}
	}
	c := &probe.Check{Name: "trace", Kind: tc.kind, Host: server.String(), Timeout: time.Second}
	proto := "tcp"
	switch tc.kind {
	case "tcp":
		ln := lab.ListenTCP(lab.Server(), net.JoinHostPort(server.String(), "0"))
		c.Port = ln.Addr().(*net.TCPAddr).Port
		c.Network = "tcp"
	case "ntp":
		c.Port, c.Network, proto = 123, "udp", "udp"
	}
	port := strconv.Itoa(c.Port)

	// Counters first, so they see every probe before any block: the trace's
	// probes are the packets to the target with a TTL below the default 64
	// (it never goes past TraceMaxHops), plus, for TCP, the TTL-1 UDP
	// control datagram to the same port number.
	count := func(tag, p string, match []string) {
		rule := append([]string{"-I", "OUTPUT", "1", "-d", server.String(), "-p", p, "--dport", port}, match...)
		fw(lab.Client(), append(rule, "-m", "comment", "--comment", tag)...)
	}
	count("trace-probes", proto, ttlMatch)
	if proto == "tcp" {
		count("trace-control", "udp", control)
	}
	tc.block(lab, fw, proto, port, tc.v6)

	var out []fwHelperOutput
	in := fwHelperInput{Check: *c, Trace: true}
	timeout := c.Timeout + probe.TraceBudget + 15*time.Second
	var err error
	if tc.asUser != nil {
		err = lab.RunHelperAs(lab.Client(), tc.asUser, fwHelperTest, in, &out, timeout)
	} else {
		err = lab.RunHelper(lab.Client(), fwHelperTest, in, &out, timeout)
	}
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != 1 {
		t.Fatalf("got %d results, want 1", len(out))
	}
	r := out[0].Result
	if tc.asUser != nil {
		if out[0].Euid != int(tc.asUser.Uid) || strings.Trim(out[0].CapEff, "0") != "" {
			t.Fatalf("helper ran with euid %d, CapEff %q; want uid %d and no capability", out[0].Euid, out[0].CapEff, tc.asUser.Uid)
		}
	}
	if r.Up {
		t.Fatalf("the check is up (%s): the block did not apply", r.Detail)
	}
	p := r.Path
	if p == nil {
		t.Fatalf("no path for %s/%s result (%s)", r.Reason, r.Phase, r.Detail)
	}
	t.Logf("%s: check %s (%s); path %s hop %d %q rejected=%v, %d probes in %.2fs; hops %+v; control %q; phrase %q",
		tc.name, r.Reason, r.Detail, p.Location, p.Hop, p.Address, p.Rejected, p.Probes, p.DurationSeconds, p.Hops, p.Control, p.Phrase())
	want := tc.addr(lab, tc.v6)
	if p.Location != tc.loc || p.Hop != tc.hop || p.Address != want || p.Rejected != tc.rejected {
		t.Errorf("path %s hop %d address %q rejected=%v, want %s hop %d address %q rejected=%v",
			p.Location, p.Hop, p.Address, p.Rejected, tc.loc, tc.hop, want, tc.rejected)
	}
	if p.Reached {
		t.Errorf("the trace reached the target through the block")
	}
	if len(p.Hops) == 0 {
		t.Errorf("no hops recorded")
	}
	for i, h := range p.Hops {
		if h.Hop != i+1 {
			t.Errorf("hops[%d].Hop = %d, want %d", i, h.Hop, i+1)
		}
	}

	// The packets the trace sent, counted by the client's own firewall.
	sent := readCounter(t, lab, tc.v6, "trace-probes")
	if proto == "tcp" {
		sent += readCounter(t, lab, tc.v6, "trace-control")
	}
	if sent != p.Probes {
		t.Errorf("iptables counted %d trace packets, the path says %d probes", sent, p.Probes)
	}
	// The bound is on the probes the trace makes; a SYN the kernel sent
	// again because this host stalled past TCP's 1s timeout (a loaded test
	// machine) is a packet too, counted by both, but not a probe.
	tries := sent - p.Retransmits
	if tries < 1 || tries > tc.maxProbes || tries > probe.MaxTraceProbes {
		t.Errorf("the trace made %d probes (%d packets, %d of them SYNs sent again), want 1..%d", tries, sent, p.Retransmits, tc.maxProbes)
	}
	if d := time.Duration(p.DurationSeconds * float64(time.Second)); d > probe.TraceBudget+time.Second {
		t.Errorf("the trace took %s, over its budget %s", d, probe.TraceBudget)
	}
	t.Logf("MEASURE %s packets=%d retransmits=%d seconds=%.3f", tc.name, sent, p.Retransmits, p.DurationSeconds)
}

// readCounter reads the packet count of the client's OUTPUT rule tagged tag.
func readCounter(t *testing.T, lab *netlab.Lab, v6 bool, tag string) int {
	t.Helper()
	cmd := "iptables"
	if v6 {
		cmd = "ip6tables"
	}
	out := lab.Exec(lab.Client(), cmd, "-w", "5", "-L", "OUTPUT", "-v", "-x", "-n")
	for _, line := range strings.Split(out, "\n") {
		if !strings.Contains(line, "/* "+tag+" */") {
			continue
		}
		f := strings.Fields(line)
		n, err := strconv.Atoi(f[0])
		if err != nil {
			t.Fatalf("counter line %q: %v", line, err)
		}
		return n
	}
	t.Fatalf("no counter %q in:\n%s", tag, out)
	return 0
}

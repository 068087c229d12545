//go:build linux

// Package netlab builds throw-away network labs out of Linux network
// namespaces for tests that need real packets, real routers and real
// firewalls: a client, a router and a server namespace joined by veth pairs.
//
//	client eth0 10.N.1.2/24 ── eth0 10.N.1.1 router eth1 10.N.2.1 ── eth0 10.N.2.2/24 server
//	       fd00:N:1::2/64         fd00:N:1::1         fd00:N:2::1        fd00:N:2::2/64
//
// The router forwards IPv4 and IPv6; client and server route everything via
// it.
//
// NewTwoRouter builds a longer path for tracing where traffic stops: the
// router becomes the client's gateway and an ISP router sits between it and
// the server (subnet 3 joins the two routers):
//
//	client 10.N.1.2 ── 10.N.1.1 gateway 10.N.3.1 ── 10.N.3.2 isp 10.N.2.1 ── 10.N.2.2 server
//	       fd00:N:1::2  fd00:N:1::1  fd00:N:3::1 ── fd00:N:3::2  fd00:N:2::1  fd00:N:2::2
//
// The gateway routes by default via the ISP router (deleting that route makes
// it answer net unreachable for everything beyond it); the ISP router knows
// the client subnet via the gateway. Every router answers TTL expiry (ICMP
// time exceeded), as Linux does by default. Every address lives only inside the lab's namespaces, so labs running in
// parallel never see each other or the host. Everything a lab creates
// (namespaces, listeners, processes) is removed in t.Cleanup, also when the
// test fails.
//
// A lab needs root (CAP_SYS_ADMIN and CAP_NET_ADMIN) and the ip, iptables and
// nft commands; without them New skips the test with a message saying why.
//
// Go code cannot run "inside" a namespace as a whole, because goroutines hop
// between OS threads. Sockets are different: one created on a thread that has
// joined a namespace keeps that namespace for its lifetime, which is what
// ListenTCP, ListenUDP and Do rely on. Code that dials by itself (the program
// under test) runs in a child process started in the namespace: see RunHelper.
package netlab

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// CommandTimeout bounds every command a lab runs for setup, rules and Exec.
const CommandTimeout = 15 * time.Second

// maxOutput bounds the output kept of any command or process.
const maxOutput = 1 << 20

// Lab is one client/router/server topology. Its methods fail the test (via
// t.Fatal) on errors, so they must be called from the test's goroutine.
type Lab struct {
	t      testing.TB
	id     string // random hex, part of every name
	net    byte   // N in 10.N.x.y and fd00:N:x::y
	client string
	router string
	isp    string // "" unless built by NewTwoRouter
	server string
}

// Device names inside the namespaces. They live in the lab's own namespaces,
// so they never collide with the host's or another lab's.
const (
	// ClientIf is the client's interface towards the router.
	ClientIf = "eth0"
	// RouterClientIf is the router's interface towards the client.
	RouterClientIf = "eth0"
	// RouterServerIf is the router's interface towards the server.
	RouterServerIf = "eth1"
	// ServerIf is the server's interface towards the router.
	ServerIf = "eth0"
	// ISPGatewayIf is the ISP router's interface towards the gateway (two-router lab).
	ISPGatewayIf = "eth0"
	// ISPServerIf is the ISP router's interface towards the server (two-router lab).
	ISPServerIf = "eth1"
)

// New creates a lab and registers its teardown with t.Cleanup. It skips the
// test (t.Skip) when the host cannot run one: not root, a missing tool, or
// namespaces that cannot be created (a container without CAP_SYS_ADMIN).
func New(t testing.TB) *Lab {
	t.Helper()
	return newLab(t, false)
}

// NewTwoRouter creates a lab whose client reaches the server through two
// routers, its gateway (Router) and an ISP router (ISP); see the package
// comment. It skips like New.
func NewTwoRouter(t testing.TB) *Lab {
	t.Helper()
	return newLab(t, true)
}

func newLab(t testing.TB, twoRouters bool) *Lab {
	t.Helper()
	l := newBareLab(t)
	id := l.id
	l.client = "nl" + id + "c" // 11 characters, under IFNAMSIZ like any device name
	l.router = "nl" + id + "r"
	l.server = "nl" + id + "s"
	if twoRouters {
		l.isp = "nl" + id + "i"
	}
	addNamespaces(t, l.namespaces())
	l.setup()
	return l
}

// newBareLab skips when no lab can run here, and otherwise returns a Lab
// with its random id and subnet number but no namespaces yet.
func newBareLab(t testing.TB) *Lab {
	t.Helper()
	if err := Available(); err != nil {
		t.Skipf("netlab: %v", err)
	}
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatalf("netlab: random name: %v", err)
	}
	return &Lab{t: t, id: hex.EncodeToString(b[:]), net: 10 + b[0]%200}
}

// addNamespaces creates the namespaces and deletes them on cleanup. It
// skips the test when the first cannot be created (no CAP_SYS_ADMIN).
func addNamespaces(t testing.TB, names []string) {
	t.Helper()
	for i, ns := range names {
		if out, err := runCmd(nil, "ip", "netns", "add", ns); err != nil {
			if i == 0 {
				t.Skipf("netlab: cannot create network namespaces here (%v: %s); needs CAP_SYS_ADMIN", err, out)
			}
			t.Fatalf("netlab: ip netns add %s: %v: %s", ns, err, out)
		}
		t.Cleanup(func() {
			if out, err := runCmd(nil, "ip", "netns", "del", ns); err != nil {
				t.Errorf("netlab: ip netns del %s: %v: %s", ns, err, out)
			}
		})
	}
}

// namespaces lists the lab's namespaces, client first.
func (l *Lab) namespaces() []string {
	if l.isp == "" {
		return []string{l.client, l.router, l.server}
	}
	return []string{l.client, l.router, l.isp, l.server}
}

// routers lists the namespaces that forward.
func (l *Lab) routers() []string {
	if l.isp == "" {
		return []string{l.router}
	}
	return []string{l.router, l.isp}
}

// Available reports why this host cannot run a lab, or nil when it can
// (as far as can be told before creating namespaces).
func Available() error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("network namespace tests need root (euid is %d); run the tests as root to include them", os.Geteuid())
	}
	var missing []string
	for _, tool := range []string{"ip", "iptables", "nft"} {
		if _, err := exec.LookPath(tool); err != nil {
			missing = append(missing, tool)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("missing %s (apt-get install iproute2 iptables nftables)", strings.Join(missing, ", "))
	}
	return nil
}

func (l *Lab) setup() {
	l.t.Helper()
	// DAD off before any link comes up, so IPv6 addresses are usable at once.
	for _, ns := range l.namespaces() {
		l.mustDo(ns, func() error {
			for _, s := range []string{"all", "default"} {
				if err := writeSysctl("net/ipv6/conf/"+s+"/accept_dad", "0"); err != nil {
					return err
				}
			}
			return nil
		})
	}
	for _, ns := range l.routers() {
		l.mustDo(ns, func() error {
			if err := writeSysctl("net/ipv4/ip_forward", "1"); err != nil {
				return err
			}
			return writeSysctl("net/ipv6/conf/all/forwarding", "1")
		})
	}
	steps := l.linkSteps()
	for _, s := range steps {
		if out, err := runCmd(nil, "ip", s...); err != nil {
			l.t.Fatalf("netlab: ip %s: %v: %s", strings.Join(s, " "), err, out)
		}
	}
	l.waitLinkLocal()
}

// linkSteps are the ip commands that build the topology.
func (l *Lab) linkSteps() [][]string {
	n := l.net
	if l.isp != "" {
		return l.twoRouterSteps()
	}
	return [][]string{
		{"-n", l.client, "link", "add", ClientIf, "type", "veth", "peer", "name", RouterClientIf, "netns", l.router},
		{"-n", l.router, "link", "add", RouterServerIf, "type", "veth", "peer", "name", ServerIf, "netns", l.server},

		{"-n", l.client, "addr", "add", fmt.Sprintf("10.%d.1.2/24", n), "dev", ClientIf},
		{"-n", l.client, "-6", "addr", "add", fmt.Sprintf("fd00:%d:1::2/64", n), "dev", ClientIf, "nodad"},
		{"-n", l.router, "addr", "add", fmt.Sprintf("10.%d.1.1/24", n), "dev", RouterClientIf},
		{"-n", l.router, "-6", "addr", "add", fmt.Sprintf("fd00:%d:1::1/64", n), "dev", RouterClientIf, "nodad"},
		{"-n", l.router, "addr", "add", fmt.Sprintf("10.%d.2.1/24", n), "dev", RouterServerIf},
		{"-n", l.router, "-6", "addr", "add", fmt.Sprintf("fd00:%d:2::1/64", n), "dev", RouterServerIf, "nodad"},
		{"-n", l.server, "addr", "add", fmt.Sprintf("10.%d.2.2/24", n), "dev", ServerIf},
		{"-n", l.server, "-6", "addr", "add", fmt.Sprintf("fd00:%d:2::2/64", n), "dev", ServerIf, "nodad"},

		{"-n", l.client, "link", "set", "lo", "up"},
		{"-n", l.router, "link", "set", "lo", "up"},
		{"-n", l.server, "link", "set", "lo", "up"},
		{"-n", l.client, "link", "set", ClientIf, "up"},
		{"-n", l.router, "link", "set", RouterClientIf, "up"},
		{"-n", l.router, "link", "set", RouterServerIf, "up"},
		{"-n", l.server, "link", "set", ServerIf, "up"},

		{"-n", l.client, "route", "add", "default", "via", l.RouterClientSideIP().String()},
		{"-n", l.client, "-6", "route", "add", "default", "via", l.RouterClientSideIP6().String()},
		{"-n", l.server, "route", "add", "default", "via", l.RouterServerSideIP().String()},
		{"-n", l.server, "-6", "route", "add", "default", "via", l.RouterServerSideIP6().String()},
	}
}

// twoRouterSteps build client - gateway - isp - server.
func (l *Lab) twoRouterSteps() [][]string {
	n := l.net
	return [][]string{
		{"-n", l.client, "link", "add", ClientIf, "type", "veth", "peer", "name", RouterClientIf, "netns", l.router},
		{"-n", l.router, "link", "add", RouterServerIf, "type", "veth", "peer", "name", ISPGatewayIf, "netns", l.isp},
		{"-n", l.isp, "link", "add", ISPServerIf, "type", "veth", "peer", "name", ServerIf, "netns", l.server},

		{"-n", l.client, "addr", "add", fmt.Sprintf("10.%d.1.2/24", n), "dev", ClientIf},
		{"-n", l.client, "-6", "addr", "add", fmt.Sprintf("fd00:%d:1::2/64", n), "dev", ClientIf, "nodad"},
		{"-n", l.router, "addr", "add", fmt.Sprintf("10.%d.1.1/24", n), "dev", RouterClientIf},
		{"-n", l.router, "-6", "addr", "add", fmt.Sprintf("fd00:%d:1::1/64", n), "dev", RouterClientIf, "nodad"},
		{"-n", l.router, "addr", "add", fmt.Sprintf("10.%d.3.1/24", n), "dev", RouterServerIf},
		{"-n", l.router, "-6", "addr", "add", fmt.Sprintf("fd00:%d:3::1/64", n), "dev", RouterServerIf, "nodad"},
		{"-n", l.isp, "addr", "add", fmt.Sprintf("10.%d.3.2/24", n), "dev", ISPGatewayIf},
		{"-n", l.isp, "-6", "addr", "add", fmt.Sprintf("fd00:%d:3::2/64", n), "dev", ISPGatewayIf, "nodad"},
		{"-n", l.isp, "addr", "add", fmt.Sprintf("10.%d.2.1/24", n), "dev", ISPServerIf},
		{"-n", l.isp, "-6", "addr", "add", fmt.Sprintf("fd00:%d:2::1/64", n), "dev", ISPServerIf, "nodad"},
		{"-n", l.server, "addr", "add", fmt.Sprintf("10.%d.2.2/24", n), "dev", ServerIf},
		{"-n", l.server, "-6", "addr", "add", fmt.Sprintf("fd00:%d:2::2/64", n), "dev", ServerIf, "nodad"},

		{"-n", l.client, "link", "set", "lo", "up"},
		{"-n", l.router, "link", "set", "lo", "up"},
		{"-n", l.isp, "link", "set", "lo", "up"},
		{"-n", l.server, "link", "set", "lo", "up"},
		{"-n", l.client, "link", "set", ClientIf, "up"},
		{"-n", l.router, "link", "set", RouterClientIf, "up"},
		{"-n", l.router, "link", "set", RouterServerIf, "up"},
		{"-n", l.isp, "link", "set", ISPGatewayIf, "up"},
		{"-n", l.isp, "link", "set", ISPServerIf, "up"},
		{"-n", l.server, "link", "set", ServerIf, "up"},

		{"-n", l.client, "route", "add", "default", "via", l.RouterClientSideIP().String()},
		{"-n", l.client, "-6", "route", "add", "default", "via", l.RouterClientSideIP6().String()},
		{"-n", l.router, "route", "add", "default", "via", l.ISPGatewaySideIP().String()},
		{"-n", l.router, "-6", "route", "add", "default", "via", l.ISPGatewaySideIP6().String()},
		{"-n", l.isp, "route", "add", fmt.Sprintf("10.%d.1.0/24", n), "via", l.RouterServerSideIP().String()},
		{"-n", l.isp, "-6", "route", "add", fmt.Sprintf("fd00:%d:1::/64", n), "via", l.RouterServerSideIP6().String()},
		{"-n", l.server, "route", "add", "default", "via", l.ISPServerSideIP().String()},
		{"-n", l.server, "-6", "route", "add", "default", "via", l.ISPServerSideIP6().String()},
	}
}

// waitLinkLocal waits until every lab interface has its IPv6 link-local
// address. The kernel adds it asynchronously once the link is operational,
// and until then a router cannot send neighbour solicitations for forwarded
// packets: the first IPv6 connection would lose a second to a retransmission.
func (l *Lab) waitLinkLocal() {
	l.t.Helper()
	ifs := [][2]string{
		{l.client, ClientIf}, {l.router, RouterClientIf}, {l.router, RouterServerIf}, {l.server, ServerIf},
	}
	if l.isp != "" {
		ifs = append(ifs, [2]string{l.isp, ISPGatewayIf}, [2]string{l.isp, ISPServerIf})
	}
	deadline := time.Now().Add(5 * time.Second)
	for _, x := range ifs {
		for {
			out, err := runCmd(nil, "ip", "-n", x[0], "-6", "-o", "addr", "show", "dev", x[1], "scope", "link")
			if err == nil && strings.Contains(out, "fe80::") && !strings.Contains(out, "tentative") {
				break
			}
			if time.Now().After(deadline) {
				l.t.Fatalf("netlab: %s in %s has no usable IPv6 link-local address after 5s: %v %s", x[1], x[0], err, out)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// Client, Router and Server name the lab's namespaces (for ip netns exec).
func (l *Lab) Client() string { return l.client }

// Router names the router namespace (in a two-router lab, the client's
// gateway).
func (l *Lab) Router() string { return l.router }

// ISP names the ISP router's namespace of a two-router lab; it fails the test
// in a lab built by New.
func (l *Lab) ISP() string {
	l.t.Helper()
	if l.isp == "" {
		l.t.Fatal("netlab: ISP() on a single-router lab; use NewTwoRouter")
	}
	return l.isp
}

// Server names the server namespace.
func (l *Lab) Server() string { return l.server }

func (l *Lab) v4(subnet, host int) net.IP {
	return net.IPv4(10, l.net, byte(subnet), byte(host)).To4()
}

func (l *Lab) v6(subnet, host int) net.IP {
	return net.ParseIP(fmt.Sprintf("fd00:%d:%d::%d", l.net, subnet, host))
}

// ClientIP is the client's IPv4 address.
func (l *Lab) ClientIP() net.IP { return l.v4(1, 2) }

// RouterClientSideIP is the router's IPv4 address on the client subnet (the
// client's default gateway, and the source of the router's ICMP errors to it).
func (l *Lab) RouterClientSideIP() net.IP { return l.v4(1, 1) }

// RouterServerSideIP is the router's IPv4 address on the server subnet; in a
// two-router lab, the gateway's address towards the ISP router.
func (l *Lab) RouterServerSideIP() net.IP {
	if l.isp != "" {
		return l.v4(3, 1)
	}
	return l.v4(2, 1)
}

// ISPGatewaySideIP is the ISP router's IPv4 address towards the gateway (the
// source of its ICMP errors to the client). Two-router lab only.
func (l *Lab) ISPGatewaySideIP() net.IP { return l.v4(3, 2) }

// ISPServerSideIP is the ISP router's IPv4 address on the server subnet.
// Two-router lab only.
func (l *Lab) ISPServerSideIP() net.IP { return l.v4(2, 1) }

// ISPGatewaySideIP6 is ISPGatewaySideIP for IPv6.
func (l *Lab) ISPGatewaySideIP6() net.IP { return l.v6(3, 2) }

// ISPServerSideIP6 is ISPServerSideIP for IPv6.
func (l *Lab) ISPServerSideIP6() net.IP { return l.v6(2, 1) }

// ServerIP is the server's IPv4 address.
func (l *Lab) ServerIP() net.IP { return l.v4(2, 2) }

// UnusedServerSubnetIP is an IPv4 address on the server subnet that no
// device holds: the router's ARP for it fails after about three seconds.
func (l *Lab) UnusedServerSubnetIP() net.IP { return l.v4(2, 99) }

// UnusedClientSubnetIP is an IPv4 address on the client subnet that no device
// holds: the client's own ARP for it fails after about three seconds.
func (l *Lab) UnusedClientSubnetIP() net.IP { return l.v4(1, 99) }

// ClientIP6 is the client's IPv6 (ULA) address.
func (l *Lab) ClientIP6() net.IP { return l.v6(1, 2) }

// RouterClientSideIP6 is the router's IPv6 address on the client subnet.
func (l *Lab) RouterClientSideIP6() net.IP { return l.v6(1, 1) }

// RouterServerSideIP6 is the router's IPv6 address on the server subnet; in a
// two-router lab, the gateway's address towards the ISP router.
func (l *Lab) RouterServerSideIP6() net.IP {
	if l.isp != "" {
		return l.v6(3, 1)
	}
	return l.v6(2, 1)
}

// ServerIP6 is the server's IPv6 (ULA) address.
func (l *Lab) ServerIP6() net.IP { return l.v6(2, 2) }

// Exec runs a command inside namespace ns (ip netns exec) and returns its
// combined output; it fails the test when the command fails.
func (l *Lab) Exec(ns string, args ...string) string {
	l.t.Helper()
	out, err := l.TryExec(ns, args...)
	if err != nil {
		l.t.Fatalf("netlab: in %s: %s: %v: %s", ns, strings.Join(args, " "), err, out)
	}
	return out
}

// TryExec is Exec that returns the error instead of failing the test.
func (l *Lab) TryExec(ns string, args ...string) (string, error) {
	return runCmd(nil, "ip", append([]string{"netns", "exec", ns}, args...)...)
}

// IPTables adds one iptables rule (or runs any iptables command) in ns, e.g.
// lab.IPTables(lab.Router(), "-A", "FORWARD", "-p", "tcp", "-j", "DROP").
// Use FORWARD on the router, OUTPUT on the client and INPUT on the server.
func (l *Lab) IPTables(ns string, rule ...string) {
	l.t.Helper()
	l.Exec(ns, append([]string{"iptables", "-w", "5"}, rule...)...)
}

// IP6Tables is IPTables for IPv6; it skips the test when ip6tables is missing.
func (l *Lab) IP6Tables(ns string, rule ...string) {
	l.t.Helper()
	if _, err := exec.LookPath("ip6tables"); err != nil {
		l.t.Skip("netlab: ip6tables is missing (apt-get install iptables)")
	}
	l.Exec(ns, append([]string{"ip6tables", "-w", "5"}, rule...)...)
}

// NFT loads an nftables ruleset (nft -f syntax) in ns, e.g.
//
//	table ip f { chain fwd { type filter hook forward priority 0; tcp dport 80 drop; } }
func (l *Lab) NFT(ns, ruleset string) {
	l.t.Helper()
	out, err := runCmd(strings.NewReader(ruleset), "ip", "netns", "exec", ns, "nft", "-f", "-")
	if err != nil {
		l.t.Fatalf("netlab: nft in %s: %v: %s\nruleset:\n%s", ns, err, out, ruleset)
	}
}

// Flush removes every firewall rule in ns (iptables, ip6tables and nftables),
// so a lab can be reused between cases.
func (l *Lab) Flush(ns string) {
	l.t.Helper()
	// iptables-nft keeps its tables in nftables, so this covers both; the
	// legacy backends are flushed explicitly in case they are the ones in use.
	l.Exec(ns, "nft", "flush", "ruleset")
	l.Exec(ns, "iptables", "-w", "5", "-F")
	if _, err := exec.LookPath("ip6tables"); err == nil {
		l.Exec(ns, "ip6tables", "-w", "5", "-F")
	}
}

// Do runs fn on an OS thread that has joined namespace ns. Sockets fn creates
// stay in ns after Do returns; anything else fn does (dialing later from
// another goroutine, for instance) does not.
func (l *Lab) Do(ns string, fn func() error) error {
	return inNetns(ns, fn)
}

func (l *Lab) mustDo(ns string, fn func() error) {
	l.t.Helper()
	if err := l.Do(ns, fn); err != nil {
		l.t.Fatalf("netlab: in %s: %v", ns, err)
	}
}

// ListenTCP listens on addr ("10.N.2.2:0") inside ns. The listener is closed
// on cleanup.
func (l *Lab) ListenTCP(ns, addr string) net.Listener {
	l.t.Helper()
	var ln net.Listener
	l.mustDo(ns, func() error {
		var err error
		ln, err = net.Listen("tcp", addr)
		return err
	})
	l.t.Cleanup(func() { ln.Close() })
	return ln
}

// ListenUDP opens a UDP socket on addr inside ns, closed on cleanup.
func (l *Lab) ListenUDP(ns, addr string) net.PacketConn {
	l.t.Helper()
	var pc net.PacketConn
	l.mustDo(ns, func() error {
		var err error
		pc, err = net.ListenPacket("udp", addr)
		return err
	})
	l.t.Cleanup(func() { pc.Close() })
	return pc
}

// Start starts a program (a real daemon) inside ns. It and its children are
// killed on cleanup; their output, bounded, is logged when the test failed.
func (l *Lab) Start(ns string, cmd ...string) *exec.Cmd {
	l.t.Helper()
	if len(cmd) == 0 {
		l.t.Fatal("netlab: Start without a command")
	}
	c := exec.Command("ip", append([]string{"netns", "exec", ns}, cmd...)...)
	out := &boundedBuffer{max: maxOutput}
	c.Stdout, c.Stderr = out, out
	c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := c.Start(); err != nil {
		l.t.Fatalf("netlab: starting %q in %s: %v", cmd, ns, err)
	}
	done := make(chan struct{})
	go func() { _ = c.Wait(); close(done) }()
	l.t.Cleanup(func() {
		_ = syscall.Kill(-c.Process.Pid, syscall.SIGKILL)
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			l.t.Errorf("netlab: %q (pid %d) did not exit after SIGKILL", cmd, c.Process.Pid)
		}
		if l.t.Failed() {
			l.t.Logf("netlab: output of %q in %s:\n%s", cmd, ns, out.String())
		}
	})
	return c
}

// inNetns runs fn on a locked OS thread switched into namespace ns and
// switches the thread back before unlocking it. When the switch back fails the
// thread stays locked, so the runtime terminates it rather than reusing a
// thread in the wrong namespace.
func inNetns(ns string, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		restored := false
		defer func() {
			if restored {
				runtime.UnlockOSThread()
			}
		}()
		orig, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			restored = true
			errc <- fmt.Errorf("opening own netns: %w", err)
			return
		}
		defer unix.Close(orig)
		target, err := unix.Open("/run/netns/"+ns, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			restored = true
			errc <- fmt.Errorf("opening netns %s: %w", ns, err)
			return
		}
		defer unix.Close(target)
		if err := unix.Setns(target, unix.CLONE_NEWNET); err != nil {
			restored = true
			errc <- fmt.Errorf("setns %s: %w", ns, err)
			return
		}
		fnErr := fn()
		if err := unix.Setns(orig, unix.CLONE_NEWNET); err != nil {
			errc <- errors.Join(fnErr, fmt.Errorf("setns back from %s: %w", ns, err))
			return
		}
		restored = true
		errc <- fnErr
	}()
	return <-errc
}

// writeSysctl writes /proc/sys/<key> for the calling thread's namespace;
// /proc/sys/net follows the namespace of the thread that opens it.
func writeSysctl(key, value string) error {
	return os.WriteFile("/proc/sys/"+key, []byte(value), 0o644)
}

// runCmd runs a command with CommandTimeout and returns its bounded combined output.
func runCmd(stdin *strings.Reader, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), CommandTimeout)
	defer cancel()
	c := exec.CommandContext(ctx, name, args...)
	if stdin != nil {
		c.Stdin = stdin
	}
	out := &boundedBuffer{max: maxOutput}
	c.Stdout, c.Stderr = out, out
	c.WaitDelay = 2 * time.Second
	err := c.Run()
	if ctx.Err() != nil {
		err = fmt.Errorf("%w (after %s)", ctx.Err(), CommandTimeout)
	}
	return strings.TrimSpace(out.String()), err
}

// boundedBuffer keeps the first max bytes written to it and discards the rest.
type boundedBuffer struct {
	buf       bytes.Buffer
	max       int
	truncated bool
}

func (b *boundedBuffer) Write(p []byte) (int, error) {
	if room := b.max - b.buf.Len(); room < len(p) {
		b.truncated = true
		if room > 0 {
			b.buf.Write(p[:room])
		}
		return len(p), nil
	}
	return b.buf.Write(p)
}

func (b *boundedBuffer) String() string {
	if b.truncated {
		return b.buf.String() + "\n[output truncated]"
	}
	return b.buf.String()
}

//go:build linux

package probe_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/connprobe/connprobe/internal/netlab"
	"github.com/connprobe/connprobe/probe"
)

// runListen runs one listen check in this process's namespace.
func runListen(t *testing.T, host string, port int, transport string) probe.Result {
	t.Helper()
	c := &probe.Check{Name: "l", Kind: "listen", Host: host, Port: port, Transport: transport,
		Network: probe.NetworkOf(transport), Timeout: 5 * time.Second}
	res := probe.Run(context.Background(), c)
	if len(res) != 1 {
		t.Fatalf("want one result, got %d: %+v", len(res), res)
	}
	return res[0]
}

func portOf(t *testing.T, a net.Addr) int {
	t.Helper()
	_, p, err := net.SplitHostPort(a.String())
	if err != nil {
		t.Fatal(err)
	}
	n, _ := strconv.Atoi(p)
	return n
}

func wantReason(t *testing.T, r probe.Result, up bool, reason probe.Reason) {
	t.Helper()
	if r.Up != up || r.Reason != reason {
		t.Fatalf("got up=%v reason=%s (%s), want up=%v reason=%s", r.Up, r.Reason, r.Detail, up, reason)
	}
	if r.Phase != probe.PhaseConnect {
		t.Errorf("phase %q, want connect", r.Phase)
	}
}

func TestListenTCPLoopback(t *testing.T) {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := portOf(t, ln.Addr())
	r := runListen(t, "127.0.0.1", port, "")
	wantReason(t, r, true, probe.ReasonOK)
	f := r.Facts.ListenFacts
	if f == nil || !slices.Contains(f.Listening, fmt.Sprintf("127.0.0.1:%d", port)) {
		t.Fatalf("facts %+v lack 127.0.0.1:%d", f, port)
	}
	// This process holds the socket, so its own /proc entry is readable.
	self := fmt.Sprintf("[%d]", os.Getpid())
	if !slices.ContainsFunc(f.Processes, func(p string) bool { return strings.HasSuffix(p, self) }) {
		t.Errorf("processes %q do not name this process %s", f.Processes, self)
	}
	if r.Check.Network != "tcp" {
		t.Errorf("protocol %q", r.Check.Network)
	}
}

func TestListenTCPWildcardIPv6(t *testing.T) {
	// "tcp" on [::] is dual-stack (Go clears IPV6_V6ONLY); "tcp6" is IPv6-only.
	dual, err := net.Listen("tcp", "[::]:0")
	if err != nil {
		t.Skipf("no IPv6 here: %v", err)
	}
	defer dual.Close()
	only, err := net.Listen("tcp6", "[::]:0")
	if err != nil {
		t.Fatal(err)
	}
	defer only.Close()
	dp, op := portOf(t, dual.Addr()), portOf(t, only.Addr())

	r := runListen(t, "::1", dp, "tcp")
	wantReason(t, r, true, probe.ReasonOK)
	if l := r.Facts.ListenFacts.Listening; !slices.Contains(l, fmt.Sprintf("[::]:%d", dp)) {
		t.Errorf("listening %q lacks [::]:%d", l, dp)
	}
	// A dual-stack socket serves IPv4 peers: sock_diag says it is not IPv6-only.
	wantReason(t, runListen(t, "127.0.0.1", dp, "tcp"), true, probe.ReasonOK)
	wantReason(t, runListen(t, "0.0.0.0", dp, "tcp"), true, probe.ReasonOK)

	wantReason(t, runListen(t, "::1", op, "tcp"), true, probe.ReasonOK)
	r = runListen(t, "127.0.0.1", op, "tcp")
	wantReason(t, r, false, probe.ReasonLocal)
	if !strings.Contains(r.Detail, "IPv6-only") {
		t.Errorf("detail %q does not say the socket is IPv6-only", r.Detail)
	}
}

func TestListenUDP(t *testing.T) {
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	port := portOf(t, pc.LocalAddr())
	r := runListen(t, "127.0.0.1", port, "udp")
	wantReason(t, r, true, probe.ReasonOK)
	if r.Check.Network != "udp" || !slices.Contains(r.Facts.ListenFacts.Listening, fmt.Sprintf("127.0.0.1:%d", port)) {
		t.Errorf("protocol %q, facts %+v", r.Check.Network, r.Facts.ListenFacts)
	}
	// A bound UDP socket is no TCP listener: the transport is part of the question.
	if r := runListen(t, "127.0.0.1", port, "tcp"); r.Up {
		t.Errorf("tcp check up on a UDP-only port: %s", r.Detail)
	}
	// A connected UDP socket takes datagrams only from its peer: it serves no one.
	conn, err := net.Dial("udp4", pc.LocalAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	wantReason(t, runListen(t, "127.0.0.1", portOf(t, conn.LocalAddr()), "udp"), false, probe.ReasonRefused)
}

func TestListenFreePort(t *testing.T) {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := portOf(t, ln.Addr())
	ln.Close()
	r := runListen(t, "127.0.0.1", port, "tcp")
	wantReason(t, r, false, probe.ReasonRefused)
	if f := r.Facts.ListenFacts; f == nil || len(f.Listening) != 0 {
		t.Errorf("facts %+v, want an empty listening list", f)
	}
}

func TestListenNotThisHost(t *testing.T) {
	// 192.0.2.1 (TEST-NET-1) is no address of this host: a listen check
	// cannot see it and must say so rather than report refused.
	r := runListen(t, "192.0.2.1", 80, "tcp")
	if r.Up || r.Reason != probe.ReasonInternalError || !strings.Contains(r.Detail, "not an address of this host") {
		t.Fatalf("got up=%v %s (%s)", r.Up, r.Reason, r.Detail)
	}
}

func TestListenNetnsLoopbackOnly(t *testing.T) {
	lab := netlab.New(t)
	lan := lab.RouterClientSideIP().String()
	loop := lab.ListenTCP(lab.Router(), "127.0.0.1:0")
	wild := lab.ListenTCP(lab.Router(), "0.0.0.0:0")
	exact := lab.ListenUDP(lab.Router(), lab.RouterServerSideIP().String()+":0")
	check := func(host string, port int, transport string) *probe.Check {
		return &probe.Check{Name: "l", Kind: "listen", Host: host, Port: port, Transport: transport,
			Network: probe.NetworkOf(transport), Timeout: 5 * time.Second}
	}

	// Bound only to loopback: the service runs, but LAN peers cannot reach it.
	lp := portOf(t, loop.Addr())
	r := runInNetns(t, lab, lab.Router(), check(lan, lp, "tcp"))
	if r.Up || r.Reason != probe.ReasonLocal || !strings.Contains(r.Detail, "peers on the LAN cannot reach it") {
		t.Errorf("loopback-only listener for %s: up=%v %s (%s)", lan, r.Up, r.Reason, r.Detail)
	}
	if f := r.Facts.ListenFacts; f == nil || !slices.Contains(f.Listening, fmt.Sprintf("127.0.0.1:%d", lp)) {
		t.Errorf("facts %+v lack 127.0.0.1:%d", f, lp)
	}
	if r := runInNetns(t, lab, lab.Router(), check("127.0.0.1", lp, "tcp")); !r.Up || r.Reason != probe.ReasonOK {
		t.Errorf("loopback-only listener for 127.0.0.1: up=%v %s (%s)", r.Up, r.Reason, r.Detail)
	}

	// A wildcard listener serves every local address.
	if r := runInNetns(t, lab, lab.Router(), check(lan, portOf(t, wild.Addr()), "tcp")); !r.Up || r.Reason != probe.ReasonOK {
		t.Errorf("wildcard listener for %s: up=%v %s (%s)", lan, r.Up, r.Reason, r.Detail)
	}

	// Bound to one LAN address: serves it, not another one, and not "every address".
	ep := portOf(t, exact.LocalAddr())
	if r := runInNetns(t, lab, lab.Router(), check(lab.RouterServerSideIP().String(), ep, "udp")); !r.Up {
		t.Errorf("udp socket on %s: up=%v %s (%s)", lab.RouterServerSideIP(), r.Up, r.Reason, r.Detail)
	}
	for _, host := range []string{lan, "0.0.0.0"} {
		if r := runInNetns(t, lab, lab.Router(), check(host, ep, "udp")); r.Up || r.Reason != probe.ReasonLocal {
			t.Errorf("udp socket on %s, checked for %s: up=%v %s (%s)", lab.RouterServerSideIP(), host, r.Up, r.Reason, r.Detail)
		}
	}
}

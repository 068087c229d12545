//go:build linux

package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/connprobe/connprobe/internal/netlab"
)

// The uplink verdict against real routers: `connprobe check -o json` (the
// run function the binary's main calls) runs inside the client namespace of
// a two-router lab, client -> gateway -> ISP router -> server, whose server
// holds two addresses per family: two destinations.

const uplinkHelperTest = "TestUplinkLabHelperProcess"

type uplinkHelperInput struct {
	Config string
}

type uplinkHelperOutput struct {
	Code   int
	Stdout string
	Stderr string
}

// TestUplinkLabHelperProcess is not a test: it is `connprobe check` run by
// the lab tests inside a lab namespace.
func TestUplinkLabHelperProcess(t *testing.T) {
	var in uplinkHelperInput
	ok, err := netlab.HelperInput(&in)
	if !ok {
		t.Skip("helper process for the uplink lab tests; runs only when they start it")
	}
	if err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(t.TempDir(), "connprobe.yml")
	if err := os.WriteFile(cfg, []byte(in.Config), 0o600); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	code := run([]string{"check", "--config.file", cfg, "-o", "json"}, &stdout, &stderr)
	if err := netlab.WriteHelperOutput(uplinkHelperOutput{Code: code, Stdout: stdout.String(), Stderr: stderr.String()}); err != nil {
		t.Fatal(err)
	}
}

// uplinkLab is a two-router lab with two listening destinations per family.
type uplinkLab struct {
	*netlab.Lab
	dests []string // host:port of every destination, IPv4 first
	ports []int
}

// newUplinkLab builds the lab; unlimited lifts the routers' ICMP rate limit.
func newUplinkLab(t *testing.T, unlimited bool) *uplinkLab {
	t.Helper()
	lab := netlab.NewTwoRouter(t)
	second4 := nthAddr(lab.ServerIP(), 3)
	second6 := nthAddr(lab.ServerIP6(), 3)
	lab.Exec(lab.Server(), "ip", "addr", "add", second4.String()+"/24", "dev", netlab.ServerIf)
	lab.Exec(lab.Server(), "ip", "-6", "addr", "add", second6.String()+"/64", "dev", netlab.ServerIf, "nodad")
	// Routers rate-limit the ICMP errors they send to one host (Linux: a
	// burst of a few, then about one a second), and four checks and their
	// traces from one client spend that at once: some would see silence
	// where the others see "net unreachable". The verdict copes (a silent
	// trace fits any place; unit-tested), but here each check's own verdict
	// is asserted too, so the routers answer every packet there.
	if unlimited {
		for _, ns := range []string{lab.Router(), lab.ISP()} {
			lab.Exec(ns, "sysctl", "-qw", "net.ipv4.icmp_ratelimit=0", "net.ipv6.icmp.ratelimit=0")
		}
	}
	u := &uplinkLab{Lab: lab}
	for _, ip := range []net.IP{lab.ServerIP(), second4, lab.ServerIP6(), second6} {
		ln := lab.ListenTCP(lab.Server(), net.JoinHostPort(ip.String(), "0"))
		u.dests = append(u.dests, ln.Addr().String())
		u.ports = append(u.ports, ln.Addr().(*net.TCPAddr).Port)
	}
	return u
}

// nthAddr is ip with its last byte set to n.
func nthAddr(ip net.IP, n byte) net.IP {
	out := append(net.IP(nil), ip...)
	out[len(out)-1] = n
	return out
}

// config is one essential tcp check per destination.
func (u *uplinkLab) config() string {
	var b strings.Builder
	b.WriteString("checks:\n")
	for i, d := range u.dests {
		host, port, _ := net.SplitHostPort(d)
		fmt.Fprintf(&b, "  - {name: dest-%d, kind: tcp, host: %q, port: %s, timeout: 2s}\n", i, host, port)
	}
	return b.String()
}

type uplinkJSON struct {
	Up       *bool   `json:"up"`
	State    string  `json:"state"`
	Location string  `json:"location"`
	Hop      *int    `json:"hop"`
	Address  *string `json:"address"`
	Gateway  string  `json:"gateway"`
	Detail   string  `json:"detail"`
}

type checkJSON struct {
	Results []struct {
		Check  string `json:"check"`
		Up     bool   `json:"up"`
		Reason string `json:"reason"`
		Path   *struct {
			Location string `json:"location"`
			Hop      int    `json:"hop"`
			Address  string `json:"address"`
		} `json:"path"`
	} `json:"results"`
	Uplink *uplinkJSON `json:"uplink"`
}

// check runs `connprobe check -o json` in the client namespace.
func (u *uplinkLab) check(t *testing.T) (checkJSON, string) {
	t.Helper()
	var out uplinkHelperOutput
	if err := u.RunHelper(u.Client(), uplinkHelperTest, uplinkHelperInput{Config: u.config()}, &out, 3*time.Minute); err != nil {
		t.Fatal(err)
	}
	var doc checkJSON
	if err := json.Unmarshal([]byte(out.Stdout), &doc); err != nil {
		t.Fatalf("exit %d, stdout is no JSON report: %v\n%s\nstderr:\n%s", out.Code, err, out.Stdout, out.Stderr)
	}
	return doc, out.Stdout
}

// assertDown checks a down verdict at location, hop and address.
func assertDown(t *testing.T, doc checkJSON, raw, location string, hop int, address, gateway string) {
	t.Helper()
	u := doc.Uplink
	if u == nil || u.Up == nil || *u.Up || u.State != "down" || u.Location != location ||
		u.Hop == nil || *u.Hop != hop || u.Address == nil || *u.Address != address || u.Gateway != gateway {
		t.Fatalf("uplink %+v, want down at %s hop %d address %s gateway %s\n%s", u, location, hop, address, gateway, raw)
	}
	for _, r := range doc.Results {
		if r.Up {
			t.Errorf("check %s up while the uplink is down", r.Check)
		}
	}
}

// TestUplinkLabGatewayLosesRoute: the gateway has no route beyond itself and
// answers net unreachable for everything: the uplink is down at the gateway.
func TestUplinkLabGatewayLosesRoute(t *testing.T) {
	u := newUplinkLab(t, true)
	u.Exec(u.Router(), "ip", "route", "del", "default")
	u.Exec(u.Router(), "ip", "-6", "route", "del", "default")
	doc, raw := u.check(t)
	gw := u.RouterClientSideIP().String()
	assertDown(t, doc, raw, "gateway", 1, gw, gw)
	if !strings.Contains(doc.Uplink.Detail, "your gateway "+gw+" has no route to the internet") {
		t.Errorf("detail %q", doc.Uplink.Detail)
	}
	// The checks keep their own verdicts: rejected by a device on the path.
	for _, r := range doc.Results {
		if r.Reason != "rejected" {
			t.Errorf("check %s: reason %s, want rejected (never rewritten by the uplink verdict)", r.Check, r.Reason)
		}
	}
}

// TestUplinkLabISPDropsGateway: the ISP router drops everything the gateway
// forwards (it still answers TTL expiry): the uplink is down upstream, at
// the ISP router, hop 2.
func TestUplinkLabISPDropsGateway(t *testing.T) {
	u := newUplinkLab(t, true)
	u.IPTables(u.ISP(), "-A", "FORWARD", "-i", netlab.ISPGatewayIf, "-j", "DROP")
	u.IP6Tables(u.ISP(), "-A", "FORWARD", "-i", netlab.ISPGatewayIf, "-j", "DROP")
	doc, raw := u.check(t)
	assertDown(t, doc, raw, "upstream", 2, u.ISPGatewaySideIP().String(), u.RouterClientSideIP().String())
	if !strings.Contains(doc.Uplink.Detail, "nothing answers beyond hop 2 ("+u.ISPGatewaySideIP().String()+")") {
		t.Errorf("detail %q", doc.Uplink.Detail)
	}
	for _, r := range doc.Results {
		if r.Reason != "timeout" {
			t.Errorf("check %s: reason %s, want timeout", r.Check, r.Reason)
		}
	}
}

// TestUplinkLabOnePortBlocked: the gateway rejects one port; the rest
// works: the uplink is up, and the blocked check keeps its verdict.
func TestUplinkLabOnePortBlocked(t *testing.T) {
	u := newUplinkLab(t, true)
	u.IPTables(u.Router(), "-A", "FORWARD", "-p", "tcp", "--dport", fmt.Sprint(u.ports[0]), "-j", "REJECT", "--reject-with", "icmp-admin-prohibited")
	doc, raw := u.check(t)
	up := doc.Uplink
	if up == nil || up.Up == nil || !*up.Up || up.State != "up" || up.Location != "" || up.Hop != nil || up.Address != nil {
		t.Fatalf("uplink %+v, want up with no place\n%s", up, raw)
	}
	if up.Gateway != u.RouterClientSideIP().String() {
		t.Errorf("gateway %q, want %s", up.Gateway, u.RouterClientSideIP())
	}
	var blocked, ok int
	for _, r := range doc.Results {
		switch {
		case r.Check == "dest-0" && r.Reason == "rejected":
			blocked++
		case r.Up:
			ok++
		}
	}
	if blocked != 1 || ok != 3 {
		t.Errorf("%d rejected, %d up; want dest-0 rejected and the other 3 up\n%s", blocked, ok, raw)
	}
}

// TestUplinkLabGatewayLosesRouteRateLimited is the gateway losing its route
// with the routers' default ICMP rate limit: some checks and traces see
// silence where others see "net unreachable"; the verdict stays the same.
func TestUplinkLabGatewayLosesRouteRateLimited(t *testing.T) {
	u := newUplinkLab(t, false)
	u.Exec(u.Router(), "ip", "route", "del", "default")
	u.Exec(u.Router(), "ip", "-6", "route", "del", "default")
	doc, raw := u.check(t)
	gw := u.RouterClientSideIP().String()
	assertDown(t, doc, raw, "gateway", 1, gw, gw)
}

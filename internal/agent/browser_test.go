package agent

import (
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/connprobe/connprobe/internal/chromium"
	"github.com/connprobe/connprobe/internal/gateway"
	"github.com/connprobe/connprobe/probe"
)

// The agent's own handler in a real browser: results in its store (two
// essential checks blocked at the gateway, with their paths, and one that
// works), a reload that failed, and the uplink verdict the agent computes
// from those results. The scheduler never starts, so nothing is sent but
// the page itself, over loopback.
func TestAgentStatusPageInChromium(t *testing.T) {
	bin := chromium.Find(t)
	cfgPath := filepath.Join(t.TempDir(), "connprobe.yml")
	cfg := `checks:
  - {name: vendor-a, kind: tls, host: 192.0.2.10, port: 443}
  - {name: vendor-b, kind: tcp, host: 198.51.100.20, port: 8443}
  - {name: nas, kind: tcp, host: 127.0.0.1, port: 445}
`
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	a, err := New(Options{ConfigFile: cfgPath})
	if err != nil {
		t.Fatal(err)
	}
	const gw = "192.168.1.1"
	a.uplink.Host = func() gateway.Host {
		return gateway.Host{Gateways: []gateway.Gateway{{Family: gateway.FamilyIPv4, Address: gw, Interface: "eth0"}}}
	}
	for _, e := range a.store.Snapshot() {
		c := e.Check
		r := probe.Result{Check: c, Address: c.Host, IPFamily: probe.FamilyIPv4, Up: true, Reason: probe.ReasonOK, Phase: probe.PhaseConnect}
		if c.Name != "nas" {
			r.Up, r.Reason = false, probe.ReasonRejected
			r.Detail = "ICMP destination unreachable (net unreachable) from " + gw + ", a device on the path"
			r.Path = &probe.Path{Location: probe.PathGateway, Hop: 1, Address: gw, Rejected: true,
				Hops: []probe.PathHop{{Hop: 1, Address: gw, RTTSeconds: 0.001, ICMP: "net unreachable"}}}
		}
		a.store.Put(c, []probe.Result{r})
	}
	if err := os.WriteFile(cfgPath, []byte("checks:\n  - {name: x, kind: nosuchkind, host: 127.0.0.1, port: 1}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := a.Reload(); err == nil {
		t.Fatal("a reload of a broken configuration succeeded")
	}

	srv := httptest.NewServer(a.Handler())
	defer srv.Close()
	dom, stderr := chromium.Run(t, bin, srv.URL+"/", "--dump-dom", "--virtual-time-budget=2000")
	for _, line := range chromium.ConsoleLines(stderr) {
		t.Errorf("the page logged to the console: %s", line)
	}
	if strings.Contains(strings.ToLower(dom), "<script") {
		t.Error("the status page has a script")
	}
	text := chromium.Text(dom)
	for _, want := range []string{
		"Custom checks NOT READY 2 of 3 essential checks fail: vendor-a rejected; vendor-b rejected",
		"The last configuration reload failed at",
		"nosuchkind",
		"The internet connection is down at your gateway " + gw,
		"Rejected at hop 1, your gateway " + gw,
		"rejected (blocked by a device on the way)",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("the page lacks %q; page text:\n%s", want, text)
		}
	}
	if missing := chromium.Order(text, "The last configuration reload failed", "The internet connection is down",
		"Custom checks NOT READY", "Failing essential checks", "vendor-a", "vendor-b", "Working", "nas"); missing != "" {
		t.Errorf("%q is missing or out of order; page text:\n%s", missing, text)
	}
}

//go:build linux

package agent

import (
	"fmt"
	"net"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/connprobe/connprobe/internal/netlab"
)

// The agent's uplink verdict in a two-router lab: the gateway loses its
// route beyond itself, the agent's checks and their traces fail there, and
// /metrics says connprobe_uplink_up 0 with the location and the gateway.

type agentUplinkInput struct {
	Config string
}

type agentUplinkOutput struct {
	Lines []string // the connprobe_uplink_* lines of /metrics
	Error string
}

// TestAgentUplinkHelperProcess is not a test: TestAgentUplinkDownInLab runs
// it in the lab's client namespace, where it runs the agent and reads
// /metrics until the uplink verdict is down (at most 45s).
func TestAgentUplinkHelperProcess(t *testing.T) {
	var in agentUplinkInput
	ok, err := netlab.HelperInput(&in)
	if !ok {
		t.Skip("helper process for TestAgentUplinkDownInLab; runs only when it starts it")
	}
	if err != nil {
		t.Fatal(err)
	}
	out := func() agentUplinkOutput {
		scrape, stop, err := labAgent(t.TempDir(), in.Config)
		if err != nil {
			return agentUplinkOutput{Error: err.Error()}
		}
		defer stop()
		var lines []string
		for deadline := time.Now().Add(45 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
			lines = nil
			for _, l := range strings.Split(scrape(), "\n") {
				if strings.HasPrefix(l, "connprobe_uplink_") {
					lines = append(lines, l)
				}
			}
			if slices.Contains(lines, "connprobe_uplink_up 0") {
				return agentUplinkOutput{Lines: lines}
			}
		}
		return agentUplinkOutput{Lines: lines, Error: "the uplink verdict was not down within 45s"}
	}()
	if err := netlab.WriteHelperOutput(out); err != nil {
		t.Fatal(err)
	}
}

func TestAgentUplinkDownInLab(t *testing.T) {
	if err := netlab.Available(); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("netlab: %v (CI must run the lab)", err)
		}
		t.Skipf("netlab: %v", err)
	}
	lab := netlab.NewTwoRouter(t)
	second := append(net.IP(nil), lab.ServerIP()...)
	second[len(second)-1] = 3
	lab.Exec(lab.Server(), "ip", "addr", "add", second.String()+"/24", "dev", netlab.ServerIf)
	// Every ICMP answered (the routers' per-host rate limit would make some
	// runs silent; the verdict copes, see the uplink package's tests).
	lab.Exec(lab.Router(), "sysctl", "-qw", "net.ipv4.icmp_ratelimit=0")
	var b strings.Builder
	b.WriteString("checks:\n")
	for i, ip := range []net.IP{lab.ServerIP(), second} {
		ln := lab.ListenTCP(lab.Server(), net.JoinHostPort(ip.String(), "0"))
		fmt.Fprintf(&b, "  - {name: dest-%d, kind: tcp, host: %s, port: %d, ip_family: ipv4, interval: 3s, timeout: 1s}\n",
			i, ip, ln.Addr().(*net.TCPAddr).Port)
	}
	lab.Exec(lab.Router(), "ip", "route", "del", "default")

	var out agentUplinkOutput
	if err := lab.RunHelper(lab.Client(), "TestAgentUplinkHelperProcess", agentUplinkInput{Config: b.String()}, &out, 90*time.Second); err != nil {
		t.Fatal(err)
	}
	if out.Error != "" {
		t.Fatalf("%s; uplink series:\n%s", out.Error, strings.Join(out.Lines, "\n"))
	}
	gw := lab.RouterClientSideIP().String()
	want := fmt.Sprintf(`connprobe_uplink_info{gateway="%s",location="gateway"} 1`, gw)
	if !slices.Contains(out.Lines, want) {
		t.Errorf("uplink series:\n%s\nwant %s", strings.Join(out.Lines, "\n"), want)
	}
}

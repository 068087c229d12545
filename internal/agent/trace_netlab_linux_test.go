//go:build linux

package agent

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/connprobe/connprobe/internal/netlab"
)

// The agent traces a failing check in a two-router lab, exports where it
// stopped, and keeps to its trace interval: the check runs every 2 seconds, yet
// the trace's packets (TTL below 64, counted by the client's firewall) are
// those of one trace.

type agentTraceInput struct {
	Config string
	// Runs is how many runs of the check the helper waits for after the
	// first path shows in /metrics.
	Runs int
}

type agentTraceOutput struct {
	PathLines []string // the connprobe_check_path_* lines of /metrics
	Error     string
}

// TestAgentTraceHelperProcess is not a test: TestAgentTracesInLab runs it in
// the lab's client namespace, where it runs the agent and reads /metrics.
func TestAgentTraceHelperProcess(t *testing.T) {
	var in agentTraceInput
	ok, err := netlab.HelperInput(&in)
	if !ok {
		t.Skip("helper process for TestAgentTracesInLab; runs only when it starts it")
	}
	if err != nil {
		t.Fatal(err)
	}
	out := runAgentTrace(t, in)
	if err := netlab.WriteHelperOutput(out); err != nil {
		t.Fatal(err)
	}
}

func runAgentTrace(t *testing.T, in agentTraceInput) agentTraceOutput {
	scrape, stop, err := labAgent(t.TempDir(), in.Config)
	if err != nil {
		return agentTraceOutput{Error: err.Error()}
	}
	defer stop()

	runs := func(body string) int {
		n := 0
		for _, l := range strings.Split(body, "\n") {
			if strings.HasPrefix(l, "connprobe_check_runs_total{") {
				f := strings.Fields(l)
				v, _ := strconv.ParseFloat(f[len(f)-1], 64)
				n += int(v)
			}
		}
		return n
	}
	deadline := time.Now().Add(30 * time.Second)
	first := -1
	for time.Now().Before(deadline) {
		body := scrape()
		if first < 0 && strings.Contains(body, "connprobe_check_path_info{") {
			first = runs(body)
		}
		if first >= 0 && runs(body) >= first+in.Runs {
			var lines []string
			for _, l := range strings.Split(body, "\n") {
				if strings.HasPrefix(l, "connprobe_check_path_") {
					lines = append(lines, l)
				}
			}
			return agentTraceOutput{PathLines: lines}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return agentTraceOutput{Error: fmt.Sprintf("no path and %d more runs within 30s (first path after %d runs)", in.Runs, first)}
}

func TestAgentTracesInLab(t *testing.T) {
	if err := netlab.Available(); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("netlab: %v (CI must run the lab)", err)
		}
		t.Skipf("netlab: %v", err)
	}
	lab := netlab.NewTwoRouter(t)
	ln := lab.ListenTCP(lab.Server(), net.JoinHostPort(lab.ServerIP().String(), "0"))
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	lab.IPTables(lab.Client(), "-I", "OUTPUT", "1", "-d", lab.ServerIP().String(), "-p", "tcp", "--dport", port,
		"-m", "ttl", "--ttl-lt", "64", "-m", "comment", "--comment", "trace-probes")
	lab.IPTables(lab.ISP(), "-A", "FORWARD", "-p", "tcp", "--dport", port, "-j", "REJECT", "--reject-with", "icmp-admin-prohibited")
	cfg := fmt.Sprintf("checks:\n  - {name: blocked, kind: tcp, host: %s, port: %s, interval: 2s, timeout: 1s}\n", lab.ServerIP(), port)

	var out agentTraceOutput
	if err := lab.RunHelper(lab.Client(), "TestAgentTraceHelperProcess", agentTraceInput{Config: cfg, Runs: 4}, &out, 60*time.Second); err != nil {
		t.Fatal(err)
	}
	if out.Error != "" {
		t.Fatal(out.Error)
	}
	body := strings.Join(out.PathLines, "\n")
	isp := lab.ISPGatewaySideIP().String()
	wantInfo := fmt.Sprintf(`address="%s"`, isp)
	if !strings.Contains(body, "connprobe_check_path_hop{") || !strings.Contains(body, wantInfo) || !strings.Contains(body, `location="upstream"`) {
		t.Errorf("path series:\n%s\nwant hop 2, upstream, %s", body, isp)
	}
	for _, l := range out.PathLines {
		if strings.HasPrefix(l, "connprobe_check_path_hop{") && !strings.HasSuffix(l, " 2") {
			t.Errorf("path hop line %q, want 2", l)
		}
	}
	// Five runs or more, one trace: TE from the gateway, TE from the ISP
	// router, its rejection.
	out2 := lab.Exec(lab.Client(), "iptables", "-w", "5", "-L", "OUTPUT", "-v", "-x", "-n")
	for _, line := range strings.Split(out2, "\n") {
		if strings.Contains(line, "/* trace-probes */") {
			if n := strings.Fields(line)[0]; n != "3" {
				t.Errorf("trace packets %s over 5+ runs, want 3 (one trace within --trace.min-interval)", n)
			}
			return
		}
	}
	t.Fatalf("no counter in:\n%s", out2)
}

//go:build linux

package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"testing"
	"time"

	"github.com/connprobe/connprobe/internal/netlab"
	"github.com/connprobe/connprobe/probe"
)

// `connprobe check` end to end in a two-router lab: the ISP router rejects
// one TCP port and drops NTP, and the JSON report carries each failing
// check's path, found by the command's own wiring (flags, run-once
// scheduler, trace policy). With --trace.disable there is no path.

type checkHelperInput struct{ Args []string }

type checkHelperOutput struct {
	Code           int
	Stdout, Stderr string
}

// TestCheckHelperProcess is not a test: the lab test below runs it inside
// the lab's client namespace, where it runs `connprobe check` once.
func TestCheckHelperProcess(t *testing.T) {
	var in checkHelperInput
	ok, err := netlab.HelperInput(&in)
	if !ok {
		t.Skip("helper process for TestCheckTracesPathsInLab; runs only when it starts it")
	}
	if err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	code := run(in.Args, &stdout, &stderr)
	if err := netlab.WriteHelperOutput(checkHelperOutput{Code: code, Stdout: stdout.String(), Stderr: stderr.String()}); err != nil {
		t.Fatal(err)
	}
}

func TestCheckTracesPathsInLab(t *testing.T) {
	if err := netlab.Available(); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("netlab: %v (CI must run the lab)", err)
		}
		t.Skipf("netlab: %v", err)
	}
	lab := netlab.NewTwoRouter(t)
	ln := lab.ListenTCP(lab.Server(), net.JoinHostPort(lab.ServerIP().String(), "0"))
	port := ln.Addr().(*net.TCPAddr).Port
	lab.IPTables(lab.ISP(), "-A", "FORWARD", "-p", "tcp", "--dport", fmt.Sprint(port), "-j", "REJECT", "--reject-with", "icmp-admin-prohibited")
	lab.IPTables(lab.ISP(), "-A", "FORWARD", "-p", "udp", "--dport", "123", "-j", "DROP")
	lab.IPTables(lab.Client(), "-A", "OUTPUT", "-p", "tcp", "--dport", "9", "-j", "DROP")
	cfg := fmt.Sprintf(`checks:
  - {name: blocked, kind: tcp, host: %[1]s, port: %[2]d, timeout: 1s}
  - {name: time, kind: ntp, host: %[1]s, timeout: 1s}
  - {name: open, kind: tcp, host: %[1]s, port: 9, timeout: 1s}
`, lab.ServerIP(), port)
	file := writeFile(t, t.TempDir(), "c.yml", cfg)

	type jsonResult struct {
		Check  string       `json:"check"`
		Up     bool         `json:"up"`
		Reason probe.Reason `json:"reason"`
		Path   *probe.Path  `json:"path"`
	}
	runCheck := func(extra ...string) map[string]jsonResult {
		t.Helper()
		var out checkHelperOutput
		args := append([]string{"check", "--config.file", file, "-o", "json"}, extra...)
		if err := lab.RunHelper(lab.Client(), "TestCheckHelperProcess", checkHelperInput{Args: args}, &out, probe.TraceBudget+30*time.Second); err != nil {
			t.Fatal(err)
		}
		var doc struct {
			Results []jsonResult `json:"results"`
		}
		if err := json.Unmarshal([]byte(out.Stdout), &doc); err != nil {
			t.Fatalf("exit %d, stdout %q, stderr %q: %v", out.Code, out.Stdout, out.Stderr, err)
		}
		got := map[string]jsonResult{}
		for _, r := range doc.Results {
			got[r.Check] = r
		}
		return got
	}

	got := runCheck()
	isp := lab.ISPGatewaySideIP().String()
	if r := got["blocked"]; r.Up || r.Path == nil || r.Path.Location != probe.PathUpstream || r.Path.Hop != 2 || r.Path.Address != isp || !r.Path.Rejected {
		t.Errorf("blocked: %+v path %+v, want rejected upstream at hop 2 by %s", r, r.Path, isp)
	}
	if r := got["time"]; r.Up || r.Reason != probe.ReasonNoReply || r.Path == nil || r.Path.Location != probe.PathUpstream || r.Path.Hop != 2 || r.Path.Address != isp || r.Path.Rejected {
		t.Errorf("time: %+v path %+v, want silent after hop 2 (%s)", r, r.Path, isp)
	}
	// This host drops the SYNs to port 9: the control probe tells.
	if r := got["open"]; r.Up || r.Path == nil || r.Path.Location != probe.PathThisHost || r.Path.Hop != 0 || r.Path.Address != lab.ClientIP().String() {
		t.Errorf("open: %+v path %+v, want this_host", r, r.Path)
	}

	for name, r := range runCheck("--trace.disable") {
		if r.Path != nil {
			t.Errorf("--trace.disable: %s has a path %+v", name, r.Path)
		}
	}
}

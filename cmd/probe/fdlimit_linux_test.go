package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestAgentUnderLowDescriptorLimit runs the agent under `prlimit
// --nofile=64` with --scheduler.max-concurrent 64: it must lower its
// concurrency to what the limit allows (8: 32 descriptors reserved, 4 per
// probe) and say so in its log, and with 30 UDP checks holding a socket for
// their whole timeout (a silent peer) beside 16 healthy TCP checks of a
// loopback listener, every healthy check must run and never read down.
// (Proving the unsized agent fails here needs more silent checks than 8
// slots can then serve: the scheduler, earliest due first, starves the
// healthy checks; the log assertion is what fails without the sizing.)
func TestAgentUnderLowDescriptorLimit(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs it for about 20 s")
	}
	prlimit, err := exec.LookPath("prlimit")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("prlimit (util-linux) is needed under CI")
		}
		t.Skip("prlimit (util-linux) not found")
	}
	bin := filepath.Join(t.TempDir(), "probe")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}

	tcp, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer tcp.Close()
	go func() {
		for {
			c, err := tcp.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	// A silent UDP peer on every loopback address: datagrams are read and
	// never answered, so each udp check waits for its whole timeout.
	udp, err := net.ListenPacket("udp4", "0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	defer udp.Close()
	go func() {
		buf := make([]byte, 2048)
		for {
			if _, _, err := udp.ReadFrom(buf); err != nil {
				return
			}
		}
	}()

	var cfg strings.Builder
	cfg.WriteString("checks:\n")
	const healthy = 16
	for i := range healthy {
		fmt.Fprintf(&cfg, "  - {name: ok%d, kind: tcp, host: 127.0.0.1, ip_family: ipv4, port: %d, interval: 2s, timeout: 1s}\n", i, tcp.Addr().(*net.TCPAddr).Port)
	}
	// One host each (127.0.0.2-31): per-host pacing does not spread them.
	// Sized to 8 slots, they need 6 on average, leaving room for the
	// healthy checks.
	for i := range 30 {
		fmt.Fprintf(&cfg, "  - {name: silent%d, kind: udp, host: 127.0.0.%d, ip_family: ipv4, port: %d, send: x, interval: 10s, timeout: 2s}\n",
			i, i+2, udp.LocalAddr().(*net.UDPAddr).Port)
	}
	cfgPath := writeFile(t, t.TempDir(), "c.yml", cfg.String())
	webPort := freePort(t)
	base := fmt.Sprintf("http://127.0.0.1:%d", webPort)

	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, prlimit, "--nofile=64:64", bin, "--config.file", cfgPath,
		"--web.listen-address", fmt.Sprintf("127.0.0.1:%d", webPort), "--scheduler.max-concurrent", "64",
		"--trace.disable") // a trace of each silent check would hold its slot longer still
	var logs bytes.Buffer
	cmd.Stderr = &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
		}
		if t.Failed() {
			t.Logf("agent log:\n%s", logs.String())
		}
	}()

	up := regexp.MustCompile(`(?m)^connprobe_check_up\{check="(ok\d+)"[^}]*\} (\d)`)
	scrape := func() map[string]string {
		resp, err := http.Get(base + "/metrics")
		if err != nil {
			return nil
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
		got := map[string]string{}
		for _, m := range up.FindAllStringSubmatch(string(b), -1) {
			got[m[1]] = m[2]
		}
		return got
	}
	allUp := func(m map[string]string) bool {
		if len(m) != healthy {
			return false
		}
		for _, v := range m {
			if v != "1" {
				return false
			}
		}
		return true
	}

	// Every healthy check runs and is up, and none is ever seen down (a
	// down result stays in /metrics for its 2s interval; scraped every
	// 250ms, one is not missed).
	deadline := time.Now().Add(60 * time.Second)
	var last map[string]string
	for ; time.Now().Before(deadline); time.Sleep(250 * time.Millisecond) {
		m := scrape()
		for name, v := range m {
			if v != "1" {
				t.Fatalf("healthy check %s is down under the descriptor limit: %v", name, m)
			}
		}
		if last = m; allUp(m) {
			break
		}
	}
	if !allUp(last) {
		t.Fatalf("healthy checks not all run and up within 60s: %v", last)
	}
	for end := time.Now().Add(5 * time.Second); time.Now().Before(end); time.Sleep(250 * time.Millisecond) {
		if m := scrape(); m != nil && !allUp(m) {
			t.Fatalf("a healthy check went down under the descriptor limit: %v", m)
		}
	}
	if !regexp.MustCompile(`probe concurrency lowered to fit the file descriptor limit.* max_concurrent=8 requested=64 nofile_soft=64`).Match(logs.Bytes()) {
		t.Errorf("no log line saying the concurrency was lowered to 8 for nofile 64")
	}
}

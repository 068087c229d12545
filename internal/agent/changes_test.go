package agent

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/connprobe/connprobe/internal/results"
	"github.com/connprobe/connprobe/probe"
)

// logBuffer collects a logger's output for assertions.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) lines(msg string) []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []string
	for _, l := range strings.Split(b.buf.String(), "\n") {
		if strings.Contains(l, "msg=\""+msg+"\"") {
			out = append(out, l)
		}
	}
	return out
}

// runAgent starts an agent that runs until the test ends.
func runAgent(t *testing.T, opts Options) *Agent {
	t.Helper()
	a, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			t.Error("the agent did not stop within 15s")
		}
	})
	return a
}

func TestLogChangesOncePerChange(t *testing.T) {
	var logs logBuffer
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	c := &probe.Check{Profile: "clover", Name: "ntp", Kind: "ntp", Host: "pool.example", Port: 123, Network: "udp", Essential: true}
	ok4 := probe.Result{Check: c, IPFamily: probe.FamilyIPv4, Address: "192.0.2.1", Up: true, Reason: probe.ReasonOK}
	ok6 := probe.Result{Check: c, IPFamily: probe.FamilyIPv6, Address: "2001:db8::1", Up: true, Reason: probe.ReasonOK}
	noReply4 := probe.Result{Check: c, IPFamily: probe.FamilyIPv4, Address: "192.0.2.1", Reason: probe.ReasonNoReply,
		Phase: probe.PhaseResponse, Detail: "no reply within 5s"}
	rejected4 := noReply4
	rejected4.Reason, rejected4.Detail = probe.ReasonRejected, "ICMP admin prohibited from 192.0.2.254, a device on the path"

	store := results.New()
	store.SetChecks([]*probe.Check{c})
	step := func(rs ...probe.Result) {
		prev, ok := store.Put(c, rs)
		if !ok {
			t.Fatal("the check is not configured")
		}
		logChanges(logger, c, prev, rs, time.Now())
	}
	step(ok4, ok6)       // first run, up: nothing at info
	step(ok4, ok6)       // unchanged
	step(noReply4, ok6)  // v4 starts failing
	step(noReply4, ok6)  // unchanged
	step(rejected4, ok6) // the reason changes
	step(ok4, ok6)       // recovered
	step(ok4, ok6)

	failing, changed, recovered := logs.lines("check failing"), logs.lines("check failing differently"), logs.lines("check recovered")
	if len(failing) != 1 || len(changed) != 1 || len(recovered) != 1 {
		t.Fatalf("failing %d, changed %d, recovered %d lines, want one each:\n%s", len(failing), len(changed), len(recovered), logs.buf.String())
	}
	for _, want := range []string{"level=INFO", "check=ntp", "profile=clover", "host=pool.example", "port=123", "family=ipv4",
		"address=192.0.2.1", "essential=true", "reason=no_reply", "phase=response", `detail="no reply within 5s"`} {
		if !strings.Contains(failing[0], want) {
			t.Errorf("failing line lacks %s: %s", want, failing[0])
		}
	}
	if !strings.Contains(changed[0], "reason=rejected") || !strings.Contains(changed[0], "previous_reason=no_reply") ||
		!strings.Contains(changed[0], "a device on the path") {
		t.Errorf("changed line: %s", changed[0])
	}
	if !strings.Contains(recovered[0], "previous_reason=rejected") || !strings.Contains(recovered[0], "failing_for=") {
		t.Errorf("recovered line: %s", recovered[0])
	}
	if n := strings.Count(logs.buf.String(), "family=ipv6"); n != 0 {
		t.Errorf("the unchanged IPv6 result was logged %d times", n)
	}

	// A check that fails from its first run is logged at once.
	var logs2 logBuffer
	logChanges(slog.New(slog.NewTextHandler(&logs2, nil)), c, results.Entry{}, []probe.Result{noReply4}, time.Now())
	if len(logs2.lines("check failing")) != 1 {
		t.Errorf("a first failing run is not logged: %q", logs2.buf.String())
	}
}

// Through the running agent against a real listener: the night's story in
// the log, one line per change however many runs repeat a verdict.
func TestAgentLogsVerdictChanges(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	cfg := filepath.Join(t.TempDir(), "c.yml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf(
		"defaults: {interval: 1s, timeout: 500ms}\nchecks:\n  - {name: web, kind: tcp, host: 127.0.0.1, port: %d}\n", port)), 0o600); err != nil {
		t.Fatal(err)
	}
	var logs logBuffer
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	a := runAgent(t, Options{ConfigFile: cfg, ListenAddrs: []string{fmt.Sprintf("127.0.0.1:%d", freePort(t))}, Logger: logger})
	ranOnce := func() bool {
		for _, e := range a.store.Snapshot() {
			return e.Ran()
		}
		return false
	}
	waitFor(t, 10*time.Second, "the first run", ranOnce)
	runs := func() int {
		for _, e := range a.store.Snapshot() {
			return e.History.Len()
		}
		return 0
	}
	l.Close() // the port now refuses
	waitFor(t, 10*time.Second, "the failure logged", func() bool { return len(logs.lines("check failing")) == 1 })
	n := runs()
	waitFor(t, 10*time.Second, "two more failing runs", func() bool { return runs() >= n+2 })
	l2, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Skipf("cannot listen on the port again: %v", err)
	}
	defer l2.Close()
	waitFor(t, 10*time.Second, "the recovery logged", func() bool { return len(logs.lines("check recovered")) == 1 })
	if f := logs.lines("check failing"); len(f) != 1 || !strings.Contains(f[0], "reason=refused") {
		t.Errorf("failing lines %q, want one with reason=refused", f)
	}
}

// Readiness comes within seconds of start, whatever the interval: every
// check, each port of a range included, runs once soon, paced.
func TestAgentReadySoonAfterStart(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	open := l.Addr().(*net.TCPAddr).Port
	base := freePort(t)
	cfg := filepath.Join(t.TempDir(), "c.yml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf(`defaults: {interval: 10m, timeout: 1s}
checks:
  - {name: web, kind: tcp, host: 127.0.0.1, port: %d}
  - {name: web2, kind: tcp, host: 127.0.0.2, port: %d}
  - {name: range, kind: tcp, host: 127.0.0.3, ports: "%d-%d"}
`, open, open, base, base+11)), 0o600); err != nil {
		t.Fatal(err)
	}
	webPort := freePort(t)
	began := time.Now()
	a := runAgent(t, Options{ConfigFile: cfg, ListenAddrs: []string{fmt.Sprintf("127.0.0.1:%d", webPort)}})
	// 5s of first-run spread plus 12 paced range ports; 20s leaves a loaded
	// machine margin and is far from the 10 minutes of the interval.
	waitFor(t, 20*time.Second, "/-/ready", func() bool {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/-/ready", webPort))
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	t.Logf("ready %v after start", time.Since(began).Round(100*time.Millisecond))
	if n := a.store.Len(); n != 14 {
		t.Errorf("%d checks in the store, want 14", n)
	}
}

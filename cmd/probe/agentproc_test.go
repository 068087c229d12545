//go:build !windows

package main

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// The agent tests (SIGHUP, reload under load, soak) drive the real binary:
// SIGHUP is only handled there, and its goroutines, descriptors and heap are
// then the agent's alone, not the test's.

// syncBuffer collects the agent's logs, written by exec's copier and read
// by the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// agentProc is one running agent binary.
type agentProc struct {
	cmd    *exec.Cmd
	base   string
	logs   *syncBuffer
	client *http.Client
}

// startAgentProc runs bin as the agent on cfg, waits until it is ready and
// stops it with SIGTERM when the test ends (failing if it does not exit
// cleanly within 15s).
func startAgentProc(t *testing.T, bin, cfg string) *agentProc {
	t.Helper()
	webPort := freePort(t)
	p := &agentProc{
		base:   fmt.Sprintf("http://127.0.0.1:%d", webPort),
		logs:   &syncBuffer{},
		client: &http.Client{Timeout: 10 * time.Second},
	}
	p.cmd = exec.Command(bin, "--config.file", cfg, "--web.listen-address", fmt.Sprintf("127.0.0.1:%d", webPort))
	p.cmd.Stdout, p.cmd.Stderr = p.logs, p.logs
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		p.client.CloseIdleConnections()
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		waited := make(chan error, 1)
		go func() { waited <- p.cmd.Wait() }()
		select {
		case err := <-waited:
			if err != nil {
				t.Errorf("agent exited with %v after SIGTERM\n%s", err, p.logs.String())
			}
		case <-time.After(15 * time.Second):
			t.Errorf("agent did not stop within 15s of SIGTERM")
			_ = p.cmd.Process.Kill()
			<-waited
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := p.client.Get(p.base + "/-/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("agent not ready within 30s\n%s", p.logs.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (p *agentProc) pid() int { return p.cmd.Process.Pid }

// scrape parses /metrics with expfmt.
func (p *agentProc) scrape(t *testing.T) map[string]*dto.MetricFamily {
	t.Helper()
	fams, err := p.metrics()
	if err != nil {
		t.Fatalf("%v\n%s", err, tail(p.logs.String()))
	}
	return fams
}

func (p *agentProc) metrics() (map[string]*dto.MetricFamily, error) {
	resp, err := p.client.Get(p.base + "/metrics")
	if err != nil {
		return nil, fmt.Errorf("GET /metrics: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET /metrics: %s", resp.Status)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return nil, fmt.Errorf("parsing /metrics: %w", err)
	}
	return fams, nil
}

// reload reloads the agent by SIGHUP or POST /-/reload and waits until
// connprobe_config_last_reload_successful says valid; it returns that
// scrape. The caller alternates valid and invalid configurations, so the
// gauge flips at every reload and a SIGHUP reload is seen to have happened
// (POST answers when it has). It returns errors rather than failing the
// test, so that a goroutine of the test may call it.
func (p *agentProc) reload(bySignal, valid bool) (map[string]*dto.MetricFamily, error) {
	if bySignal {
		if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
			return nil, err
		}
	} else {
		resp, err := p.client.Post(p.base+"/-/reload", "text/plain", nil)
		if err != nil {
			return nil, fmt.Errorf("POST /-/reload: %w", err)
		}
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
		if want := map[bool]int{true: http.StatusOK, false: http.StatusInternalServerError}[valid]; resp.StatusCode != want {
			return nil, fmt.Errorf("POST /-/reload: status %d, want %d", resp.StatusCode, want)
		}
	}
	want := map[bool]float64{true: 1, false: 0}[valid]
	deadline := time.Now().Add(10 * time.Second)
	for {
		fams, err := p.metrics()
		if err != nil {
			return nil, err
		}
		got, ok := single(fams, "connprobe_config_last_reload_successful")
		if !ok {
			return nil, fmt.Errorf("/metrics lacks connprobe_config_last_reload_successful")
		}
		if got == want {
			return fams, nil
		}
		if !bySignal || time.Now().After(deadline) {
			return nil, fmt.Errorf("connprobe_config_last_reload_successful %v, want %v\n%s", got, want, tail(p.logs.String()))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// metricValue is the value of a gauge, counter or untyped sample.
func metricValue(m *dto.Metric) float64 {
	switch {
	case m.Gauge != nil:
		return m.GetGauge().GetValue()
	case m.Counter != nil:
		return m.GetCounter().GetValue()
	default:
		return m.GetUntyped().GetValue()
	}
}

// single is the value of an unlabelled metric; ok is false without one.
func single(fams map[string]*dto.MetricFamily, name string) (float64, bool) {
	f := fams[name]
	if f == nil || len(f.Metric) != 1 {
		return 0, false
	}
	return metricValue(f.Metric[0]), true
}

func labelOf(m *dto.Metric, name string) string {
	for _, lp := range m.Label {
		if lp.GetName() == name {
			return lp.GetValue()
		}
	}
	return ""
}

// runsByCheck sums connprobe_check_runs_total over reasons and results per
// check name.
func runsByCheck(fams map[string]*dto.MetricFamily) map[string]float64 {
	out := map[string]float64{}
	if f := fams["connprobe_check_runs_total"]; f != nil {
		for _, m := range f.Metric {
			out[labelOf(m, "check")] += metricValue(m)
		}
	}
	return out
}

// countingListener accepts on addr until closed. Each accepted connection is
// counted; hold keeps it open (reading, for at most 5s) until the client
// closes it, as a server that never speaks first; otherwise it is closed
// at once.
type countingListener struct {
	net.Listener
	accepts atomic.Int64
	wg      sync.WaitGroup
}

func listenCounting(t *testing.T, addr string, hold bool) *countingListener {
	t.Helper()
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	return serveCounting(l, hold, nil)
}

// serveCounting serves l; accepts go to c if non-nil (so that a listener
// reopened on the same port keeps its count).
func serveCounting(l net.Listener, hold bool, c *countingListener) *countingListener {
	if c == nil {
		c = &countingListener{}
	}
	c.Listener = l
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			c.accepts.Add(1)
			if !hold {
				conn.Close()
				continue
			}
			c.wg.Add(1)
			go func() {
				defer c.wg.Done()
				defer conn.Close()
				_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
				_, _ = io.Copy(io.Discard, conn)
			}()
		}
	}()
	return c
}

// stop closes the listener and waits for its goroutines.
func (c *countingListener) stop() {
	c.Close()
	c.wg.Wait()
}

// tail is the end of the agent's logs, for failure messages.
func tail(logs string) string {
	const n = 4000
	if len(logs) > n {
		return "...\n" + logs[len(logs)-n:]
	}
	return logs
}

// invalidConfigs are rejected by the loader for different reasons: an
// unknown kind, broken YAML, a port out of range, too short an interval.
var invalidConfigs = []string{
	"checks:\n  - {name: x, kind: nosuchkind, host: 127.0.0.1, port: 1}\n",
	"checks: [oops\n",
	"checks:\n  - {name: x, kind: tcp, host: 127.0.0.1, port: 70000}\n",
	"defaults: {interval: 100ms}\nchecks:\n  - {name: x, kind: tcp, host: 127.0.0.1, port: 1}\n",
}

// TestAgentReloadsOnSIGHUP runs the real binary and reloads it with a signal.
func TestAgentReloadsOnSIGHUP(t *testing.T) {
	bin := buildProbe(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	open := l.Addr().(*net.TCPAddr).Port
	dir := t.TempDir()
	cfg := writeFile(t, dir, "c.yml", fmt.Sprintf("defaults: {interval: 1s, timeout: 500ms}\nchecks:\n  - {name: first, kind: tcp, host: 127.0.0.1, port: %d}\n", open))
	p := startAgentProc(t, bin, cfg)

	// checks are the check names with a connprobe_check_up series.
	checks := func() map[string]bool {
		out := map[string]bool{}
		if f := p.scrape(t)["connprobe_check_up"]; f != nil {
			for _, m := range f.Metric {
				out[labelOf(m, "check")] = true
			}
		}
		return out
	}
	waitUntil := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(15 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s\nlogs:\n%s", what, tail(p.logs.String()))
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	waitUntil("first check up", func() bool { return checks()["first"] })

	writeFile(t, dir, "c.yml", fmt.Sprintf("defaults: {interval: 1s, timeout: 500ms}\nchecks:\n  - {name: second, kind: tcp, host: 127.0.0.1, port: %d}\n", open))
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitUntil("second check after SIGHUP", func() bool { c := checks(); return c["second"] && !c["first"] })

	writeFile(t, dir, "c.yml", "checks: [oops\n")
	if _, err := p.reload(true, false); err != nil {
		t.Fatalf("SIGHUP with a broken configuration: %v", err)
	}
	if !checks()["second"] {
		t.Error("the previous configuration stopped after a failed reload")
	}
}

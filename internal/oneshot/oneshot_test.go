package oneshot

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/connprobe/connprobe/internal/scheduler"
	"github.com/connprobe/connprobe/probe"
)

// freePort returns a loopback port that nothing listens on.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	return port
}

func TestRunReportsEveryCheckAgainstRealSockets(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	open := l.Addr().(*net.TCPAddr).Port
	closed := freePort(t)

	checks := []*probe.Check{
		{Name: "open", Kind: "tcp", Host: "127.0.0.1", Port: open, Network: "tcp", Essential: true, Timeout: 2 * time.Second},
		{Name: "closed-optional", Kind: "tcp", Host: "127.0.0.1", Port: closed, Network: "tcp", Essential: false, Timeout: 2 * time.Second},
	}
	results := Run(context.Background(), checks, Options{}).Results
	if len(results) != 2 {
		t.Fatalf("got %d results, want 2", len(results))
	}
	if !results[0].Up || results[0].Reason != probe.ReasonOK {
		t.Errorf("open port: up=%v reason=%s detail=%s", results[0].Up, results[0].Reason, results[0].Detail)
	}
	if results[1].Up || results[1].Reason != probe.ReasonRefused {
		t.Errorf("closed port: up=%v reason=%s", results[1].Up, results[1].Reason)
	}
	rep := NewReport(Outcome{Results: results}, nil)
	if got := rep.ExitCode(); got != ExitOK {
		t.Errorf("exit code with only a non-essential failure = %d, want 0", got)
	}
	checks[1].Essential = true
	if got := rep.ExitCode(); got != ExitFailed {
		t.Errorf("exit code with an essential failure = %d, want 1", got)
	}

	var buf bytes.Buffer
	if err := rep.WriteJSON(&buf); err != nil {
		t.Fatal(err)
	}
	// Decode into generic maps: the JSON field names and types are public.
	var doc struct {
		Results []map[string]any `json:"results"`
	}
	if err := json.Unmarshal(buf.Bytes(), &doc); err != nil {
		t.Fatalf("invalid JSON: %v\n%s", err, buf.String())
	}
	if len(doc.Results) != 2 {
		t.Fatalf("JSON has %d results", len(doc.Results))
	}
	r0 := doc.Results[0]
	for _, key := range []string{"profile", "check", "kind", "host", "address", "port", "protocol",
		"essential", "up", "reason", "phase", "duration_seconds", "detail", "facts"} {
		if _, ok := r0[key]; !ok {
			t.Errorf("JSON result lacks %q", key)
		}
	}
	if port, ok := r0["port"].(float64); !ok || int(port) != open {
		t.Errorf("port = %#v, want the number %d", r0["port"], open)
	}
	if up, ok := r0["up"].(bool); !ok || !up {
		t.Errorf("up = %#v, want true", r0["up"])
	}
	if r0["address"] != "127.0.0.1" || r0["reason"] != "ok" {
		t.Errorf("address/reason = %v/%v", r0["address"], r0["reason"])
	}
	if _, ok := r0["facts"].(map[string]any); !ok {
		t.Errorf("facts = %#v, want an object", r0["facts"])
	}
}

func TestRunPacesChecksOfOneHost(t *testing.T) {
	var mu sync.Mutex
	starts := map[string][]time.Time{}
	run := func(_ context.Context, c *probe.Check) []probe.Result {
		mu.Lock()
		starts[c.Host] = append(starts[c.Host], time.Now())
		mu.Unlock()
		return []probe.Result{{Check: c, Up: true, Reason: probe.ReasonOK}}
	}
	var checks []*probe.Check
	for port := 1; port <= 5; port++ {
		checks = append(checks, &probe.Check{Name: "range", Kind: "tcp", Host: "h1", Port: port})
	}
	checks = append(checks, &probe.Check{Name: "other", Kind: "tcp", Host: "h2", Port: 1})
	spacing := scheduler.DefaultPerHostSpacing
	results := Run(context.Background(), checks, Options{Run: run}).Results
	if len(results) != 6 {
		t.Fatalf("got %d results", len(results))
	}
	for i, r := range results[:5] {
		if r.Check.Port != i+1 {
			t.Errorf("result %d is for port %d: order not kept", i, r.Check.Port)
		}
	}
	h1 := starts["h1"]
	if len(h1) != 5 {
		t.Fatalf("h1 probed %d times", len(h1))
	}
	first, last := h1[0], h1[0]
	for _, s := range h1 {
		if s.Before(first) {
			first = s
		}
		if s.After(last) {
			last = s
		}
	}
	// Five starts spaced 100ms apart span at least 4 spacings (minus timer slack).
	if span := last.Sub(first); span < 4*spacing-10*time.Millisecond {
		t.Errorf("5 probes of one host started within %s; want them paced %s apart", span, spacing)
	}
}

func TestRunStopsOnCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	checks := []*probe.Check{{Name: "x", Kind: "tcp", Host: "h", Port: 1}}
	out := Run(ctx, checks, Options{Run: func(context.Context, *probe.Check) []probe.Result {
		t.Error("a cancelled run must not probe")
		return nil
	}})
	results := out.Results
	if len(results) != 1 || results[0].Up || results[0].Reason != probe.ReasonSkipped || results[0].Detail != NotRunDetail {
		t.Fatalf("results = %+v", results)
	}
	if len(out.NotRun) != 1 || out.NotRun[0] != checks[0] {
		t.Fatalf("not run = %v", out.NotRun)
	}
	rep := NewReport(out, nil)
	if !rep.NotRun(results[0]) || rep.ExitCode() != ExitInterrupted {
		t.Errorf("not run %v, exit code %d, want %d", rep.NotRun(results[0]), rep.ExitCode(), ExitInterrupted)
	}
}

func TestRunPacesUDPToOneHostASecondApart(t *testing.T) {
	var mu sync.Mutex
	starts := map[string][]time.Time{} // by protocol and host
	run := func(_ context.Context, c *probe.Check) []probe.Result {
		started := time.Now()
		mu.Lock()
		starts[c.Network+" "+c.Host] = append(starts[c.Network+" "+c.Host], started)
		mu.Unlock()
		return []probe.Result{{Check: c, Reason: probe.ReasonRefused}}
	}
	var checks []*probe.Check
	for port := 3478; port < 3481; port++ {
		checks = append(checks, &probe.Check{Name: "media", Kind: "udp", Host: "h1", Port: port, Network: "udp", Range: "3478-3480"})
	}
	checks = append(checks,
		&probe.Check{Name: "web", Kind: "tcp", Host: "h1", Port: 443, Network: "tcp"},
		&probe.Check{Name: "web2", Kind: "tcp", Host: "h1", Port: 444, Network: "tcp"},
		&probe.Check{Name: "other", Kind: "udp", Host: "h2", Port: 3478, Network: "udp"})
	began := time.Now()
	results := Run(context.Background(), checks, Options{Run: run}).Results // default spacings
	took := time.Since(began)
	if len(results) != len(checks) {
		t.Fatalf("got %d results for %d checks", len(results), len(checks))
	}
	udp := starts["udp h1"]
	if len(udp) != 3 {
		t.Fatalf("h1 got %d UDP probes, want 3 (a range is swept in full)", len(udp))
	}
	for i := 1; i < len(udp); i++ {
		// Each start is booked 1s after the previous real start; allow 10ms
		// for preemption between that and the call to Run.
		if gap := udp[i].Sub(udp[i-1]); gap < time.Second-10*time.Millisecond {
			t.Errorf("UDP starts %d and %d to one host %v apart, want >= 1s", i-1, i, gap)
		}
	}
	if took > 2900*time.Millisecond {
		t.Errorf("three UDP probes to one host took %v; other hosts and TCP must not add to it", took)
	}
	// TCP to the same host and UDP to another host are not held back.
	for _, lane := range []string{"tcp h1", "udp h2"} {
		if len(starts[lane]) == 0 || starts[lane][0].Sub(began) > 500*time.Millisecond {
			t.Errorf("%s waited behind the UDP pacing of h1", lane)
		}
	}
	if tcp := starts["tcp h1"]; len(tcp) == 2 && tcp[1].Sub(tcp[0]) < scheduler.DefaultPerHostSpacing-10*time.Millisecond {
		t.Errorf("TCP starts %v apart, want >= %v", tcp[1].Sub(tcp[0]), scheduler.DefaultPerHostSpacing)
	}
}

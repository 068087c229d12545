//go:build linux

package main

import (
	"fmt"
	"math"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
)

// TestReloadUnderLoad reloads a busy agent 48 times, valid and invalid
// configurations alternating, through SIGHUP and POST /-/reload, and checks
// that the reload metric follows every outcome, that no check stops running
// (lost runs), that no check runs more often than its interval allows
// (doubled runs: a reload must not restart unchanged checks), and that no
// series of a removed or changed check survives a reload.
func TestReloadUnderLoad(t *testing.T) {
	bin := buildProbe(t)

	// 24 TCP checks, 3 per loopback address: the scheduler spaces TCP starts
	// towards one host by 100ms, which 3 checks a second stay well under.
	const hosts, perHost = 8, 3
	const interval = time.Second
	type tcpTarget struct {
		name string
		l    *countingListener
	}
	var tcps []tcpTarget
	for h := range hosts {
		for k := range perHost {
			l := listenCounting(t, fmt.Sprintf("127.0.0.%d:0", 2+h), false)
			defer l.stop()
			tcps = append(tcps, tcpTarget{fmt.Sprintf("t%02d", h*perHost+k), l})
		}
	}
	// The SIP check changes transport between the two configurations: UDP
	// (nobody answers: a timeout) and TCP (accepted and closed) on one port.
	sipTCP := listenCounting(t, "127.0.0.20:0", false)
	defer sipTCP.stop()
	sipPort := sipTCP.Addr().(*net.TCPAddr).Port
	sipUDP, err := net.ListenPacket("udp", fmt.Sprintf("127.0.0.20:%d", sipPort))
	if err != nil {
		t.Fatalf("UDP on the SIP port: %v", err)
	}
	defer sipUDP.Close()
	onlyA := listenCounting(t, "127.0.0.21:0", false)
	defer onlyA.stop()
	onlyB := listenCounting(t, "127.0.0.22:0", false)
	defer onlyB.stop()

	portOf := func(l net.Listener) int { return l.Addr().(*net.TCPAddr).Port }
	// config writes a valid configuration; variant A has the SIP check over
	// UDP and the check only-a, B the SIP check over TCP and only-b. The TCP
	// checks are the same in both, so reloads must leave their schedule be.
	config := func(variant string) (body string, want map[string]string) {
		want = map[string]string{}
		var b strings.Builder
		b.WriteString("defaults: {interval: 1s, timeout: 500ms}\nchecks:\n")
		for _, c := range tcps {
			fmt.Fprintf(&b, "  - {name: %s, kind: tcp, host: %s, port: %d}\n", c.name, c.l.Addr().(*net.TCPAddr).IP, portOf(c.l))
			want[c.name] = "tcp"
		}
		extra, proto := onlyA, "udp"
		if variant == "B" {
			extra, proto = onlyB, "tcp"
		}
		name := "only-" + strings.ToLower(variant)
		fmt.Fprintf(&b, "  - {name: %s, kind: tcp, host: 127.0.0.%d, port: %d}\n", name, map[string]int{"A": 21, "B": 22}[variant], portOf(extra))
		want[name] = "tcp"
		fmt.Fprintf(&b, "  - {name: sip, kind: sip, host: 127.0.0.20, port: %d, protocol: %s}\n", sipPort, proto)
		want["sip"] = proto
		return b.String(), want
	}

	dir := t.TempDir()
	bodyA, wantA := config("A")
	cfg := writeFile(t, dir, "c.yml", bodyA)
	p := startAgentProc(t, bin, cfg)

	// stale fails on any series of a check the running configuration does
	// not have, or of a check whose transport changed.
	stale := func(fams map[string]*dto.MetricFamily, want map[string]string, when string) {
		t.Helper()
		for name, f := range fams {
			for _, m := range f.Metric {
				check := labelOf(m, "check")
				if check == "" {
					continue
				}
				proto, ok := want[check]
				if got := labelOf(m, "protocol"); !ok || (got != "" && got != proto) {
					t.Fatalf("%s: stale series %s{check=%q, protocol=%q}", when, name, check, got)
				}
			}
		}
	}
	// waitRuns waits (at most 15s) until every TCP check has completed more
	// runs than in prev; a check that does not is lost.
	waitRuns := func(prev map[string]float64, when string) map[string]float64 {
		t.Helper()
		deadline := time.Now().Add(15 * time.Second)
		for {
			runs := runsByCheck(p.scrape(t))
			var behind []string
			for _, c := range tcps {
				if runs[c.name] <= prev[c.name] {
					behind = append(behind, fmt.Sprintf("%s (%v runs)", c.name, runs[c.name]))
				}
			}
			if len(behind) == 0 {
				return runs
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: checks stopped running (lost runs): %s\n%s", when, strings.Join(behind, ", "), tail(p.logs.String()))
			}
			time.Sleep(200 * time.Millisecond)
		}
	}

	// Warm up: every TCP check has run once (first runs spread over 5s).
	runs := waitRuns(map[string]float64{}, "warm-up")
	time.Sleep(interval) // so no first run lands inside the window
	start := time.Now()
	startAccepts := make([]int64, len(tcps))
	for i, c := range tcps {
		startAccepts[i] = c.l.accepts.Load()
	}
	startRuns := runsByCheck(p.scrape(t))

	const reloads = 48
	want := wantA
	for i := range reloads {
		// Invalid first: the agent started with a valid configuration, and
		// the gauge must flip at every reload.
		valid := i%2 == 1
		variant := "A"
		if i%4 == 1 {
			variant = "B"
		}
		bySignal := (i/4)%2 == 0
		method := "POST"
		if bySignal {
			method = "SIGHUP"
		}
		var nextWant map[string]string
		if valid {
			var body string
			body, nextWant = config(variant)
			writeFile(t, dir, "c.yml", body)
		} else {
			writeFile(t, dir, "c.yml", invalidConfigs[(i/2)%len(invalidConfigs)])
		}
		step := fmt.Sprintf("reload %d (%s, %s)", i+1, method, map[bool]string{true: "valid " + variant, false: "invalid"}[valid])
		fams, err := p.reload(bySignal, valid)
		if err != nil {
			t.Fatalf("%s: %v", step, err)
		}
		if valid {
			want = nextWant
		}
		stale(fams, want, step)
		time.Sleep(250 * time.Millisecond)
		stale(p.scrape(t), want, step+", 250ms later")
		if i%8 == 7 {
			runs = waitRuns(runs, step)
		}
	}

	// Doubled runs: over the window each check may run at most once per
	// interval, plus one for the window's edges, plus slack for a run delayed
	// by load followed by one on time; a reload that restarted an unchanged
	// check (24 valid reloads here) would add up to one run per reload.
	// Lost runs: at least half the runs the interval asks for, a bound a
	// loaded machine keeps and a stopped check does not.
	elapsed := time.Since(start)
	endAccepts := make([]int64, len(tcps))
	for i, c := range tcps {
		endAccepts[i] = c.l.accepts.Load()
	}
	endRuns := runsByCheck(p.scrape(t))
	maxRuns := int64(math.Ceil(elapsed.Seconds()/interval.Seconds())) + 2
	minRuns := int64(elapsed.Seconds()/interval.Seconds()/2) - 1
	var counts []int64
	for i, c := range tcps {
		n := endAccepts[i] - startAccepts[i]
		counts = append(counts, n)
		if n > maxRuns {
			t.Errorf("%s: %d connections in %s at a %s interval (at most %d): doubled runs", c.name, n, elapsed.Round(time.Millisecond), interval, maxRuns)
		}
		if n < minRuns {
			t.Errorf("%s: %d connections in %s at a %s interval (at least %d): lost runs", c.name, n, elapsed.Round(time.Millisecond), interval, minRuns)
		}
		// The counter agrees with what the listener saw: the scrapes come a
		// little after the listener's counts, and a run may be split
		// between connect and record at either edge.
		lo, hi := n-2, c.l.accepts.Load()-startAccepts[i]+2
		if d := int64(endRuns[c.name] - startRuns[c.name]); d < lo || d > hi {
			t.Errorf("%s: runs_total grew by %d while the listener accepted %d..%d connections", c.name, d, n, hi-2)
		}
	}
	slices.Sort(counts)
	t.Logf("%d reloads in %s; connections per TCP check: min %d, max %d (bounds %d..%d)",
		reloads, elapsed.Round(time.Millisecond), counts[0], counts[len(counts)-1], minRuns, maxRuns)

	// The SIP check runs over the final transport.
	deadline := time.Now().Add(15 * time.Second)
	for {
		fams := p.scrape(t)
		stale(fams, want, "end")
		if f := fams["connprobe_check_up"]; f != nil && hasCheck(f, "sip", want["sip"]) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no connprobe_check_up for sip over %s after the reloads", want["sip"])
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func hasCheck(f *dto.MetricFamily, check, proto string) bool {
	for _, m := range f.Metric {
		if labelOf(m, "check") == check && labelOf(m, "protocol") == proto {
			return true
		}
	}
	return false
}

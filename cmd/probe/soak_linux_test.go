//go:build linux

package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// soakFor is how long TestSoak runs the agent; CONNPROBE_SOAK (a Go
// duration, at least 30s) changes it for a longer run by hand.
const soakFor = 2 * time.Minute

// soakSample is the agent's footprint at one moment.
type soakSample struct {
	at         time.Duration
	goroutines int // go_goroutines
	threads    int // Threads in /proc/<pid>/status
	fds        int // entries of /proc/<pid>/fd
	heap       int // go_memstats_heap_inuse_bytes
}

// TestSoak runs the agent for two minutes against loopback listeners that
// open and close on a schedule (refused, reset, silent servers that let
// checks time out), reloading it every few seconds, and asserts that its
// goroutines, descriptors and heap stay flat: the median of the last third
// of the samples within a bound of the median of the first third.
func TestSoak(t *testing.T) {
	if testing.Short() {
		t.Skip("the soak test runs for two minutes; skipped under -short")
	}
	duration := soakFor
	if s := os.Getenv("CONNPROBE_SOAK"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d < 30*time.Second {
			t.Fatalf("CONNPROBE_SOAK=%q: want a duration of at least 30s", s)
		}
		duration = d
	}
	bin := buildProbe(t)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()

	// Ten flapping listeners, each on its own loopback address: 0-5 close
	// what they accept at once (tcp succeeds, ssh reads EOF), 6-9 hold it
	// silent (tls and ssh time out). Each is open 1.5-2.5s, then closed
	// (refused) 1-1.5s, on its own rhythm.
	const flappers = 10
	type flapper struct {
		host string
		port int
		hold bool
	}
	var fl []flapper
	for i := range flappers {
		host := fmt.Sprintf("127.0.0.%d", 40+i)
		l, err := net.Listen("tcp", host+":0")
		if err != nil {
			t.Fatal(err)
		}
		f := flapper{host: host, port: l.Addr().(*net.TCPAddr).Port, hold: i >= 6}
		fl = append(fl, f)
		open := 1500*time.Millisecond + time.Duration(i%3)*500*time.Millisecond
		closed := time.Second + time.Duration(i%2)*500*time.Millisecond
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := serveCounting(l, f.hold, nil)
			for {
				select {
				case <-ctx.Done():
					c.stop()
					return
				case <-time.After(open):
				}
				c.stop()
				select {
				case <-ctx.Done():
					return
				case <-time.After(closed):
				}
				// Reopen on the same port; retry while the port is
				// taken (bounded by the test's end).
				for {
					l, err := net.Listen("tcp", net.JoinHostPort(f.host, strconv.Itoa(f.port)))
					if err == nil {
						serveCounting(l, f.hold, c)
						break
					}
					select {
					case <-ctx.Done():
						return
					case <-time.After(100 * time.Millisecond):
					}
				}
			}
		}()
	}
	udpClosed := freeUDPPort(t, "127.0.0.60")

	// Variant A has every check; B drops the ssh checks of the odd
	// listeners and changes the tls timeouts (those checks are re-armed).
	config := func(variant string) string {
		var b strings.Builder
		b.WriteString("defaults: {interval: 1s, timeout: 700ms}\nchecks:\n")
		for i, f := range fl {
			if f.hold {
				timeout := "700ms"
				if variant == "B" {
					timeout = "600ms"
				}
				fmt.Fprintf(&b, "  - {name: tls-%d, kind: tls, host: %s, port: %d, timeout: %s}\n", i, f.host, f.port, timeout)
			} else {
				fmt.Fprintf(&b, "  - {name: tcp-%d, kind: tcp, host: %s, port: %d}\n", i, f.host, f.port)
			}
			if variant == "A" || i%2 == 0 {
				fmt.Fprintf(&b, "  - {name: ssh-%d, kind: ssh, host: %s, port: %d}\n", i, f.host, f.port)
			}
		}
		fmt.Fprintf(&b, "  - {name: udp-closed, kind: udp, host: 127.0.0.60, port: %d, send: x}\n", udpClosed)
		return b.String()
	}
	cfg := writeFile(t, t.TempDir(), "c.yml", config("A"))
	p := startAgentProc(t, bin, cfg)

	// A reload every 2s: invalid, valid B, invalid, valid A, ... by SIGHUP
	// and POST in turn. About 50 reloads in 2 minutes, so that one
	// goroutine or descriptor leaked per reload exceeds the bounds below.
	wg.Add(1)
	reloadErr := make(chan string, 1)
	var reloads atomic.Int64
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-ctx.Done():
				return
			case <-time.After(2 * time.Second):
			}
			valid := i%2 == 1 // invalid first: the gauge flips at every reload
			body := invalidConfigs[(i/2)%len(invalidConfigs)]
			if valid {
				body = config(map[bool]string{true: "B", false: "A"}[i%4 == 1])
			}
			err := os.WriteFile(cfg, []byte(body), 0o600)
			if err == nil {
				_, err = p.reload(i%3 != 0, valid)
			}
			if err != nil {
				reloadErr <- fmt.Sprintf("reload %d: %v", i+1, err)
				return
			}
			reloads.Add(1)
		}
	}()

	const warmUp = 20 * time.Second
	const every = 3 * time.Second
	start := time.Now()
	var samples []soakSample
	for time.Since(start) < duration {
		select {
		case msg := <-reloadErr:
			t.Fatal(msg)
		case <-time.After(every):
		}
		if time.Since(start) < warmUp {
			continue
		}
		fams := p.scrape(t)
		g, okG := single(fams, "go_goroutines")
		h, okH := single(fams, "go_memstats_heap_inuse_bytes")
		if !okG || !okH {
			t.Fatal("/metrics lacks go_goroutines or go_memstats_heap_inuse_bytes")
		}
		samples = append(samples, soakSample{
			at: time.Since(start), goroutines: int(g), heap: int(h),
			threads: procThreads(t, p.pid()), fds: p.openFDs(t),
		})
	}
	select {
	case msg := <-reloadErr:
		t.Fatal(msg)
	default:
	}
	if len(samples) < 9 {
		t.Fatalf("only %d samples in %s", len(samples), duration)
	}
	for _, s := range samples {
		t.Logf("t=%3.0fs goroutines %4d threads %3d fds %4d heap_inuse %6.2f MiB",
			s.at.Seconds(), s.goroutines, s.threads, s.fds, float64(s.heap)/(1<<20))
	}
	third := len(samples) / 3
	first, last := samples[:third], samples[len(samples)-third:]
	med := func(ss []soakSample, f func(soakSample) int) int {
		v := make([]int, len(ss))
		for i, s := range ss {
			v[i] = f(s)
		}
		slices.Sort(v)
		return v[len(v)/2]
	}
	type bound struct {
		name  string
		f     func(soakSample) int
		limit func(first int) int
		unit  string
	}
	for _, b := range []bound{
		{"goroutines", func(s soakSample) int { return s.goroutines }, func(v int) int { return v + 20 }, ""},
		{"threads", func(s soakSample) int { return s.threads }, func(v int) int { return v + 10 }, ""},
		{"fds", func(s soakSample) int { return s.fds }, func(v int) int { return v + 10 }, ""},
		{"heap_inuse", func(s soakSample) int { return s.heap }, func(v int) int { return v*3/2 + 8<<20 }, " bytes"},
	} {
		a, z := med(first, b.f), med(last, b.f)
		t.Logf("%s: first-third median %d%s, last-third median %d%s (limit %d)", b.name, a, b.unit, z, b.unit, b.limit(a))
		if z > b.limit(a) {
			t.Errorf("%s grew from %d to %d over %s (limit %d): a leak", b.name, a, z, duration, b.limit(a))
		}
	}
	// The agent was busy all along: every check kept running.
	fams := p.scrape(t)
	runs := runsByCheck(fams)
	for _, name := range []string{"tcp-0", "tls-6", "ssh-0", "udp-closed"} {
		if runs[name] < duration.Seconds()/4 {
			t.Errorf("%s completed %v runs in %s", name, runs[name], duration)
		}
	}
	t.Logf("soak of %s: %d samples, %d reloads; runs of tcp-0 %v, tls-6 %v, ssh-0 %v, udp-closed %v",
		duration, len(samples), reloads.Load(), runs["tcp-0"], runs["tls-6"], runs["ssh-0"], runs["udp-closed"])
}

// procThreads is the Threads line of /proc/<pid>/status.
func procThreads(t *testing.T, pid int) int {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "Threads:"); ok {
			n, err := strconv.Atoi(strings.TrimSpace(v))
			if err != nil {
				t.Fatalf("/proc/%d/status: %q", pid, line)
			}
			return n
		}
	}
	t.Fatalf("/proc/%d/status has no Threads line", pid)
	return 0
}

// freeUDPPort is a UDP port on host that nothing listens on (so datagrams
// to it are refused with ICMP port unreachable).
func freeUDPPort(t *testing.T, host string) int {
	t.Helper()
	c, err := net.ListenPacket("udp", host+":0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port
}

// openFDs counts the agent's open descriptors.
func (p *agentProc) openFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", p.pid()))
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

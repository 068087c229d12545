package scheduler

import (
	"context"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/connprobe/connprobe/probe"
)

// sinkLog records what RunOnce reports, with the time each check finished.
type sinkLog struct {
	mu       sync.Mutex
	order    []*probe.Check
	finished map[*probe.Check]time.Time
	results  map[*probe.Check][]probe.Result
}

func newSinkLog() *sinkLog {
	return &sinkLog{finished: map[*probe.Check]time.Time{}, results: map[*probe.Check][]probe.Result{}}
}

func (l *sinkLog) sink(c *probe.Check, rs []probe.Result) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.order = append(l.order, c)
	l.finished[c] = time.Now()
	l.results[c] = rs
}

// udpEcho serves a UDP echo on addr until the test ends.
func udpEcho(t *testing.T, addr string) int {
	t.Helper()
	pc, err := net.ListenPacket("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 2048)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			pc.WriteTo(buf[:n], from)
		}
	}()
	return pc.LocalAddr().(*net.UDPAddr).Port
}

// tcpListen accepts (and closes) connections on addr until the test ends.
func tcpListen(t *testing.T, addr string) int {
	t.Helper()
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	return l.Addr().(*net.TCPAddr).Port
}

// A host's 1s UDP pacing must not hold a probe slot: with one slot in all,
// the TCP checks of three other hosts finish while the UDP sweep of a fourth
// still waits for its pacing. Before the fix, the second UDP probe took the
// only slot and then slept 1s in it, stalling every other host.
func TestPacingWaitHoldsNoSlot(t *testing.T) {
	var checks []*probe.Check
	const udpHost = "127.0.0.2"
	for range 4 {
		port := udpEcho(t, udpHost+":0")
		checks = append(checks, &probe.Check{Name: "media", Kind: "udp", Host: udpHost, Port: port, Network: "udp",
			Range: "media", Timeout: 2 * time.Second, Essential: true, UDP: &probe.UDPOptions{Payload: "echo"},
			IPFamily: probe.FamilyIPv4})
	}
	var tcpChecks []*probe.Check
	for _, host := range []string{"127.0.0.3", "127.0.0.4", "127.0.0.5"} {
		for range 4 {
			port := tcpListen(t, host+":0")
			c := &probe.Check{Name: "web", Kind: "tcp", Host: host, Port: port, Network: "tcp", Timeout: 2 * time.Second,
				IPFamily: probe.FamilyIPv4}
			tcpChecks = append(tcpChecks, c)
		}
	}
	// The UDP checks come first, so the UDP lane asks for the slot first.
	checks = append(checks, tcpChecks...)

	log := newSinkLog()
	s := New(Options{MaxConcurrent: 1, Sink: log.sink}) // real probe.Run, default pacing
	began := time.Now()
	notRun := s.RunOnce(context.Background(), checks)
	took := time.Since(began)
	if len(notRun) != 0 {
		t.Fatalf("%d checks not run", len(notRun))
	}
	for _, c := range checks {
		rs := log.results[c]
		if len(rs) != 1 || !rs[0].Up {
			t.Fatalf("%s %s:%d: %+v", c.Kind, c.Host, c.Port, rs)
		}
	}
	// Four UDP probes to one host are paced 1s apart: the sweep takes >= 3s.
	if took < 3*time.Second-50*time.Millisecond {
		t.Errorf("the UDP sweep took %v, want >= 3s (paced 1s per start)", took)
	}
	// Each TCP host's four checks need about 300ms (100ms pacing on their
	// own hosts); 1.5s leaves a loaded machine ample margin. With the slot
	// held while pacing, each UDP probe sits in the only slot for 1s ahead
	// of the next TCP probe of every host, and the TCP sweeps end after 3s.
	for _, c := range tcpChecks {
		if at := log.finished[c].Sub(began); at > 1500*time.Millisecond {
			t.Errorf("TCP check of %s finished %v after the start: it waited behind UDP pacing of another host", c.Host, at)
		}
	}
}

// The same property in the agent's schedule: a UDP range group's pacing
// does not keep the only slot from another host's check.
func TestScheduledPacingWaitHoldsNoSlot(t *testing.T) {
	rec := newRecorder(0)
	// PerHostSpacing 1ms: at the default 100ms the TCP check could run at
	// most about 20 times in 2s however free its slot, the threshold below.
	s := New(Options{Run: rec.run, MaxConcurrent: 1, UDPHostSpacing: 400 * time.Millisecond, PerHostSpacing: time.Millisecond})
	udp := rangeChecks(4, "192.0.2.20", "udp", 50*time.Millisecond)
	tcp := testCheck("t", "192.0.2.21", 20*time.Millisecond)
	s.Apply(append(udp, tcp))
	s.Start(context.Background())
	defer s.Stop()
	// In 2s the UDP group starts at most six probes, 400ms apart. Were the
	// slot held while pacing, the TCP check would get about as few; free,
	// it runs every 20ms (100 times). 20 leaves a machine busy with other
	// test packages (CI runs two at once) five times the margin.
	time.Sleep(2 * time.Second)
	if n := rec.count(tcp.ID()); n < 20 {
		t.Errorf("the TCP check ran %d times in 2s: it waited behind another host's UDP pacing", n)
	}
}

func TestRunOnceSweepsEveryCheckOnceInLaneOrder(t *testing.T) {
	rec := newRecorder(0)
	log := newSinkLog()
	var started []string
	var mu sync.Mutex
	s := New(Options{Run: rec.run, Sink: log.sink, PerHostSpacing: time.Millisecond, RangeSample: 2,
		Started: func(c *probe.Check) {
			mu.Lock()
			started = append(started, fmt.Sprintf("%s:%d", c.Host, c.Port))
			mu.Unlock()
		}})
	checks := rangeChecks(10, "192.0.2.30", "tcp", time.Hour) // more than RangeSample: swept fully
	checks = append(checks, testCheck("x", "192.0.2.31", time.Hour))
	if notRun := s.RunOnce(context.Background(), checks); len(notRun) != 0 {
		t.Fatalf("not run: %v", notRun)
	}
	if len(log.order) != len(checks) {
		t.Fatalf("%d results for %d checks", len(log.order), len(checks))
	}
	for _, c := range checks {
		if n := rec.count(c.ID()); n != 1 {
			t.Errorf("%s ran %d times, want once", c.ID(), n)
		}
	}
	var lane []string
	for _, s := range started {
		if len(s) > 10 && s[:10] == "192.0.2.30" {
			lane = append(lane, s)
		}
	}
	for i, c := range checks[:10] {
		if want := fmt.Sprintf("%s:%d", c.Host, c.Port); i >= len(lane) || lane[i] != want {
			t.Fatalf("lane started in order %v, want port order", lane)
		}
	}
}

// Cancelling a run reports what never ran, and what was cut short, without
// probing anything more.
func TestRunOnceCancelReportsNotRun(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var mu sync.Mutex
	runs := 0
	run := func(ctx context.Context, c *probe.Check) []probe.Result {
		mu.Lock()
		runs++
		first := runs == 1
		mu.Unlock()
		if first {
			cancel()
			<-ctx.Done()
			return []probe.Result{{Check: c, Reason: probe.ReasonTimeout}}
		}
		return []probe.Result{{Check: c, Up: true, Reason: probe.ReasonOK}}
	}
	log := newSinkLog()
	s := New(Options{Run: run, Sink: log.sink, UDPHostSpacing: time.Hour})
	checks := rangeChecks(5, "192.0.2.40", "udp", time.Hour)
	notRun := s.RunOnce(ctx, checks)
	if len(notRun) != len(checks) {
		t.Fatalf("not run %d of %d (the first was cut short, the rest never started)", len(notRun), len(checks))
	}
	for i, c := range notRun {
		if c != checks[i] {
			t.Errorf("not run out of order at %d", i)
		}
	}
	if runs != 1 || len(log.order) != 0 {
		t.Errorf("%d runs and %d results after cancel", runs, len(log.order))
	}

	// An already cancelled run probes nothing.
	if notRun := s.RunOnce(ctx, checks[:1]); len(notRun) != 1 || runs != 1 {
		t.Errorf("cancelled run: not run %d, runs %d", len(notRun), runs)
	}
}

// Probes that sent nothing (the name did not resolve) give their pacing
// back: 20 UDP checks of an unresolvable host do not take 20 seconds.
func TestRunOnceSkipsPacingForProbesThatSentNothing(t *testing.T) {
	var mu sync.Mutex
	runs := 0
	run := func(_ context.Context, c *probe.Check) []probe.Result {
		mu.Lock()
		runs++
		mu.Unlock()
		return []probe.Result{{Check: c, Reason: probe.ReasonDNS, Phase: probe.PhaseDNS}}
	}
	s := New(Options{Run: run}) // default pacing: 1s per UDP start
	checks := rangeChecks(20, "nowhere.invalid", "udp", time.Hour)
	began := time.Now()
	if notRun := s.RunOnce(context.Background(), checks); len(notRun) != 0 {
		t.Fatalf("not run: %d", len(notRun))
	}
	if took := time.Since(began); took > 2*time.Second || runs != 20 {
		t.Errorf("20 DNS failures took %v (%d runs); pacing was not skipped", took, runs)
	}

	// The same with the real probe: the name is looked up at a loopback DNS
	// server port where nothing listens (the lookup fails at once), once for
	// the whole run.
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadDNS := pc.LocalAddr().String()
	pc.Close()
	checks = rangeChecks(20, "nowhere.test", "udp", time.Hour)
	for _, c := range checks {
		c.DNSServer, c.Timeout, c.IPFamily = deadDNS, 2*time.Second, probe.FamilyIPv4
		c.UDP = &probe.UDPOptions{Payload: "echo"}
	}
	log := newSinkLog()
	s = New(Options{Sink: log.sink})
	began = time.Now()
	if notRun := s.RunOnce(context.Background(), checks); len(notRun) != 0 {
		t.Fatalf("not run: %d", len(notRun))
	}
	if took := time.Since(began); took > 3*time.Second {
		t.Errorf("20 real DNS failures took %v; want well under the 19s of paced starts", took)
	}
	for _, c := range checks {
		if rs := log.results[c]; len(rs) != 1 || rs[0].Reason != probe.ReasonDNS {
			t.Fatalf("%d: %+v", c.Port, rs)
		}
	}

	// A probe that did send keeps its pacing.
	run2 := func(_ context.Context, c *probe.Check) []probe.Result {
		return []probe.Result{{Check: c, Address: "192.0.2.50", Reason: probe.ReasonNoReply}}
	}
	s = New(Options{Run: run2, UDPHostSpacing: 300 * time.Millisecond})
	began = time.Now()
	s.RunOnce(context.Background(), rangeChecks(3, "192.0.2.50", "udp", time.Hour))
	if took := time.Since(began); took < 600*time.Millisecond-20*time.Millisecond {
		t.Errorf("3 paced probes took %v, want >= 600ms", took)
	}
}

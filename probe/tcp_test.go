package probe

import (
	"context"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// lbListenTCP starts a TCP listener on addr (a loopback "host:0") that accepts
// and closes every connection. It returns the port; the listener is closed at
// the end of the test.
func lbListenTCP(t testing.TB, network, addr string) int {
	t.Helper()
	ln, err := net.Listen(network, addr)
	if err != nil {
		t.Fatalf("listen %s %s: %v", network, addr, err)
	}
	lbServe(t, ln, func(c net.Conn) { c.Close() })
	return ln.Addr().(*net.TCPAddr).Port
}

// lbServe runs handle for every connection accepted on ln until the test ends,
// then closes ln and waits (bounded) for the handlers. Handlers must return
// once their connection is closed; lbServe closes the connections it handed
// out when the test ends.
func lbServe(t testing.TB, ln net.Listener, handle func(net.Conn)) {
	t.Helper()
	var (
		mu    sync.Mutex
		conns []net.Conn
		wg    sync.WaitGroup
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				handle(c)
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		done := make(chan struct{})
		go func() { wg.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Error("test server goroutines did not stop within 5s")
		}
	})
}

// lbFreePort returns a loopback port that nothing listens on (a listener was
// opened and closed on it).
func lbFreePort(t testing.TB, network, addr string) int {
	t.Helper()
	ln, err := net.Listen(network, addr)
	if err != nil {
		t.Fatalf("listen %s %s: %v", network, addr, err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	return port
}

// lbIPv6Loopback skips the test when ::1 cannot be listened on.
func lbIPv6Loopback(t testing.TB) {
	t.Helper()
	ln, err := net.Listen("tcp6", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	ln.Close()
}

// lbRun1 runs c and requires exactly one result.
func lbRun1(t testing.TB, c *Check) Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rs := Run(ctx, c)
	if len(rs) != 1 {
		t.Fatalf("Run returned %d results, want 1: %+v", len(rs), rs)
	}
	return rs[0]
}

// lbExpect checks the verdict of r and that the detail contains every part.
func lbExpect(t testing.TB, r Result, up bool, reason Reason, phase Phase, detailParts ...string) {
	t.Helper()
	if r.Up != up || r.Reason != reason || r.Phase != phase {
		t.Errorf("got up=%v reason=%q phase=%q, want up=%v reason=%q phase=%q (detail: %s)",
			r.Up, r.Reason, r.Phase, up, reason, phase, r.Detail)
	}
	for _, p := range detailParts {
		if !strings.Contains(r.Detail, p) {
			t.Errorf("detail %q does not contain %q", r.Detail, p)
		}
	}
}

func TestTCPOpenPortIPv4(t *testing.T) {
	port := lbListenTCP(t, "tcp4", "127.0.0.1:0")
	r := lbRun1(t, &Check{Name: "t", Kind: "tcp", Host: "127.0.0.1", Port: port, Timeout: 3 * time.Second})
	lbExpect(t, r, true, ReasonOK, PhaseConnect, "connected to 127.0.0.1:"+strconv.Itoa(port))
	if r.Address != "127.0.0.1" || r.IPFamily != FamilyIPv4 {
		t.Errorf("address %q family %q, want 127.0.0.1 ipv4", r.Address, r.IPFamily)
	}
	d, ok := r.TimingOf(PhaseConnect)
	if !ok || d <= 0 {
		t.Errorf("connect timing = %v, %v; want > 0", d, ok)
	}
	if _, ok := r.TimingOf(PhaseDNS); ok {
		t.Error("an IP literal has a dns timing")
	}
	if r.Facts.TLSFacts != nil {
		t.Errorf("tcp result carries TLS facts: %+v", r.Facts.TLSFacts)
	}
}

func TestTCPClosedPortIPv4(t *testing.T) {
	port := lbFreePort(t, "tcp4", "127.0.0.1:0")
	r := lbRun1(t, &Check{Name: "t", Kind: "tcp", Host: "127.0.0.1", Port: port, Timeout: 3 * time.Second})
	lbExpect(t, r, false, ReasonRefused, PhaseConnect, "refused")
	if r.Address != "127.0.0.1" || r.IPFamily != FamilyIPv4 {
		t.Errorf("address %q family %q, want 127.0.0.1 ipv4", r.Address, r.IPFamily)
	}
}

func TestTCPIPv6Loopback(t *testing.T) {
	lbIPv6Loopback(t)
	t.Run("open", func(t *testing.T) {
		port := lbListenTCP(t, "tcp6", "[::1]:0")
		r := lbRun1(t, &Check{Name: "t", Kind: "tcp", Host: "::1", Port: port, Timeout: 3 * time.Second})
		lbExpect(t, r, true, ReasonOK, PhaseConnect, "connected to [::1]:"+strconv.Itoa(port))
		if r.Address != "::1" || r.IPFamily != FamilyIPv6 {
			t.Errorf("address %q family %q, want ::1 ipv6", r.Address, r.IPFamily)
		}
	})
	t.Run("closed", func(t *testing.T) {
		port := lbFreePort(t, "tcp6", "[::1]:0")
		r := lbRun1(t, &Check{Name: "t", Kind: "tcp", Host: "::1", Port: port, Timeout: 3 * time.Second})
		lbExpect(t, r, false, ReasonRefused, PhaseConnect, "refused")
		if r.IPFamily != FamilyIPv6 {
			t.Errorf("family %q, want ipv6", r.IPFamily)
		}
	})
}

// TestTCPLocalhostName resolves "localhost" with the system resolver (hosts
// file) for each family.
func TestTCPLocalhostName(t *testing.T) {
	port := lbListenTCP(t, "tcp4", "127.0.0.1:0")
	t.Run("ipv4", func(t *testing.T) {
		r := lbRun1(t, &Check{Name: "t", Kind: "tcp", Host: "localhost", Port: port, IPFamily: FamilyIPv4, Timeout: 3 * time.Second})
		lbExpect(t, r, true, ReasonOK, PhaseConnect)
		if r.Address != "127.0.0.1" || r.IPFamily != FamilyIPv4 {
			t.Errorf("address %q family %q, want 127.0.0.1 ipv4", r.Address, r.IPFamily)
		}
		if len(r.Timings) == 0 || r.Timings[0].Phase != PhaseDNS {
			t.Errorf("timings %+v do not start with dns", r.Timings)
		}
	})
	t.Run("ipv6", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		addrs, _ := net.DefaultResolver.LookupNetIP(ctx, "ip6", "localhost")
		c := &Check{Name: "t", Kind: "tcp", Host: "localhost", IPFamily: FamilyIPv6, Timeout: 3 * time.Second}
		if len(addrs) == 0 {
			// This host's hosts file maps localhost to IPv4 only.
			c.Port = port
			r := lbRun1(t, c)
			lbExpect(t, r, false, ReasonDNS, PhaseDNS, `"localhost"`, "no address of the requested family")
			if r.IPFamily != FamilyIPv6 || r.Address != "" {
				t.Errorf("address %q family %q, want none, ipv6", r.Address, r.IPFamily)
			}
			return
		}
		lbIPv6Loopback(t)
		if !addrs[0].Unmap().Is6() || !addrs[0].IsLoopback() {
			t.Skipf("localhost resolves to %v", addrs)
		}
		c.Port = lbListenTCP(t, "tcp6", "[::1]:0")
		r := lbRun1(t, c)
		lbExpect(t, r, true, ReasonOK, PhaseConnect)
		if r.IPFamily != FamilyIPv6 || r.Address != "::1" {
			t.Errorf("address %q family %q, want ::1 ipv6", r.Address, r.IPFamily)
		}
	})
}

// TestTCPOutOfFileDescriptors lowers RLIMIT_NOFILE for this process so that
// the probe's socket() fails with EMFILE, and restores it at once.
func TestTCPOutOfFileDescriptors(t *testing.T) {
	port := lbListenTCP(t, "tcp4", "127.0.0.1:0")
	var old syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &old); err != nil {
		t.Skipf("getrlimit: %v", err)
	}
	// The lowest free descriptor: with the limit there, no new one can open.
	lowest := lbLowestFreeFD(t)
	lim := old
	lim.Cur = uint64(lowest)
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Skipf("setrlimit: %v", err)
	}
	restored := false
	restore := func() {
		if !restored {
			restored = true
			if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &old); err != nil {
				t.Errorf("restoring RLIMIT_NOFILE: %v", err)
			}
		}
	}
	defer restore()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	rs := Run(ctx, &Check{Name: "t", Kind: "tcp", Host: "127.0.0.1", Port: port, Timeout: 2 * time.Second})
	cancel()
	restore()
	if len(rs) != 1 {
		t.Fatalf("got %d results", len(rs))
	}
	lbExpect(t, rs[0], false, ReasonLocal, PhaseConnect, "file descriptors")
}

func lbLowestFreeFD(t testing.TB) int {
	t.Helper()
	f, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	fd := int(f.Fd())
	f.Close()
	return fd
}

// connectedDetail must write what fmt and net.JoinHostPort wrote before it.
func TestConnectedDetail(t *testing.T) {
	for _, tc := range []struct {
		host string
		port int
		took time.Duration
	}{
		{"127.0.0.1", 443, 1234567 * time.Nanosecond},
		{"::1", 8080, 42 * time.Microsecond},
		{"fe80::1%eth0", 1, 2 * time.Second},
		{"proxy.example.net", 65535, 0},
	} {
		want := fmt.Sprintf("connected to %s in %s", net.JoinHostPort(tc.host, strconv.Itoa(tc.port)), tc.took.Round(time.Microsecond))
		if got := connectedDetail(tc.host, tc.port, tc.took); got != want {
			t.Errorf("connectedDetail(%q, %d, %s) = %q, want %q", tc.host, tc.port, tc.took, got, want)
		}
	}
}

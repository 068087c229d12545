//go:build linux

package probe_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/connprobe/connprobe/internal/netlab"
	"github.com/connprobe/connprobe/probe"
)

// broadcastWindow is each namespace case's observation window (its timeout).
const broadcastWindow = 1500 * time.Millisecond

// sender sends datagrams from the lab's client namespace until stopped.
type sender struct {
	conn      net.PacketConn
	stop      chan struct{}
	done      chan struct{}
	mu        sync.Mutex
	sentUni   int
	sentBcast int
}

// startSender sends, every 20ms, one datagram to each of bcast and uni (either
// may be nil) from a socket in the client namespace. It stops by itself after
// 500 rounds, so no test can leave it running.
func startSender(t *testing.T, lab *netlab.Lab, bcast, uni *net.UDPAddr) *sender {
	t.Helper()
	var pc net.PacketConn
	if err := lab.Do(lab.Client(), func() error {
		lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
			var serr error
			err := c.Control(func(fd uintptr) {
				serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_BROADCAST, 1)
			})
			if err != nil {
				return err
			}
			return serr
		}}
		var err error
		pc, err = lc.ListenPacket(context.Background(), "udp4", lab.ClientIP().String()+":0")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	s := &sender{conn: pc, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for i := 0; i < 500; i++ {
			if bcast != nil {
				if _, err := pc.WriteTo(fmt.Appendf(nil, "bcast-%d", i), bcast); err == nil {
					s.mu.Lock()
					s.sentBcast++
					s.mu.Unlock()
				}
			}
			if uni != nil {
				if _, err := pc.WriteTo(fmt.Appendf(nil, "uni-%d", i), uni); err == nil {
					s.mu.Lock()
					s.sentUni++
					s.mu.Unlock()
				}
			}
			select {
			case <-s.stop:
				return
			case <-tick.C:
			}
		}
	}()
	t.Cleanup(s.halt)
	return s
}

func (s *sender) halt() {
	select {
	case <-s.stop:
	default:
		close(s.stop)
	}
	<-s.done
	s.conn.Close()
}

func (s *sender) counts() (bcast, uni int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sentBcast, s.sentUni
}

func runBroadcast(t *testing.T, lab *netlab.Lab, host string, port int) (probe.Result, probe.BroadcastFacts) {
	t.Helper()
	return runBroadcastMode(t, lab, host, port, "")
}

func runBroadcastMode(t *testing.T, lab *netlab.Lab, host string, port int, mode string) (probe.Result, probe.BroadcastFacts) {
	t.Helper()
	r := runInNetns(t, lab, lab.Router(), &probe.Check{Name: "b", Kind: "broadcast", Host: host, Port: port,
		Network: "udp", Timeout: broadcastWindow, Broadcast: &probe.BroadcastOptions{Mode: mode}})
	if r.Facts.BroadcastFacts == nil {
		t.Fatalf("%s %s: %s; no broadcast facts", r.Reason, host, r.Detail)
	}
	f := *r.Facts.BroadcastFacts
	t.Logf("%s %s: %s; facts %+v", r.Reason, host, r.Detail, f)
	return r, f
}

// binder stands in for a vendor service that starts while a check runs: it
// binds the port in the router namespace (no SO_REUSEADDR or SO_REUSEPORT,
// like the check's own bind) every 20ms and closes it at once.
type binder struct {
	stop, done chan struct{}
	ok, failed int
	firstErr   error
}

func startBinder(t *testing.T, lab *netlab.Lab, port int) *binder {
	t.Helper()
	b := &binder{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(b.done)
		err := lab.Do(lab.Router(), func() error { // one goroutine, locked in the namespace
			tick := time.NewTicker(20 * time.Millisecond)
			defer tick.Stop()
			for range 1000 { // bounded, in case a test fails early
				pc, err := net.ListenPacket("udp4", fmt.Sprintf("0.0.0.0:%d", port))
				if err == nil {
					pc.Close()
					b.ok++
				} else {
					b.failed++
					if b.firstErr == nil {
						b.firstErr = err
					}
				}
				select {
				case <-b.stop:
					return nil
				case <-tick.C:
				}
			}
			return nil
		})
		if err != nil && b.firstErr == nil {
			b.firstErr = err
		}
	}()
	t.Cleanup(b.halt)
	return b
}

// halt stops the binder; its counts may be read afterwards.
func (b *binder) halt() {
	select {
	case <-b.stop:
	default:
		close(b.stop)
	}
	<-b.done
}

// subnetBroadcast is the directed broadcast of the client/router subnet.
func subnetBroadcast(lab *netlab.Lab, port int) *net.UDPAddr {
	ip := lab.RouterClientSideIP().To4()
	return &net.UDPAddr{IP: net.IPv4(ip[0], ip[1], ip[2], 255), Port: port}
}

func TestBroadcastNetns(t *testing.T) {
	lab := netlab.New(t)
	client := lab.ClientIP().String()

	t.Run("free port: bind", func(t *testing.T) {
		const port = 19813
		s := startSender(t, lab, subnetBroadcast(lab, port), nil)
		r, f := runBroadcast(t, lab, "0.0.0.0", port)
		s.halt()
		if !r.Up || r.Reason != probe.ReasonOK || f.Mode != "bind" || f.Datagrams == 0 || f.Unicast != 0 {
			t.Fatalf("up=%v %s (%s), facts %+v", r.Up, r.Reason, r.Detail, f)
		}
		if !slices.Contains(f.Senders, client) {
			t.Errorf("senders %q lack the client %s", f.Senders, client)
		}
		if f.WindowSeconds < broadcastWindow.Seconds()*0.9 {
			t.Errorf("window %.2fs, want about %s: the probe must listen until the deadline", f.WindowSeconds, broadcastWindow)
		}
	})

	t.Run("expected sender silent", func(t *testing.T) {
		const port = 19813
		s := startSender(t, lab, subnetBroadcast(lab, port), nil)
		r, f := runBroadcast(t, lab, lab.ServerIP().String(), port)
		s.halt()
		if r.Up || r.Reason != probe.ReasonNoReply || f.Datagrams != 0 || f.OtherSenderDatagrams == 0 ||
			!slices.Contains(f.Senders, client) {
			t.Fatalf("up=%v %s (%s), facts %+v", r.Up, r.Reason, r.Detail, f)
		}
	})

	t.Run("unicast only", func(t *testing.T) {
		const port = 19814
		s := startSender(t, lab, nil, &net.UDPAddr{IP: lab.RouterClientSideIP(), Port: port})
		r, f := runBroadcast(t, lab, "0.0.0.0", port)
		s.halt()
		if r.Up || r.Reason != probe.ReasonNoReply || f.Datagrams != 0 || f.Unicast == 0 || f.Mode != "bind" {
			t.Fatalf("up=%v %s (%s), facts %+v", r.Up, r.Reason, r.Detail, f)
		}
		if !strings.HasPrefix(r.Detail, fmt.Sprintf("no broadcast on udp/%d in ", port)) {
			t.Errorf("detail %q", r.Detail)
		}
	})

	t.Run("port taken: packet, vendor keeps its datagrams", func(t *testing.T) {
		const port = 15000
		// The vendor process: a plain socket on the port, no SO_REUSEPORT.
		vendor := lab.ListenUDP(lab.Router(), fmt.Sprintf("0.0.0.0:%d", port))
		var vendorUni, vendorBcast int
		drained := make(chan struct{})
		stopDrain := time.Now().Add(broadcastWindow + 20*time.Second) // bound, in case the test fails early
		_ = vendor.SetReadDeadline(stopDrain)
		go func() {
			defer close(drained)
			buf := make([]byte, 512)
			for {
				n, _, err := vendor.ReadFrom(buf)
				if err != nil {
					return
				}
				if strings.HasPrefix(string(buf[:n]), "uni-") {
					vendorUni++
				} else {
					vendorBcast++
				}
			}
		}()

		s := startSender(t, lab, subnetBroadcast(lab, port), &net.UDPAddr{IP: lab.RouterClientSideIP(), Port: port})
		r, f := runBroadcast(t, lab, "0.0.0.0", port)
		s.halt()
		// Let the last datagrams arrive, then end the drain.
		time.Sleep(100 * time.Millisecond)
		_ = vendor.SetReadDeadline(time.Now())
		<-drained
		sentBcast, sentUni := s.counts()

		if !r.Up || r.Reason != probe.ReasonOK || f.Mode != "packet" || f.Datagrams == 0 || f.Unicast == 0 {
			t.Fatalf("up=%v %s (%s), facts %+v", r.Up, r.Reason, r.Detail, f)
		}
		if !slices.Contains(f.Senders, client) || !strings.Contains(f.PortHolder, fmt.Sprintf("]:%d", port)) ||
			!strings.Contains(f.PortHolder, fmt.Sprintf("[%d]", os.Getpid())) {
			t.Errorf("senders %q, port holder %q", f.Senders, f.PortHolder)
		}
		if vendorUni != sentUni || vendorBcast != sentBcast {
			t.Errorf("the vendor socket received %d of %d unicast and %d of %d broadcast datagrams; it must get all",
				vendorUni, sentUni, vendorBcast, sentBcast)
		}
		if f.Datagrams > sentBcast || f.Unicast > sentUni {
			t.Errorf("counted %d broadcast and %d unicast, but only %d and %d were sent", f.Datagrams, f.Unicast, sentBcast, sentUni)
		}
	})
	t.Run("mode packet, port free: packet socket, the port stays free", func(t *testing.T) {
		const port = 19815
		s := startSender(t, lab, subnetBroadcast(lab, port), nil)
		b := startBinder(t, lab, port)
		r, f := runBroadcastMode(t, lab, "0.0.0.0", port, probe.BroadcastPacket)
		b.halt()
		s.halt()
		if !r.Up || r.Reason != probe.ReasonOK || f.Mode != "packet" || f.Datagrams == 0 || f.PortHolder != "" {
			t.Fatalf("up=%v %s (%s), facts %+v", r.Up, r.Reason, r.Detail, f)
		}
		if !strings.Contains(r.Detail, "mode: packet, leaving the port free") {
			t.Errorf("detail %q does not say the port was left free", r.Detail)
		}
		if b.failed > 0 || b.ok == 0 {
			t.Errorf("another socket bound udp/%d %d times and failed %d times (first: %v) during the window; mode packet must never hold the port",
				port, b.ok, b.failed, b.firstErr)
		}
	})

	// The control for the case above, and the caveat of mode auto: on a
	// free port it binds, and holds the port for the whole window.
	t.Run("mode auto, port free: holds the port", func(t *testing.T) {
		const port = 19816
		s := startSender(t, lab, subnetBroadcast(lab, port), nil)
		b := startBinder(t, lab, port)
		r, f := runBroadcastMode(t, lab, "0.0.0.0", port, probe.BroadcastAuto)
		b.halt()
		s.halt()
		if !r.Up || f.Mode != "bind" {
			t.Fatalf("up=%v %s (%s), facts %+v", r.Up, r.Reason, r.Detail, f)
		}
		if b.failed == 0 || !errors.Is(b.firstErr, syscall.EADDRINUSE) {
			t.Errorf("another socket bound udp/%d %d times and failed %d times (first: %v); while mode auto binds, it must fail with EADDRINUSE",
				port, b.ok, b.failed, b.firstErr)
		}
	})

	t.Run("mode bind, port taken: error naming the holder", func(t *testing.T) {
		const port = 15001
		vendor := lab.ListenUDP(lab.Router(), fmt.Sprintf("0.0.0.0:%d", port))
		defer vendor.Close()
		s := startSender(t, lab, subnetBroadcast(lab, port), nil)
		r, f := runBroadcastMode(t, lab, "0.0.0.0", port, probe.BroadcastBind)
		s.halt()
		if r.Up || r.Reason != probe.ReasonInternalError || f.Mode != "" || f.Datagrams != 0 {
			t.Fatalf("up=%v %s (%s), facts %+v", r.Up, r.Reason, r.Detail, f)
		}
		holder := fmt.Sprintf("probe.test[%d] on [::]:%d", os.Getpid(), port)
		if !strings.Contains(f.PortHolder, fmt.Sprintf("[%d]", os.Getpid())) || !strings.Contains(f.PortHolder, fmt.Sprintf("]:%d", port)) {
			t.Errorf("port holder %q, want the test process (like %q)", f.PortHolder, holder)
		}
		if !strings.Contains(r.Detail, "taken by "+f.PortHolder) || !strings.Contains(r.Detail, "mode: packet") {
			t.Errorf("detail %q must name the holder and suggest mode: packet", r.Detail)
		}
	})
}

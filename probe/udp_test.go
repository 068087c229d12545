package probe

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/dns/dnsmessage"
)

// udpTestServer is an in-test UDP responder on 127.0.0.1: handle gets every
// datagram and returns the replies to send back (none: stay silent).
type udpTestServer struct {
	port     int
	received atomic.Int32
}

func udpServe(t testing.TB, handle func(req []byte) [][]byte) *udpTestServer {
	t.Helper()
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &udpTestServer{port: pc.LocalAddr().(*net.UDPAddr).Port}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		buf := make([]byte, 2048)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			s.received.Add(1)
			for _, reply := range handle(append([]byte(nil), buf[:n]...)) {
				_, _ = pc.WriteTo(reply, from)
			}
		}
	}()
	t.Cleanup(func() {
		pc.Close()
		done := make(chan struct{})
		go func() { wg.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Error("UDP test server did not stop")
		}
	})
	return s
}

// udpFreePort is a loopback UDP port nothing is bound to (bound and released).
func udpFreePort(t testing.TB) int {
	t.Helper()
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	return pc.LocalAddr().(*net.UDPAddr).Port
}

func udpCheck(port int, o UDPOptions, timeout time.Duration) *Check {
	return &Check{Name: "u", Kind: "udp", Host: "127.0.0.1", Port: port, Timeout: timeout, UDP: &o}
}

// udpFacts returns the UDP facts of r, failing the test when they are missing.
func udpFacts(t testing.TB, r Result) *UDPFacts {
	t.Helper()
	if r.Facts.UDPFacts == nil {
		t.Fatalf("result has no UDP facts: %+v", r)
	}
	return r.Facts.UDPFacts
}

func echoHandler(req []byte) [][]byte { return [][]byte{req} }

func TestUDPEcho(t *testing.T) {
	srv := udpServe(t, echoHandler)
	r := lbRun1(t, udpCheck(srv.port, UDPOptions{Payload: "echo"}, 2*time.Second))
	lbExpect(t, r, true, ReasonOK, PhaseResponse, "echo token returned", "reply of 47 bytes")
	f := udpFacts(t, r)
	// "connprobe-echo-" and 32 hex digits.
	if f.ReplyBytes != 47 || f.SourcePort == 0 || f.RTTSeconds <= 0 {
		t.Errorf("facts = %+v, want 47 reply bytes, a source port and an RTT", *f)
	}
	if n := srv.received.Load(); n != 1 {
		t.Errorf("server received %d datagrams, want 1", n)
	}
}

// A reply that does not carry our token is not the service answering us (a
// stale reply, another client's, or a service that does not echo). The probe
// keeps waiting for a matching one until the deadline, and then says what it
// saw: protocol, "N replies, none matching", not the silence of no_reply.
func TestUDPEchoWrongToken(t *testing.T) {
	srv := udpServe(t, func([]byte) [][]byte { return [][]byte{[]byte("connprobe-echo-0000")} })
	r := lbRun1(t, udpCheck(srv.port, UDPOptions{Payload: "echo", AcceptSilence: true}, 700*time.Millisecond))
	lbExpect(t, r, false, ReasonProtocol, PhaseResponse, "1 reply from the target", "none matching")
	if r.Duration < 600*time.Millisecond {
		t.Errorf("gave up after %s, before the deadline: a matching reply could still have come", r.Duration)
	}
}

// Stray datagrams ahead of the real reply are skipped.
func TestUDPEchoStrayBeforeReply(t *testing.T) {
	srv := udpServe(t, func(req []byte) [][]byte {
		return [][]byte{[]byte("stale"), []byte("other"), req}
	})
	r := lbRun1(t, udpCheck(srv.port, UDPOptions{Payload: "echo"}, 2*time.Second))
	lbExpect(t, r, true, ReasonOK, PhaseResponse, "echo token returned")
}

// A flood of non-matching datagrams ends the wait early, bounded.
func TestUDPStrayFlood(t *testing.T) {
	srv := udpServe(t, func([]byte) [][]byte {
		out := make([][]byte, 200)
		for i := range out {
			out[i] = []byte("flood " + strconv.Itoa(i))
		}
		return out
	})
	r := lbRun1(t, udpCheck(srv.port, UDPOptions{Payload: "echo"}, 5*time.Second))
	lbExpect(t, r, false, ReasonProtocol, PhaseResponse, "replies from the target", "none matching")
	if r.Duration > 2*time.Second {
		t.Errorf("took %s: the stray limit should end the wait long before the 5s deadline", r.Duration)
	}
}

// A reply larger than the read buffer is read truncated, never held whole.
func TestUDPGiantReply(t *testing.T) {
	srv := udpServe(t, func(req []byte) [][]byte {
		big := make([]byte, 65000)
		copy(big, req)
		return [][]byte{big}
	})
	r := lbRun1(t, udpCheck(srv.port, UDPOptions{Payload: "echo"}, 2*time.Second))
	lbExpect(t, r, true, ReasonOK, PhaseResponse, "echo token returned", "may have been longer")
	if f := udpFacts(t, r); f.ReplyBytes > maxDatagram {
		t.Errorf("reply_bytes = %d, more than the %d-byte read bound", f.ReplyBytes, maxDatagram)
	}
}

// udpSTUNHandler is a minimal STUN server: a Binding Request gets a Binding
// Success Response with the same transaction ID and an XOR-MAPPED-ADDRESS.
func udpSTUNHandler(req []byte) [][]byte {
	if len(req) < 20 || binary.BigEndian.Uint16(req[0:2]) != 0x0001 || binary.BigEndian.Uint32(req[4:8]) != stunMagicCookie {
		return nil
	}
	resp := make([]byte, 20, 32)
	binary.BigEndian.PutUint16(resp[0:2], 0x0101)
	binary.BigEndian.PutUint16(resp[2:4], 12)
	copy(resp[4:20], req[4:20]) // cookie and transaction ID
	attr := make([]byte, 12)
	binary.BigEndian.PutUint16(attr[0:2], 0x0020) // XOR-MAPPED-ADDRESS
	binary.BigEndian.PutUint16(attr[2:4], 8)
	attr[5] = 0x01 // IPv4
	binary.BigEndian.PutUint16(attr[6:8], 40000^uint16(stunMagicCookie>>16))
	binary.BigEndian.PutUint32(attr[8:12], 0x7f000001^stunMagicCookie)
	return [][]byte{append(resp, attr...)}
}

func TestUDPSTUN(t *testing.T) {
	srv := udpServe(t, udpSTUNHandler)
	r := lbRun1(t, udpCheck(srv.port, UDPOptions{Payload: "stun"}, 2*time.Second))
	lbExpect(t, r, true, ReasonOK, PhaseResponse, "STUN binding success", "reply of 32 bytes")
}

// A STUN answer with another transaction ID is not ours.
func TestUDPSTUNWrongTransaction(t *testing.T) {
	srv := udpServe(t, func(req []byte) [][]byte {
		out := udpSTUNHandler(req)
		for _, b := range out {
			b[19] ^= 0xff
		}
		return out
	})
	r := lbRun1(t, udpCheck(srv.port, UDPOptions{Payload: "stun"}, 600*time.Millisecond))
	lbExpect(t, r, false, ReasonProtocol, PhaseResponse, "none matching")
}

// udpDNSHandler answers every query with rcode, echoing its ID and question.
func udpDNSHandler(t testing.TB, rcode dnsmessage.RCode, asked *atomic.Value) func([]byte) [][]byte {
	return func(req []byte) [][]byte {
		var p dnsmessage.Parser
		h, err := p.Start(req)
		if err != nil {
			return nil
		}
		q, err := p.Question()
		if err != nil {
			return nil
		}
		asked.Store(q.Name.String() + " " + q.Type.String())
		msg := dnsmessage.Message{
			Header:    dnsmessage.Header{ID: h.ID, Response: true, RCode: rcode, RecursionDesired: h.RecursionDesired},
			Questions: []dnsmessage.Question{q},
		}
		b, err := msg.Pack()
		if err != nil {
			t.Errorf("packing the DNS answer: %v", err)
			return nil
		}
		return [][]byte{b}
	}
}

func TestUDPDNS(t *testing.T) {
	for _, tc := range []struct {
		query, asked string
		rcode        dnsmessage.RCode
		want         string
	}{
		{"", ". TypeNS", dnsmessage.RCodeSuccess, "DNS answer (rcode NOERROR)"},
		{"example.test", "example.test. TypeA", dnsmessage.RCodeNameError, "DNS answer (rcode NXDOMAIN)"},
		{"example.test.", "example.test. TypeA", dnsmessage.RCodeRefused, "DNS answer (rcode REFUSED)"},
	} {
		t.Run(tc.asked+"/"+tc.rcode.String(), func(t *testing.T) {
			var asked atomic.Value
			srv := udpServe(t, udpDNSHandler(t, tc.rcode, &asked))
			r := lbRun1(t, udpCheck(srv.port, UDPOptions{Payload: "dns", Query: tc.query}, 2*time.Second))
			// Any answer to our query proves a DNS service answered, whatever its rcode.
			lbExpect(t, r, true, ReasonOK, PhaseResponse, tc.want)
			if got, _ := asked.Load().(string); got != tc.asked {
				t.Errorf("server was asked %q, want %q", got, tc.asked)
			}
		})
	}
}

// A DNS answer with another ID is not ours; neither is a query echoed back.
func TestUDPDNSMismatch(t *testing.T) {
	srv := udpServe(t, func(req []byte) [][]byte {
		other := append([]byte(nil), req...)
		other[0] ^= 0xff
		other[2] |= 0x80 // QR: a response, but to another ID
		return [][]byte{req, other}
	})
	r := lbRun1(t, udpCheck(srv.port, UDPOptions{Payload: "dns"}, 600*time.Millisecond))
	lbExpect(t, r, false, ReasonProtocol, PhaseResponse, "2 replies from the target", "none matching")
}

func TestUDPCustomSend(t *testing.T) {
	var got atomic.Value
	srv := udpServe(t, func(req []byte) [][]byte {
		got.Store(string(req))
		return [][]byte{[]byte("PONG\x00\xff")}
	})
	r := lbRun1(t, udpCheck(srv.port, UDPOptions{Send: []byte("PING\r\n")}, 2*time.Second))
	lbExpect(t, r, true, ReasonOK, PhaseResponse, `reply "PONG\\x00\\xff"`, "reply of 6 bytes")
	if s, _ := got.Load().(string); s != "PING\r\n" {
		t.Errorf("server received %q, want the configured bytes", s)
	}
}

func TestUDPNoPayload(t *testing.T) {
	r := lbRun1(t, udpCheck(udpFreePort(t), UDPOptions{}, time.Second))
	lbExpect(t, r, false, ReasonInternalError, PhaseNone, "neither a payload nor bytes")
}

// ICMP port unreachable from 127.0.0.1, the target itself: refused, also when
// silence would be accepted (an ICMP error is not silence).
func TestUDPClosedPort(t *testing.T) {
	for _, accept := range []bool{false, true} {
		t.Run("accept_silence="+strconv.FormatBool(accept), func(t *testing.T) {
			port := udpFreePort(t)
			r := lbRun1(t, udpCheck(port, UDPOptions{Payload: "echo", AcceptSilence: accept}, 2*time.Second))
			lbExpect(t, r, false, ReasonRefused, PhaseResponse, "(port unreachable) from the target 127.0.0.1", "nothing listens")
			if r.Duration > time.Second {
				t.Errorf("took %s: an ICMP error is immediate", r.Duration)
			}
		})
	}
}

func TestUDPSilentListener(t *testing.T) {
	srv := udpServe(t, func([]byte) [][]byte { return nil })

	r := lbRun1(t, udpCheck(srv.port, UDPOptions{Payload: "echo"}, 500*time.Millisecond))
	lbExpect(t, r, false, ReasonNoReply, PhaseResponse, "no reply and no ICMP error within", "open|filtered")
	if r.Duration < 450*time.Millisecond {
		t.Errorf("no_reply after %s, before the 500ms deadline", r.Duration)
	}

	r = lbRun1(t, udpCheck(srv.port, UDPOptions{Payload: "echo", AcceptSilence: true}, 500*time.Millisecond))
	lbExpect(t, r, true, ReasonNoReply, PhaseResponse, "expect_reply: false", "proves only that nothing on the path rejected the datagram")
	if n := srv.received.Load(); n != 2 {
		t.Errorf("server received %d datagrams, want 2", n)
	}
}

func TestUDPSourcePort(t *testing.T) {
	srv := udpServe(t, echoHandler)
	src := udpFreePort(t)
	c := udpCheck(srv.port, UDPOptions{Payload: "echo"}, 2*time.Second)
	c.SourcePort = src
	r := lbRun1(t, c)
	lbExpect(t, r, true, ReasonOK, PhaseResponse, "from source port "+strconv.Itoa(src))
	if f := udpFacts(t, r); f.SourcePort != src {
		t.Errorf("facts.source_port = %d, want %d", f.SourcePort, src)
	}
}

// A source port another socket holds is this host's problem, said plainly.
func TestUDPSourcePortTaken(t *testing.T) {
	srv := udpServe(t, echoHandler)
	holder, err := net.ListenPacket("udp4", "0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close()
	src := holder.LocalAddr().(*net.UDPAddr).Port
	c := udpCheck(srv.port, UDPOptions{Payload: "echo"}, 2*time.Second)
	c.SourcePort = src
	r := lbRun1(t, c)
	lbExpect(t, r, false, ReasonLocal, PhaseConnect, fmt.Sprintf("source port %d is taken on this host", src))
	if n := srv.received.Load(); n != 0 {
		t.Errorf("server received %d datagrams; nothing should have been sent", n)
	}
}

func TestUDPIPv6Loopback(t *testing.T) {
	lbIPv6Loopback(t)
	pc, err := net.ListenPacket("udp6", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 UDP loopback: %v", err)
	}
	port := pc.LocalAddr().(*net.UDPAddr).Port
	pc.Close() // closed: the target answers port unreachable over ICMPv6
	c := &Check{Name: "u", Kind: "udp", Host: "::1", Port: port, Timeout: 2 * time.Second, UDP: &UDPOptions{Payload: "echo"}}
	r := lbRun1(t, c)
	lbExpect(t, r, false, ReasonRefused, PhaseResponse, "ICMPv6 destination unreachable (port unreachable) from the target ::1")
}

// The facts of a UDP result encode under their JSON names.
func TestUDPFactsJSON(t *testing.T) {
	srv := udpServe(t, echoHandler)
	r := lbRun1(t, udpCheck(srv.port, UDPOptions{Payload: "echo"}, 2*time.Second))
	b, err := r.Facts.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{`"source_port":`, `"reply_bytes":47`, `"rtt_seconds":`} {
		if !bytes.Contains(b, []byte(k)) {
			t.Errorf("facts JSON %s lacks %s", b, k)
		}
	}
	if strings.Contains(string(b), "offset_seconds") {
		t.Errorf("facts JSON %s carries NTP facts", b)
	}
}

// Checks sharing a source port (several NTP servers from 123) run at the same
// time: each connected socket gets its own replies.
func TestUDPSharedSourcePort(t *testing.T) {
	srvA := udpServe(t, echoHandler)
	srvB := udpServe(t, echoHandler)
	src := udpFreePort(t)
	checks := []*Check{
		udpCheck(srvA.port, UDPOptions{Payload: "echo"}, 2*time.Second),
		udpCheck(srvB.port, UDPOptions{Payload: "echo"}, 2*time.Second),
	}
	results := make(chan []Result, len(checks))
	for _, c := range checks {
		c.SourcePort = src
		go func() { results <- Run(context.Background(), c) }()
	}
	for range checks {
		rs := <-results
		if len(rs) != 1 {
			t.Fatalf("%d results", len(rs))
		}
		lbExpect(t, rs[0], true, ReasonOK, PhaseResponse, "from source port "+strconv.Itoa(src))
	}
}

package probe

import (
	"context"
	"encoding/binary"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// lbDNSServer is a minimal authoritative DNS server on 127.0.0.1 UDP:
//
//	good.test.    A 127.0.0.1, AAAA ::1
//	v4only.test.  A 127.0.0.1, no AAAA (NOERROR, empty answer)
//	broken.test.  SERVFAIL
//	slow.test.    never answers
//	anything else NXDOMAIN
type lbDNSServer struct {
	addr    string
	mu      sync.Mutex
	queries map[string]int // "name/type" -> count
}

func (s *lbDNSServer) count(name string, qtype uint16) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.queries[lbQKey(name, qtype)]
}

func lbQKey(name string, qtype uint16) string {
	return strings.ToLower(name) + "/" + map[uint16]string{1: "A", 28: "AAAA"}[qtype]
}

const (
	lbTypeA    = 1
	lbTypeAAAA = 28
)

func lbStartDNS(t testing.TB) *lbDNSServer {
	t.Helper()
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &lbDNSServer{addr: pc.LocalAddr().String(), queries: map[string]int{}}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 1500)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			if resp := s.answer(buf[:n]); resp != nil {
				_, _ = pc.WriteTo(resp, from)
			}
		}
	}()
	t.Cleanup(func() {
		pc.Close()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Error("DNS server did not stop")
		}
	})
	return s
}

// answer builds the response to one query, or nil to stay silent.
func (s *lbDNSServer) answer(q []byte) []byte {
	if len(q) < 12 || binary.BigEndian.Uint16(q[4:6]) != 1 {
		return nil
	}
	// The question: labels, then type and class.
	var labels []string
	i := 12
	for {
		if i >= len(q) {
			return nil
		}
		l := int(q[i])
		i++
		if l == 0 {
			break
		}
		if l > 63 || i+l > len(q) {
			return nil
		}
		labels = append(labels, string(q[i:i+l]))
		i += l
	}
	if i+4 > len(q) {
		return nil
	}
	question := q[12 : i+4]
	qtype := binary.BigEndian.Uint16(q[i : i+2])
	name := strings.ToLower(strings.Join(labels, ".") + ".")
	s.mu.Lock()
	s.queries[lbQKey(name, qtype)]++
	s.mu.Unlock()

	rcode := 0
	var answers [][]byte // rdata of records of qtype
	switch name {
	case "good.test.":
		switch qtype {
		case lbTypeA:
			answers = append(answers, net.IPv4(127, 0, 0, 1).To4())
		case lbTypeAAAA:
			answers = append(answers, net.IPv6loopback)
		}
	case "v4only.test.":
		if qtype == lbTypeA {
			answers = append(answers, net.IPv4(127, 0, 0, 1).To4())
		}
	case "broken.test.":
		rcode = 2 // SERVFAIL
	case "slow.test.":
		return nil
	default:
		rcode = 3 // NXDOMAIN
	}

	resp := make([]byte, 12, 512)
	copy(resp[0:2], q[0:2])                           // ID
	flags := uint16(0x8000 | 0x0400 | 0x0080)         // QR, AA, RA
	flags |= binary.BigEndian.Uint16(q[2:4]) & 0x0100 // RD as asked
	binary.BigEndian.PutUint16(resp[2:4], flags|uint16(rcode))
	binary.BigEndian.PutUint16(resp[4:6], 1)
	binary.BigEndian.PutUint16(resp[6:8], uint16(len(answers)))
	resp = append(resp, question...)
	for _, rd := range answers {
		resp = append(resp, 0xc0, 12) // pointer to the question name
		resp = binary.BigEndian.AppendUint16(resp, qtype)
		resp = binary.BigEndian.AppendUint16(resp, 1) // IN
		resp = binary.BigEndian.AppendUint32(resp, 60)
		resp = binary.BigEndian.AppendUint16(resp, uint16(len(rd)))
		resp = append(resp, rd...)
	}
	return resp
}

func TestDNSGoodName(t *testing.T) {
	dns := lbStartDNS(t)
	port := lbListenTCP(t, "tcp4", "127.0.0.1:0")
	r := lbRun1(t, &Check{Name: "t", Kind: "tcp", Host: "good.test", Port: port, IPFamily: FamilyIPv4,
		DNSServer: dns.addr, Timeout: 3 * time.Second})
	lbExpect(t, r, true, ReasonOK, PhaseConnect)
	if r.Address != "127.0.0.1" || r.IPFamily != FamilyIPv4 {
		t.Errorf("address %q family %q", r.Address, r.IPFamily)
	}
	if dns.count("good.test.", lbTypeA) == 0 {
		t.Error("the check did not ask the configured DNS server")
	}
	if len(r.Timings) < 2 || r.Timings[0].Phase != PhaseDNS || r.Timings[1].Phase != PhaseConnect {
		t.Errorf("timings %+v, want dns then connect", r.Timings)
	}
}

func TestDNSGoodNameIPv6(t *testing.T) {
	lbIPv6Loopback(t)
	dns := lbStartDNS(t)
	port := lbListenTCP(t, "tcp6", "[::1]:0")
	r := lbRun1(t, &Check{Name: "t", Kind: "tcp", Host: "good.test", Port: port, IPFamily: FamilyIPv6,
		DNSServer: dns.addr, Timeout: 3 * time.Second})
	lbExpect(t, r, true, ReasonOK, PhaseConnect)
	if r.Address != "::1" || r.IPFamily != FamilyIPv6 {
		t.Errorf("address %q family %q", r.Address, r.IPFamily)
	}
	if dns.count("good.test.", lbTypeAAAA) == 0 {
		t.Error("no AAAA query reached the configured DNS server")
	}
}

func TestDNSFailures(t *testing.T) {
	dns := lbStartDNS(t)
	port := lbFreePort(t, "tcp4", "127.0.0.1:0") // never reached
	for _, tc := range []struct {
		name, host, family string
		parts              []string
	}{
		{"nxdomain", "missing.test", FamilyIPv4, []string{`"missing.test"`, "does not exist"}},
		{"servfail", "broken.test", FamilyIPv4, []string{`"broken.test"`, "failed"}},
		{"silent server", "slow.test", FamilyIPv4, []string{`"slow.test"`, "timed out"}},
		{"no AAAA", "v4only.test", FamilyIPv6, []string{`"v4only.test"`, "no address of the requested family"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			r := lbRun1(t, &Check{Name: "t", Kind: "tcp", Host: tc.host, Port: port, IPFamily: tc.family,
				DNSServer: dns.addr, Timeout: time.Second})
			lbExpect(t, r, false, ReasonDNS, PhaseDNS, tc.parts...)
			if r.Address != "" || r.IPFamily != tc.family {
				t.Errorf("address %q family %q, want none and %s", r.Address, r.IPFamily, tc.family)
			}
			if r.Start.IsZero() || r.Duration <= 0 || r.Duration > time.Since(start) {
				t.Errorf("start %v duration %v", r.Start, r.Duration)
			}
			if el := time.Since(start); el > 4*time.Second {
				t.Errorf("a 1s check took %v", el)
			}
		})
	}
	if dns.count("slow.test.", lbTypeA) == 0 || dns.count("broken.test.", lbTypeA) == 0 {
		t.Error("queries did not reach the configured DNS server")
	}
}

func TestDNSBothFamiliesFailure(t *testing.T) {
	dns := lbStartDNS(t)
	rs := Run(context.Background(), &Check{Name: "t", Kind: "tcp", Host: "missing.test", Port: 9,
		IPFamily: FamilyBoth, DNSServer: dns.addr, Timeout: time.Second})
	want := 1
	if hostHasGlobalIPv6() {
		want = 2
	}
	if len(rs) != want {
		t.Fatalf("got %d results, want %d", len(rs), want)
	}
	if rs[0].IPFamily != FamilyIPv4 {
		t.Errorf("first result family %q", rs[0].IPFamily)
	}
	for _, r := range rs {
		lbExpect(t, r, false, ReasonDNS, PhaseDNS, "does not exist")
	}
}

func TestRunUnknownKind(t *testing.T) {
	before := time.Now()
	rs := Run(context.Background(), &Check{Name: "t", Kind: "gopher", Host: "127.0.0.1", Port: 70})
	if len(rs) != 1 {
		t.Fatalf("got %d results", len(rs))
	}
	r := rs[0]
	if r.Up || r.Reason != ReasonInternalError || !strings.Contains(r.Detail, `unknown check kind "gopher"`) ||
		!strings.Contains(r.Detail, "tcp") {
		t.Errorf("got up=%v reason=%q detail=%q", r.Up, r.Reason, r.Detail)
	}
	if r.Start.Before(before) || r.Start.After(time.Now()) {
		t.Errorf("start %v not set to the run's start", r.Start)
	}
}

func TestRunStartDurationTimings(t *testing.T) {
	port := lbListenTCP(t, "tcp4", "127.0.0.1:0")
	before := time.Now()
	r := lbRun1(t, &Check{Name: "t", Kind: "tcp", Host: "127.0.0.1", Port: port, Timeout: 3 * time.Second})
	after := time.Now()
	lbExpect(t, r, true, ReasonOK, PhaseConnect)
	if r.Start.Before(before) || r.Start.After(after) {
		t.Errorf("start %v outside [%v, %v]", r.Start, before, after)
	}
	if r.Duration <= 0 || r.Duration > after.Sub(before) {
		t.Errorf("duration %v, run took %v", r.Duration, after.Sub(before))
	}
	if _, ok := r.TimingOf(PhaseDNS); ok {
		t.Errorf("dns timing for an IP literal: %+v", r.Timings)
	}
	if r.Check == nil || r.Check.Port != port {
		t.Errorf("result does not point at its check")
	}

	r = lbRun1(t, &Check{Name: "t", Kind: "tcp", Host: "localhost", Port: port, IPFamily: FamilyIPv4, Timeout: 3 * time.Second})
	lbExpect(t, r, true, ReasonOK, PhaseConnect)
	if len(r.Timings) == 0 || r.Timings[0].Phase != PhaseDNS || r.Timings[0].Seconds != r.Timings[0].Duration.Seconds() {
		t.Errorf("timings %+v, want dns first", r.Timings)
	}
}

func TestRunRecoversProberPanic(t *testing.T) {
	c := &Check{Name: "t", Kind: "boom", Host: "127.0.0.1", Port: 1}
	spec := KindSpec{Name: "boom", Network: "tcp", Prober: func(context.Context, Target) Result {
		panic("prober bug")
	}}
	start := time.Now()
	r := runOne(context.Background(), spec, Target{Check: c, Addr: net.ParseIP("127.0.0.1"), Family: FamilyIPv4}, start, 0)
	if r.Up || r.Reason != ReasonInternalError || !strings.Contains(r.Detail, "internal error in boom prober: prober bug") {
		t.Errorf("got up=%v reason=%q detail=%q", r.Up, r.Reason, r.Detail)
	}
	if r.Address != "127.0.0.1" || r.IPFamily != FamilyIPv4 || r.Check != c {
		t.Errorf("panicked result lost its target: %+v", r)
	}
	if !r.Start.Equal(start) || r.Duration < 0 {
		t.Errorf("start %v duration %v", r.Start, r.Duration)
	}
}

func TestRunHonoursParentContext(t *testing.T) {
	port := lbRawServer(t, func(c net.Conn) {
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		var b [512]byte
		for {
			if _, err := c.Read(b[:]); err != nil {
				return
			}
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	rs := Run(ctx, lbTLSCheck(port, ""))
	if el := time.Since(start); el > 3*time.Second {
		t.Errorf("Run ignored the parent deadline: took %v", el)
	}
	if len(rs) != 1 || rs[0].Up || rs[0].Reason != ReasonTimeout {
		t.Errorf("got %+v", rs)
	}
}

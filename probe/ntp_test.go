package probe

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"math"
	"strconv"
	"strings"
	"testing"
	"time"
)

// ntpTestReply describes the reply a misbehaving in-test NTP server sends.
type ntpTestReply struct {
	leap      byte
	stratum   byte
	refID     string        // 4 characters: a kiss code for stratum 0
	shift     time.Duration // the server's clock against this host's
	rootDelay time.Duration
	rootDisp  time.Duration
	refAge    time.Duration // how long ago the server's clock was last set
	// origin overrides the origin timestamp; by default it echoes the
	// client's transmit timestamp, as a real server does.
	origin func(req []byte) []byte
}

// ntpGood is a healthy stratum 2 server.
var ntpGood = ntpTestReply{stratum: 2, refID: "\x0a\x00\x00\x01", rootDelay: 10 * time.Millisecond, rootDisp: 20 * time.Millisecond, refAge: 30 * time.Second}

// ntpTimestamp is t in NTP's 64-bit format (seconds since 1900, 32.32 fixed point).
func ntpTimestamp(t time.Time) uint64 {
	const unixToNTP = 2208988800
	sec := uint64(t.Unix() + unixToNTP)
	frac := uint64(t.Nanosecond()) << 32 / 1e9
	return sec<<32 | frac
}

// ntpShort is d in NTP's 32-bit short format (16.16 seconds), saturating.
func ntpShort(d time.Duration) uint32 {
	v := d.Seconds() * 65536
	if v > math.MaxUint32 {
		return math.MaxUint32
	}
	return uint32(v)
}

// build returns the 48-byte reply to req.
func (p ntpTestReply) build(req []byte) []byte {
	if len(req) < 48 {
		return nil
	}
	now := time.Now().Add(p.shift)
	b := make([]byte, 48)
	b[0] = p.leap<<6 | 4<<3 | 4 // leap, version 4, mode 4 (server)
	b[1] = p.stratum
	b[2] = 6    // poll 2^6 s
	b[3] = 0xec // precision 2^-20 s (int8 -20)
	binary.BigEndian.PutUint32(b[4:8], ntpShort(p.rootDelay))
	binary.BigEndian.PutUint32(b[8:12], ntpShort(p.rootDisp))
	copy(b[12:16], p.refID)
	binary.BigEndian.PutUint64(b[16:24], ntpTimestamp(now.Add(-p.refAge)))
	if p.origin != nil {
		copy(b[24:32], p.origin(req))
	} else {
		copy(b[24:32], req[40:48]) // origin = the client's transmit timestamp
	}
	binary.BigEndian.PutUint64(b[32:40], ntpTimestamp(now))
	binary.BigEndian.PutUint64(b[40:48], ntpTimestamp(now))
	return b
}

func ntpServe(t testing.TB, p ntpTestReply) *udpTestServer {
	return udpServe(t, func(req []byte) [][]byte {
		if r := p.build(req); r != nil {
			return [][]byte{r}
		}
		return nil
	})
}

func ntpCheck(port int, timeout time.Duration) *Check {
	return &Check{Name: "n", Kind: "ntp", Host: "127.0.0.1", Port: port, Timeout: timeout}
}

func ntpFacts(t testing.TB, r Result) *NTPFacts {
	t.Helper()
	if r.Facts.NTPFacts == nil {
		t.Fatalf("result has no NTP facts: %+v", r)
	}
	return r.Facts.NTPFacts
}

func TestNTPGood(t *testing.T) {
	srv := ntpServe(t, ntpGood)
	r := lbRun1(t, ntpCheck(srv.port, 2*time.Second))
	lbExpect(t, r, true, ReasonOK, PhaseResponse, "stratum 2 (ref 10.0.0.1)", "offset", "from source port")
	f := ntpFacts(t, r)
	if !f.Reachable || !f.Usable || f.Stratum != 2 || f.Leap != 0 || f.KissCode != "" || f.SourcePort == 0 {
		t.Errorf("facts = %+v, want reachable, usable, stratum 2, leap 0, no kiss code, a source port", *f)
	}
	if math.Abs(f.OffsetSeconds) > 0.1 {
		t.Errorf("offset %fs against a server on this host's clock, want about 0", f.OffsetSeconds)
	}
	if f.RTTSeconds < 0 || f.RTTSeconds > 1 {
		t.Errorf("rtt %fs", f.RTTSeconds)
	}
	// root delay / 2 + root dispersion + rtt / 2: 5ms + 20ms + a little.
	if f.RootDistanceSeconds < 0.024 || f.RootDistanceSeconds > 0.2 {
		t.Errorf("root distance %fs, want about 0.025", f.RootDistanceSeconds)
	}
	if r.Throttle != ThrottleNone {
		t.Errorf("throttle %v on a normal reply", r.Throttle)
	}
	if n := srv.received.Load(); n != 1 {
		t.Errorf("server received %d queries, want 1", n)
	}
	b, err := json.Marshal(r.Facts)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"reachable", "usable", "offset_seconds", "rtt_seconds", "stratum", "leap", "root_distance_seconds", "kiss_code", "source_port"} {
		if !strings.Contains(string(b), `"`+k+`":`) {
			t.Errorf("facts JSON %s lacks %q", b, k)
		}
	}
}

// The offset is a fact, not a verdict: a server an hour ahead is still
// reachable and usable; alert rules judge the offset.
func TestNTPLargeOffset(t *testing.T) {
	p := ntpGood
	p.shift = time.Hour
	srv := ntpServe(t, p)
	r := lbRun1(t, ntpCheck(srv.port, 2*time.Second))
	lbExpect(t, r, true, ReasonOK, PhaseResponse, "offset ")
	if f := ntpFacts(t, r); math.Abs(f.OffsetSeconds-3600) > 1 || !f.Usable {
		t.Errorf("facts = %+v, want usable with an offset of about 3600s", *f)
	}
}

func TestNTPKissOfDeath(t *testing.T) {
	for _, tc := range []struct {
		code     string
		throttle Throttle
		detail   string
	}{
		{"RATE", ThrottleBackoff, "kiss-o'-death RATE"},
		{"DENY", ThrottleStop, "kiss-o'-death DENY"},
		{"RSTR", ThrottleStop, "kiss-o'-death RSTR"},
		{"NKEY", ThrottleNone, `kiss-o'-death "NKEY"`},
	} {
		t.Run(tc.code, func(t *testing.T) {
			p := ntpGood
			p.stratum, p.refID, p.leap = 0, tc.code, 3
			srv := ntpServe(t, p)
			c := ntpCheck(srv.port, 2*time.Second)
			own(&c.NTP).Samples = 4
			r := lbRun1(t, c)
			lbExpect(t, r, false, ReasonProtocol, PhaseResponse, tc.detail)
			f := ntpFacts(t, r)
			if f.KissCode != tc.code || !f.Reachable || f.Usable || f.Stratum != 0 {
				t.Errorf("facts = %+v, want kiss code %s, reachable, not usable", *f, tc.code)
			}
			if r.Throttle != tc.throttle {
				t.Errorf("throttle = %v, want %v", r.Throttle, tc.throttle)
			}
			// A kiss-o'-death asks us to stop: no further samples.
			if n := srv.received.Load(); n != 1 {
				t.Errorf("server received %d queries after a kiss-o'-death, want 1", n)
			}
		})
	}
}

func TestNTPNotUsable(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mod    func(*ntpTestReply)
		detail []string
	}{
		{"stratum16", func(p *ntpTestReply) { p.stratum = 16 }, []string{"stratum 16", "not synchronised"}},
		{"stratum16_leap3", func(p *ntpTestReply) { p.stratum, p.leap = 16, 3 }, []string{"stratum 16", "leap indicator 3", "not synchronised"}},
		{"leap3", func(p *ntpTestReply) { p.leap = 3 }, []string{"leap indicator 3", "not synchronised"}},
		{"root_dispersion", func(p *ntpTestReply) { p.rootDisp = 3 * time.Second }, []string{"root distance 3.0", "exceeds 1.5s"}},
		{"huge_root_dispersion", func(p *ntpTestReply) { p.rootDisp = 20 * time.Second }, []string{"root distance 20.0", "exceeds 1.5s"}},
		{"stale_reference", func(p *ntpTestReply) { p.refAge = 72 * time.Hour }, []string{"not fresh"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := ntpGood
			tc.mod(&p)
			srv := ntpServe(t, p)
			r := lbRun1(t, ntpCheck(srv.port, 2*time.Second))
			lbExpect(t, r, false, ReasonProtocol, PhaseResponse, append([]string{"reachable but not usable"}, tc.detail...)...)
			f := ntpFacts(t, r)
			if !f.Reachable || f.Usable || f.KissCode != "" {
				t.Errorf("facts = %+v, want reachable and not usable", *f)
			}
			if r.Throttle != ThrottleNone {
				t.Errorf("throttle %v without a kiss-o'-death", r.Throttle)
			}
		})
	}
}

// A configured max root distance applies instead of the default.
func TestNTPMaxRootDistance(t *testing.T) {
	p := ntpGood
	p.rootDisp = 300 * time.Millisecond
	srv := ntpServe(t, p)
	r := lbRun1(t, ntpCheck(srv.port, 2*time.Second))
	lbExpect(t, r, true, ReasonOK, PhaseResponse)
	c := ntpCheck(srv.port, 2*time.Second)
	own(&c.NTP).MaxRootDistance = 100 * time.Millisecond
	r = lbRun1(t, c)
	lbExpect(t, r, false, ReasonProtocol, PhaseResponse, "exceeds 100ms")
}

// A reply whose origin timestamp is not our transmit timestamp does not
// answer our query: it is stale, meant for someone else, or spoofed (a
// spoofed kiss-o'-death must never throttle us). RFC 5905 has a client drop
// such a packet and keep waiting, so the probe does the same; if the deadline
// passes with only such replies, something at the target's address speaks
// NTP but did not answer us: protocol, saying so, not no_reply (it was not
// silent) and never ok.
func TestNTPWrongOrigin(t *testing.T) {
	for _, tc := range []struct {
		name    string
		stratum byte
		refID   string
	}{
		{"good_reply", 2, "\x0a\x00\x00\x01"},
		{"kiss_of_death", 0, "DENY"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := ntpGood
			p.stratum, p.refID = tc.stratum, tc.refID
			p.origin = func([]byte) []byte {
				b := make([]byte, 8)
				_, _ = rand.Read(b)
				return b
			}
			srv := ntpServe(t, p)
			r := lbRun1(t, ntpCheck(srv.port, 800*time.Millisecond))
			lbExpect(t, r, false, ReasonProtocol, PhaseResponse, "1 reply from the target", "none matching")
			if r.Throttle != ThrottleNone {
				t.Errorf("throttle %v from a reply that does not answer our query", r.Throttle)
			}
			if f := ntpFacts(t, r); f.Reachable || f.Usable || f.KissCode != "" {
				t.Errorf("facts = %+v: a mismatched reply proves nothing about the server", *f)
			}
		})
	}
}

// A spoofed or stale datagram ahead of the real reply must not spoil it.
func TestNTPStrayBeforeReply(t *testing.T) {
	srv := udpServe(t, func(req []byte) [][]byte {
		spoof := ntpGood
		spoof.stratum, spoof.refID = 0, "DENY"
		spoof.origin = func([]byte) []byte { return []byte("12345678") }
		return [][]byte{spoof.build(req), []byte("junk"), ntpGood.build(req)}
	})
	r := lbRun1(t, ntpCheck(srv.port, 2*time.Second))
	lbExpect(t, r, true, ReasonOK, PhaseResponse, "stratum 2")
	if r.Throttle != ThrottleNone {
		t.Errorf("throttle %v from a spoofed kiss-o'-death", r.Throttle)
	}
}

// Replies that are no NTP at all: not ok, and said to be replies.
func TestNTPGarbageReply(t *testing.T) {
	srv := udpServe(t, func([]byte) [][]byte { return [][]byte{[]byte("HTTP/1.0 400 Bad Request\r\n\r\n")} })
	r := lbRun1(t, ntpCheck(srv.port, 700*time.Millisecond))
	lbExpect(t, r, false, ReasonProtocol, PhaseResponse, "none matching")
}

// A reply that answers our query but breaks the protocol (mode 3, not 4).
func TestNTPBadMode(t *testing.T) {
	srv := udpServe(t, func(req []byte) [][]byte {
		b := ntpGood.build(req)
		b[0] = 4<<3 | 3
		return [][]byte{b}
	})
	r := lbRun1(t, ntpCheck(srv.port, 2*time.Second))
	lbExpect(t, r, false, ReasonProtocol, PhaseResponse, "invalid NTP reply", "mode")
}

func TestNTPSilent(t *testing.T) {
	srv := udpServe(t, func([]byte) [][]byte { return nil })
	c := ntpCheck(srv.port, 900*time.Millisecond)
	own(&c.NTP).Samples = 3
	r := lbRun1(t, c)
	lbExpect(t, r, false, ReasonNoReply, PhaseResponse, "no reply and no ICMP error")
	f := ntpFacts(t, r)
	if f.Reachable || f.Usable || f.SourcePort == 0 {
		t.Errorf("facts = %+v, want unreachable with the source port used", *f)
	}
	if r.Duration < 850*time.Millisecond || r.Duration > 1500*time.Millisecond {
		t.Errorf("took %s, want about the 900ms timeout", r.Duration)
	}
	if n := srv.received.Load(); n != 3 {
		t.Errorf("server received %d queries, want 3 samples", n)
	}
	// The detail states the whole wait (the 900ms less the setup before it,
	// a few ms or, on a loaded machine, more), not one sample's 300ms share.
	_, after, _ := strings.Cut(r.Detail, "within ")
	waited, _, _ := strings.Cut(after, ":")
	if d, err := time.ParseDuration(waited); err != nil || d < 600*time.Millisecond || d > 1500*time.Millisecond {
		t.Errorf("detail %q does not state the whole wait (~900ms)", r.Detail)
	}
}

func TestNTPClosedPort(t *testing.T) {
	c := ntpCheck(udpFreePort(t), 2*time.Second)
	own(&c.NTP).Samples = 2
	r := lbRun1(t, c)
	lbExpect(t, r, false, ReasonRefused, PhaseResponse, "(port unreachable) from the target 127.0.0.1")
	if r.Duration > time.Second {
		t.Errorf("took %s: an ICMP error is immediate", r.Duration)
	}
	if f := ntpFacts(t, r); f.Reachable || f.Usable {
		t.Errorf("facts = %+v", *f)
	}
}

func TestNTPSamples(t *testing.T) {
	srv := ntpServe(t, ntpGood)
	c := ntpCheck(srv.port, 2*time.Second)
	own(&c.NTP).Samples = 3
	r := lbRun1(t, c)
	lbExpect(t, r, true, ReasonOK, PhaseResponse, "stratum 2")
	if n := srv.received.Load(); n != 3 {
		t.Errorf("server received %d queries, want 3", n)
	}
}

func TestNTPSourcePort(t *testing.T) {
	srv := ntpServe(t, ntpGood)
	src := udpFreePort(t)
	c := ntpCheck(srv.port, 2*time.Second)
	c.SourcePort = src
	own(&c.NTP).Samples = 2 // the port is bound again for the second query
	r := lbRun1(t, c)
	lbExpect(t, r, true, ReasonOK, PhaseResponse, "from source port "+strconv.Itoa(src))
	if f := ntpFacts(t, r); f.SourcePort != src {
		t.Errorf("facts.source_port = %d, want %d", f.SourcePort, src)
	}
	if n := srv.received.Load(); n != 2 {
		t.Errorf("server received %d queries, want 2", n)
	}
}

func TestNTPSourcePortTaken(t *testing.T) {
	srv := ntpServe(t, ntpGood)
	c := ntpCheck(srv.port, 2*time.Second)
	c.SourcePort = srv.port // the server's own socket holds it
	r := lbRun1(t, c)
	lbExpect(t, r, false, ReasonLocal, PhaseConnect, "source port "+strconv.Itoa(srv.port)+" is taken on this host")
	if n := srv.received.Load(); n != 0 {
		t.Errorf("server received %d queries; nothing should have been sent", n)
	}
}

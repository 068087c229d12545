package probe

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"encoding/json"
	"errors"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// sipRecorder keeps the requests a test responder received and whatever was
// wrong with them, for the test to assert after the run.
type sipRecorder struct {
	mu       sync.Mutex
	reqs     [][]byte
	problems []string
}

func (s *sipRecorder) add(req []byte, transport string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reqs = append(s.reqs, append([]byte(nil), req...))
	s.problems = append(s.problems, sipRequestProblems(req, transport)...)
}

func (s *sipRecorder) requests() [][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([][]byte(nil), s.reqs...)
}

// check fails the test for every malformed request and when none arrived.
func (s *sipRecorder) check(t testing.TB) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.reqs) == 0 {
		t.Error("the responder received no request")
	}
	for _, p := range s.problems {
		t.Errorf("malformed request: %s", p)
	}
}

// sipRequestProblems lists what makes req not the OPTIONS request the spec asks for.
func sipRequestProblems(req []byte, transport string) []string {
	var p []string
	s := string(req)
	if !strings.HasPrefix(s, "OPTIONS sip:") || !strings.Contains(strings.SplitN(s, "\r\n", 2)[0], " SIP/2.0") {
		p = append(p, "request line is not `OPTIONS sip:... SIP/2.0`")
	}
	if !strings.HasSuffix(s, "\r\n\r\n") {
		p = append(p, "does not end with an empty line")
	}
	if strings.Count(s, "\n") != strings.Count(s, "\r\n") || strings.Count(s, "\r") != strings.Count(s, "\r\n") {
		p = append(p, "line ends are not all CRLF")
	}
	via := sipHeaderOf(req, "Via")
	if !strings.HasPrefix(via, "SIP/2.0/"+strings.ToUpper(transport)+" ") {
		p = append(p, "Via "+strconv.Quote(via)+" does not name the transport "+transport)
	}
	if !strings.Contains(via, ";branch=z9hG4bK") || len(sipBranchOf(via)) < len("z9hG4bK")+8 {
		p = append(p, "Via "+strconv.Quote(via)+" has no random RFC 3261 branch")
	}
	if !strings.Contains(sipHeaderOf(req, "From"), ";tag=") {
		p = append(p, "From has no tag")
	}
	for name, want := range map[string]string{
		"Max-Forwards": "70", "CSeq": "1 OPTIONS", "Content-Length": "0",
		"Accept": "application/sdp", "User-Agent": "connprobe",
	} {
		if got := sipHeaderOf(req, name); got != want {
			p = append(p, name+" is "+strconv.Quote(got)+", want "+strconv.Quote(want))
		}
	}
	for _, name := range []string{"To", "Call-ID", "Contact"} {
		if sipHeaderOf(req, name) == "" {
			p = append(p, "no "+name)
		}
	}
	return p
}

// sipHeaderOf is the value of the first header field called name.
func sipHeaderOf(msg []byte, name string) string {
	for _, l := range strings.Split(string(msg), "\r\n")[1:] {
		if l == "" {
			break
		}
		k, v, ok := strings.Cut(l, ":")
		if ok && strings.EqualFold(strings.TrimSpace(k), name) {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

func sipBranchOf(via string) string {
	_, b, _ := strings.Cut(via, ";branch=")
	b, _, _ = strings.Cut(b, ";")
	return b
}

// sipReply builds a response to req with status, echoing Via, From, To,
// Call-ID and CSeq as RFC 3261 8.2.6.2 requires; edit may change the header
// lines before they are joined.
func sipReply(req []byte, status string, edit func([]string) []string) []byte {
	lines := []string{"SIP/2.0 " + status}
	for _, l := range strings.Split(string(req), "\r\n")[1:] {
		if l == "" {
			break
		}
		k, _, _ := strings.Cut(l, ":")
		switch strings.ToLower(k) {
		case "via", "from", "call-id", "cseq":
			lines = append(lines, l)
		case "to":
			lines = append(lines, l+";tag=srv1")
		}
	}
	lines = append(lines, "Server: TestPBX/1.0", "Allow: INVITE, ACK, BYE, OPTIONS", "Content-Length: 0")
	if edit != nil {
		lines = edit(lines)
	}
	return []byte(strings.Join(lines, "\r\n") + "\r\n\r\n")
}

// sipUDPServer answers each datagram with the datagrams handle returns.
func sipUDPServer(t testing.TB, network, addr string, handle func(req []byte) [][]byte) (int, *sipRecorder) {
	t.Helper()
	pc, err := net.ListenPacket(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	rec := &sipRecorder{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 65536)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return // closed at cleanup
			}
			rec.add(buf[:n], "udp")
			for _, d := range handle(buf[:n]) {
				_, _ = pc.WriteTo(d, from)
			}
		}
	}()
	t.Cleanup(func() {
		pc.Close()
		<-done
	})
	return pc.LocalAddr().(*net.UDPAddr).Port, rec
}

// sipReadRequest reads one request head (bounded) from a stream.
func sipReadRequest(br *bufio.Reader) ([]byte, error) {
	var req []byte
	for len(req) < 16<<10 {
		line, err := br.ReadSlice('\n')
		req = append(req, line...)
		if err != nil {
			return req, err
		}
		if string(line) == "\r\n" {
			return req, nil
		}
	}
	return req, errors.New("request too long")
}

// sipStreamHandler returns a connection handler that reads one request and
// writes what respond returns, then waits for the client to close.
func sipStreamHandler(rec *sipRecorder, transport string, respond func(req []byte) []byte) func(net.Conn) {
	return func(c net.Conn) {
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		br := bufio.NewReader(c)
		req, err := sipReadRequest(br)
		if err != nil {
			return
		}
		rec.add(req, transport)
		if out := respond(req); out != nil {
			_, _ = c.Write(out)
		}
		_, _ = io.Copy(io.Discard, br)
	}
}

func sipTCPServer(t testing.TB, respond func(req []byte) []byte) (int, *sipRecorder) {
	t.Helper()
	rec := &sipRecorder{}
	return lbRawServer(t, sipStreamHandler(rec, "tcp", respond)), rec
}

func sipTLSServer(t testing.TB, leaf *lbLeaf, respond func(req []byte) []byte) (int, *sipRecorder) {
	t.Helper()
	rec := &sipRecorder{}
	cfg := &tls.Config{Certificates: []tls.Certificate{leaf.tls}}
	handle := sipStreamHandler(rec, "tls", respond)
	port := lbRawServer(t, func(c net.Conn) {
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		tc := tls.Server(c, cfg)
		if tc.Handshake() != nil {
			return
		}
		handle(tc)
	})
	return port, rec
}

func sipCheck(transport string, port int, timeout time.Duration) *Check {
	return &Check{Name: "t", Kind: "sip", Transport: transport, Host: "127.0.0.1", Port: port,
		IPFamily: FamilyIPv4, Timeout: timeout}
}

func sipFacts(t testing.TB, r Result, code int) {
	t.Helper()
	if r.Facts.SIPFacts == nil {
		t.Fatalf("no SIP facts (detail: %s)", r.Detail)
	}
	if r.Facts.SIPFacts.StatusCode != code {
		t.Errorf("status_code = %d, want %d", r.Facts.SIPFacts.StatusCode, code)
	}
}

func answer(status string) func([]byte) [][]byte {
	return func(req []byte) [][]byte { return [][]byte{sipReply(req, status, nil)} }
}

func TestSIPKindRegistered(t *testing.T) {
	s, err := LookupKind("sip")
	if err != nil {
		t.Fatal(err)
	}
	if s.Network != "udp" || s.DefaultPort != 5060 || s.TransportPorts["tls"] != 5061 ||
		strings.Join(s.Transports, ",") != "udp,tcp,tls" || s.MinInterval != 5*time.Minute {
		t.Errorf("sip spec = %+v", s)
	}
}

func TestSIPUDPOK(t *testing.T) {
	port, rec := sipUDPServer(t, "udp4", "127.0.0.1:0", answer("200 OK"))
	r := lbRun1(t, sipCheck("", port, 3*time.Second))
	lbExpect(t, r, true, ReasonOK, PhaseResponse, "SIP 200 OK", `server "TestPBX/1.0"`, "over UDP")
	sipFacts(t, r, 200)
	if r.Facts.SIPFacts.Server != "TestPBX/1.0" {
		t.Errorf("server fact = %q", r.Facts.SIPFacts.Server)
	}
	if u := r.Facts.UDPFacts; u == nil || u.SourcePort == 0 || u.ReplyBytes == 0 {
		t.Errorf("udp facts = %+v", u)
	}
	rec.check(t)
	req := rec.requests()[0]
	if !strings.HasPrefix(string(req), "OPTIONS sip:127.0.0.1:"+strconv.Itoa(port)+" SIP/2.0\r\n") {
		t.Errorf("request line %q does not name the non-default port", strings.SplitN(string(req), "\r\n", 2)[0])
	}
	if !strings.Contains(sipHeaderOf(req, "Via"), ";rport") {
		t.Errorf("UDP Via %q asks for no rport", sipHeaderOf(req, "Via"))
	}
	b, err := json.Marshal(r.Facts)
	if err != nil || !bytes.Contains(b, []byte(`"status_code":200`)) || !bytes.Contains(b, []byte(`"source_port"`)) {
		t.Errorf("facts JSON %s (%v)", b, err)
	}
}

func TestSIPUDPIPv6(t *testing.T) {
	lbIPv6Loopback(t)
	port, rec := sipUDPServer(t, "udp6", "[::1]:0", answer("200 OK"))
	c := sipCheck("udp", port, 3*time.Second)
	c.Host, c.IPFamily = "::1", FamilyIPv6
	r := lbRun1(t, c)
	lbExpect(t, r, true, ReasonOK, PhaseResponse, "SIP 200 OK")
	rec.check(t)
	req := string(rec.requests()[0])
	if !strings.HasPrefix(req, "OPTIONS sip:[::1]:"+strconv.Itoa(port)+" SIP/2.0") || !strings.Contains(req, "Via: SIP/2.0/UDP [::1]:") {
		t.Errorf("IPv6 addresses not bracketed:\n%s", req)
	}
}

// Any status proves a SIP server answered: rejecting OPTIONS is an answer.
func TestSIPUDPErrorStatusesAreUp(t *testing.T) {
	for _, st := range []string{"405 Method Not Allowed", "404 Not Found", "403 Forbidden", "503 Service Unavailable"} {
		port, rec := sipUDPServer(t, "udp4", "127.0.0.1:0", answer(st))
		r := lbRun1(t, sipCheck("udp", port, 3*time.Second))
		lbExpect(t, r, true, ReasonOK, PhaseResponse, "SIP "+st)
		code, _ := strconv.Atoi(st[:3])
		sipFacts(t, r, code)
		rec.check(t)
	}
}

// A reply that is not for this request (another Call-ID) is skipped, as
// exchangeUDP skips strays; when nothing else comes it is not silence but a
// protocol failure naming what did not match.
func TestSIPUDPWrongCallID(t *testing.T) {
	port, rec := sipUDPServer(t, "udp4", "127.0.0.1:0", func(req []byte) [][]byte {
		return [][]byte{sipReply(req, "200 OK", func(ls []string) []string {
			for i, l := range ls {
				if strings.HasPrefix(l, "Call-ID:") {
					ls[i] = "Call-ID: not-yours@elsewhere"
				}
			}
			return ls
		})}
	})
	start := time.Now()
	r := lbRun1(t, sipCheck("udp", port, time.Second))
	lbExpect(t, r, false, ReasonProtocol, PhaseResponse, "none answering this OPTIONS request", `Call-ID "not-yours@elsewhere" is not ours`)
	if el := time.Since(start); el < 900*time.Millisecond || el > 3*time.Second {
		t.Errorf("took %v, want to wait about the 1s timeout for the real answer", el)
	}
	if r.Facts.SIPFacts != nil {
		t.Errorf("SIP facts %+v for a reply that was not ours", r.Facts.SIPFacts)
	}
	rec.check(t)
}

// A stray before the real answer costs nothing.
func TestSIPUDPStrayThenAnswer(t *testing.T) {
	port, rec := sipUDPServer(t, "udp4", "127.0.0.1:0", func(req []byte) [][]byte {
		wrongBranch := sipReply(req, "200 OK", func(ls []string) []string {
			for i, l := range ls {
				if strings.HasPrefix(l, "Via:") {
					ls[i] = strings.Replace(l, "branch=z9hG4bK", "branch=z9hG4bKother", 1)
				}
			}
			return ls
		})
		return [][]byte{[]byte("garbage"), wrongBranch, sipReply(req, "200 OK", nil)}
	})
	r := lbRun1(t, sipCheck("udp", port, 3*time.Second))
	lbExpect(t, r, true, ReasonOK, PhaseResponse, "SIP 200 OK")
	rec.check(t)
}

// A lost datagram is resent (RFC 3261 Timer E) with the same transaction.
func TestSIPUDPRetransmits(t *testing.T) {
	var mu sync.Mutex
	seen := 0
	port, rec := sipUDPServer(t, "udp4", "127.0.0.1:0", func(req []byte) [][]byte {
		mu.Lock()
		defer mu.Unlock()
		seen++
		if seen == 1 {
			return nil // "lost"
		}
		return [][]byte{sipReply(req, "200 OK", nil)}
	})
	r := lbRun1(t, sipCheck("udp", port, 3*time.Second))
	lbExpect(t, r, true, ReasonOK, PhaseResponse, "SIP 200 OK", "(2 sends)")
	rec.check(t)
	reqs := rec.requests()
	if len(reqs) != 2 || !bytes.Equal(reqs[0], reqs[1]) {
		t.Errorf("got %d requests, want 2 identical (a retransmission)", len(reqs))
	}
}

func TestSIPUDPSilent(t *testing.T) {
	port, rec := sipUDPServer(t, "udp4", "127.0.0.1:0", func([]byte) [][]byte { return nil })
	start := time.Now()
	// Sends at 0, 0.5s and 1.5s (500ms, then doubling); the fourth would be
	// at 3.5s. A 2.5s timeout leaves a second on either side, which holds on
	// a loaded machine (1.6s once left 100ms and lost the third send).
	r := lbRun1(t, sipCheck("udp", port, 2500*time.Millisecond))
	lbExpect(t, r, false, ReasonNoReply, PhaseResponse, "no SIP response to 3 OPTIONS sends", "no ICMP error")
	if el := time.Since(start); el < 2400*time.Millisecond || el > 6*time.Second {
		t.Errorf("took %v for a 2.5s check", el)
	}
	rec.check(t)
	if n := len(rec.requests()); n != 3 {
		t.Errorf("%d sends, want 3 (T1 doubling)", n)
	}
}

func TestSIPUDPClosedPort(t *testing.T) {
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := pc.LocalAddr().(*net.UDPAddr).Port
	pc.Close()
	r := lbRun1(t, sipCheck("udp", port, 3*time.Second))
	lbExpect(t, r, false, ReasonRefused, PhaseResponse, "port unreachable", "from the target 127.0.0.1")
}

func TestSIPTCPOK(t *testing.T) {
	port, rec := sipTCPServer(t, func(req []byte) []byte { return sipReply(req, "200 OK", nil) })
	r := lbRun1(t, sipCheck("tcp", port, 3*time.Second))
	lbExpect(t, r, true, ReasonOK, PhaseResponse, "SIP 200 OK", `server "TestPBX/1.0"`, "over TCP")
	sipFacts(t, r, 200)
	for _, p := range []Phase{PhaseConnect, PhaseRequest, PhaseResponse} {
		if _, ok := r.TimingOf(p); !ok {
			t.Errorf("no %s timing", p)
		}
	}
	rec.check(t)
	if c := sipHeaderOf(rec.requests()[0], "Contact"); !strings.HasSuffix(c, ";transport=tcp>") {
		t.Errorf("Contact %q does not name the transport", c)
	}
}

func TestSIPTCP405(t *testing.T) {
	port, rec := sipTCPServer(t, func(req []byte) []byte { return sipReply(req, "405 Method Not Allowed", nil) })
	r := lbRun1(t, sipCheck("tcp", port, 3*time.Second))
	lbExpect(t, r, true, ReasonOK, PhaseResponse, "SIP 405 Method Not Allowed")
	sipFacts(t, r, 405)
	rec.check(t)
}

// Leading CRLFs, a provisional response with a body, compact and folded
// headers: the final response is the one reported.
func TestSIPTCPProvisionalThenFinal(t *testing.T) {
	port, rec := sipTCPServer(t, func(req []byte) []byte {
		trying := sipReply(req, "100 Trying", func(ls []string) []string {
			ls[len(ls)-1] = "l: 4"
			return ls
		})
		final := sipReply(req, "200 OK", func(ls []string) []string {
			for i, l := range ls {
				if v, ok := strings.CutPrefix(l, "Call-ID: "); ok {
					ls[i] = "i: " + v
				}
				if strings.HasPrefix(l, "Server:") {
					ls[i] = "Server: Test\r\n PBX"
				}
			}
			return ls
		})
		return append(append([]byte("\r\n\r\n"), trying...), append([]byte("body"), final...)...)
	})
	r := lbRun1(t, sipCheck("tcp", port, 3*time.Second))
	lbExpect(t, r, true, ReasonOK, PhaseResponse, "SIP 200 OK", `server "Test PBX"`)
	sipFacts(t, r, 200)
	rec.check(t)
}

func TestSIPTCPProvisionalOnly(t *testing.T) {
	port, rec := sipTCPServer(t, func(req []byte) []byte { return sipReply(req, "180 Ringing", nil) })
	start := time.Now()
	r := lbRun1(t, sipCheck("tcp", port, time.Second))
	lbExpect(t, r, true, ReasonOK, PhaseResponse, "SIP 180 Ringing", "only a provisional response")
	sipFacts(t, r, 180)
	if el := time.Since(start); el < 900*time.Millisecond || el > 3*time.Second {
		t.Errorf("took %v: it should wait for a final response until the 1s deadline", el)
	}
	rec.check(t)
}

func TestSIPTCPClosedPort(t *testing.T) {
	port := lbFreePort(t, "tcp4", "127.0.0.1:0")
	r := lbRun1(t, sipCheck("tcp", port, 3*time.Second))
	lbExpect(t, r, false, ReasonRefused, PhaseConnect, "refused")
}

func TestSIPTCPSilent(t *testing.T) {
	port, rec := sipTCPServer(t, func([]byte) []byte { return nil })
	start := time.Now()
	r := lbRun1(t, sipCheck("tcp", port, time.Second))
	lbExpect(t, r, false, ReasonTimeout, PhaseResponse, "accepted the connection and the OPTIONS request but sent nothing")
	if el := time.Since(start); el > 3*time.Second {
		t.Errorf("a 1s check took %v", el)
	}
	rec.check(t)
}

// sipFlood writes prefix and then an endless line until the client goes away
// (or 10s pass), in 32 KB writes from one reused buffer.
func sipFlood(prefix string) func(net.Conn) {
	return func(c net.Conn) {
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := sipReadRequest(bufio.NewReader(c)); err != nil {
			return
		}
		if _, err := io.WriteString(c, prefix); err != nil {
			return
		}
		chunk := bytes.Repeat([]byte("a"), 32<<10)
		for {
			if _, err := c.Write(chunk); err != nil {
				return
			}
		}
	}
}

// An endless line ends at the 64 KB header bound, at once, whatever the
// server would send.
func TestSIPTCPEndlessLine(t *testing.T) {
	for name, prefix := range map[string]string{
		"status_line": "SIP/2.0 200 OK",
		"header":      "SIP/2.0 200 OK\r\nVia: SIP/2.0/TCP x;branch=",
	} {
		t.Run(name, func(t *testing.T) {
			port := lbRawServer(t, sipFlood(prefix))
			start := time.Now()
			r := lbRun1(t, sipCheck("tcp", port, 3*time.Second))
			lbExpect(t, r, false, ReasonProtocol, PhaseResponse, "longer than 64 KB")
			if el := time.Since(start); el > 2*time.Second {
				t.Errorf("took %v: the bound should end it long before the deadline", el)
			}
		})
	}
}

// Something that is not SIP fails at its first bytes, not after 64 KB.
func TestSIPTCPNotSIP(t *testing.T) {
	for name, handle := range map[string]func(net.Conn){
		"flood": sipFlood(""),
		"http": func(c net.Conn) {
			defer c.Close()
			_, _ = sipReadRequest(bufio.NewReader(c))
			_, _ = io.WriteString(c, "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
		},
	} {
		t.Run(name, func(t *testing.T) {
			port := lbRawServer(t, handle)
			r := lbRun1(t, sipCheck("tcp", port, 3*time.Second))
			want := "not a SIP response"
			if name == "http" {
				want = `an HTTP server answered, not SIP: "HTTP/1.1 400 Bad Request"`
			}
			lbExpect(t, r, false, ReasonProtocol, PhaseResponse, want)
		})
	}
}

func TestSIPTCPBadResponses(t *testing.T) {
	for name, tc := range map[string]struct {
		respond func(req []byte) []byte
		detail  string
	}{
		"wrong_call_id": {func(req []byte) []byte {
			return sipReply(req, "200 OK", func(ls []string) []string {
				for i, l := range ls {
					if strings.HasPrefix(l, "Call-ID:") {
						ls[i] = "Call-ID: other"
					}
				}
				return ls
			})
		}, `answers another request: Call-ID "other" is not ours`},
		"wrong_cseq": {func(req []byte) []byte {
			return sipReply(req, "200 OK", func(ls []string) []string {
				for i, l := range ls {
					if strings.HasPrefix(l, "CSeq:") {
						ls[i] = "CSeq: 2 OPTIONS"
					}
				}
				return ls
			})
		}, `CSeq "2 OPTIONS"`},
		"status_700":        {func(req []byte) []byte { return []byte("SIP/2.0 700 Odd\r\n\r\n") }, "not a SIP status line"},
		"no_reason_space":   {func(req []byte) []byte { return []byte("SIP/2.0 200\r\n\r\n") }, "not a SIP status line"},
		"closed_mid_header": {func(req []byte) []byte { return []byte("SIP/2.0 200 OK\r\nVia: x") }, "closed the connection"},
		"closed_at_once":    {func(req []byte) []byte { return []byte{} }, "closed the connection"},
	} {
		t.Run(name, func(t *testing.T) {
			port := lbRawServer(t, func(c net.Conn) {
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(10 * time.Second))
				req, err := sipReadRequest(bufio.NewReader(c))
				if err != nil {
					return
				}
				_, _ = c.Write(tc.respond(req))
			})
			r := lbRun1(t, sipCheck("tcp", port, 3*time.Second))
			lbExpect(t, r, false, ReasonProtocol, PhaseResponse, tc.detail)
		})
	}
}

func TestSIPTLSOK(t *testing.T) {
	p := lbPKI(t)
	port, rec := sipTLSServer(t, p.good, func(req []byte) []byte { return sipReply(req, "200 OK", nil) })
	c := sipCheck("tls", port, 3*time.Second)
	own(&c.TLS).CAFile = lbWriteCAFile(t, p.root)
	r := lbRun1(t, c)
	lbExpect(t, r, true, ReasonOK, PhaseResponse, "SIP 200 OK", "over TLS")
	sipFacts(t, r, 200)
	if f := r.Facts.TLSFacts; f == nil || f.Version == "" || f.Issuer != "Test Root CA" {
		t.Errorf("TLS facts = %+v", f)
	}
	if _, ok := r.TimingOf(PhaseTLS); !ok {
		t.Error("no tls timing")
	}
	rec.check(t)
	if c := sipHeaderOf(rec.requests()[0], "Contact"); !strings.HasSuffix(c, ";transport=tls>") {
		t.Errorf("Contact %q does not name the transport", c)
	}
}

func TestSIPTLSUnknownCA(t *testing.T) {
	p := lbPKI(t)
	port, _ := sipTLSServer(t, p.unknownCA, func(req []byte) []byte { return sipReply(req, "200 OK", nil) })
	c := sipCheck("tls", port, 3*time.Second)
	own(&c.TLS).CAFile = lbWriteCAFile(t, p.root)
	r := lbRun1(t, c)
	lbExpect(t, r, false, ReasonTLSUntrusted, PhaseTLS, "unknown authority")
	if f := r.Facts.TLSFacts; f == nil || f.Issuer != "Unknown Test CA" {
		t.Errorf("TLS facts = %+v, want the presented issuer", f)
	}
	if r.Facts.SIPFacts != nil {
		t.Error("SIP facts without a SIP exchange")
	}
}

func TestSIPUnknownTransport(t *testing.T) {
	r := lbRun1(t, sipCheck("sctp", 5060, time.Second))
	lbExpect(t, r, false, ReasonInternalError, PhaseNone, `unknown transport "sctp"`)
}

func TestSIPRequestURI(t *testing.T) {
	local := &net.UDPAddr{IP: net.ParseIP("192.0.2.7"), Port: 40000}
	for _, tc := range []struct {
		host, transport string
		port            int
		want            string
	}{
		{"pbx.example.com", "udp", 5060, "OPTIONS sip:pbx.example.com SIP/2.0\r\n"},
		{"pbx.example.com", "tcp", 5060, "OPTIONS sip:pbx.example.com SIP/2.0\r\n"},
		{"pbx.example.com", "tls", 5061, "OPTIONS sip:pbx.example.com SIP/2.0\r\n"},
		{"pbx.example.com", "tls", 5060, "OPTIONS sip:pbx.example.com:5060 SIP/2.0\r\n"},
		{"pbx.example.com", "udp", 5080, "OPTIONS sip:pbx.example.com:5080 SIP/2.0\r\n"},
		{"2001:db8::1", "udp", 5060, "OPTIONS sip:[2001:db8::1] SIP/2.0\r\n"},
		{"2001:db8::1", "tcp", 5062, "OPTIONS sip:[2001:db8::1]:5062 SIP/2.0\r\n"},
	} {
		x := newSIPTxn(tc.transport)
		req := x.request(&Check{Host: tc.host, Port: tc.port}, local)
		if !strings.HasPrefix(string(req), tc.want) {
			t.Errorf("%s %s:%d: request line %q, want %q", tc.transport, tc.host, tc.port,
				strings.SplitN(string(req), "\r\n", 2)[0], tc.want)
		}
		if ps := sipRequestProblems(req, tc.transport); len(ps) > 0 {
			t.Errorf("%s: %v", tc.transport, ps)
		}
		if via := sipHeaderOf(req, "Via"); !strings.HasPrefix(via, "SIP/2.0/"+strings.ToUpper(tc.transport)+" 192.0.2.7:40000;branch="+x.branch) {
			t.Errorf("Via %q", via)
		}
	}
	a, b := newSIPTxn("udp"), newSIPTxn("udp")
	if a.branch == b.branch || a.callID == b.callID || a.tag == b.tag {
		t.Error("two transactions share identifiers")
	}
}

func TestSIPParseHead(t *testing.T) {
	x := sipTxn{branch: "z9hG4bKabc", callID: "cid1"}
	good := "SIP/2.0 200 OK\r\nv: SIP/2.0/UDP 10.0.0.1:5060;received=1.2.3.4;BRANCH=z9hG4bKabc, SIP/2.0/UDP p;branch=z9hG4bKzzz\r\n" +
		"Via: SIP/2.0/UDP q;branch=z9hG4bKlater\r\ni: cid1\r\nCSeq:   1   OPTIONS\r\nUser-Agent: UA\x01x\r\n\r\nv=0\r\n"
	r, err := parseSIPHead([]byte(good))
	if err != nil {
		t.Fatal(err)
	}
	if why := r.mismatch(x); why != "" {
		t.Errorf("mismatch: %s", why)
	}
	if r.code != 200 || r.reason != "OK" || r.server != "UA\x01x" {
		t.Errorf("parsed %+v", r)
	}
	if got := printable([]byte(r.server)); got != `UA\x01x` {
		t.Errorf("sanitized server = %q", got)
	}
	for _, bad := range []string{
		"", "SIP/2.0 200OK", "SIP/2.0 099 Low\r\n", "SIP/2.0 2x0 OK", "SIP/1.0 200 OK", "sip/2.0 200 OK",
		"HTTP/1.1 200 OK", "SIP/2.0 200 OK\r\nno colon here", "SIP/2.0 200 OK\r\n folded first",
		"SIP/2.0 200 OK\r\nContent-Length: -1",
	} {
		if _, err := parseSIPHead([]byte(bad)); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
	if r, err := parseSIPHead([]byte("SIP/2.0 603 \r\n")); err != nil || r.code != 603 || r.reason != "" {
		t.Errorf("empty reason phrase: %+v, %v", r, err)
	}
}

// endless is a reader that repeats pat forever and counts what was taken from it.
type endless struct {
	pat string
	n   int
}

func (e *endless) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = e.pat[(e.n+i)%len(e.pat)]
	}
	e.n += len(p)
	return len(p), nil
}

// However long the line, readSIPHead takes at most the bound plus one buffer.
func TestSIPReadHeadBounded(t *testing.T) {
	src := &endless{pat: "a"}
	br := bufio.NewReaderSize(io.MultiReader(strings.NewReader("SIP/2.0 200 OK\r\nX: "), src), 4096)
	_, err := readSIPHead(br, sipMaxHead)
	var pe *protocolError
	if !errors.As(err, &pe) {
		t.Fatalf("err = %v, want a protocolError", err)
	}
	if src.n > sipMaxHead+8192 {
		t.Errorf("read %d bytes for a %d-byte bound", src.n, sipMaxHead)
	}
	// Many small lines are bounded the same way.
	lines := &endless{pat: "X: y\r\n"}
	br = bufio.NewReaderSize(io.MultiReader(strings.NewReader("SIP/2.0 200 OK\r\n"), lines), 4096)
	if _, err := readSIPHead(br, sipMaxHead); err == nil || lines.n > sipMaxHead+8192 {
		t.Errorf("err = %v after %d bytes", err, lines.n)
	}
}

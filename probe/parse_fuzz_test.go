package probe

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/beevik/ntp"
	"golang.org/x/net/dns/dnsmessage"
)

// Fuzz targets for every parser of bytes a server sends. Each checks, on top
// of "no panic, no hang", the promises a detail makes: it is bounded, holds
// no raw control byte (no terminal escapes from a server), and, for the
// kinds that log in, shows no run of 4 bytes of the password (fzSecret)
// that a hostile server echoes.
// Seed corpora live in testdata/fuzz/<target>; CI runs each for seconds.

const fzSecret = "Zq7kP9vX2mL4"

// fzText fails when s is unbounded or holds a control byte.
func fzText(t *testing.T, what, s string) {
	t.Helper()
	if len(s) > 4096 {
		t.Fatalf("%s is %d bytes long", what, len(s))
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == 0x7f {
			t.Fatalf("%s holds control byte %#x: %q", what, c, s)
		}
	}
}

// fzShown checks text as a kind with a password shows it: through the
// final scrub of its result (sc.result), then for part of the password.
func fzShown(t *testing.T, sc *scrubber, what, s string) {
	t.Helper()
	s = sc.result(Result{Detail: s}).Detail
	fzText(t, what, s)
	for i := 0; i+scrubMin <= len(fzSecret); i++ {
		if strings.Contains(s, fzSecret[i:i+scrubMin]) {
			t.Fatalf("%s shows %q of the password: %q", what, fzSecret[i:i+scrubMin], s)
		}
	}
}

// fzDetail is the detail err becomes.
func fzDetail(err error, phase Phase) string {
	_, d := classifyWith(err, phase, net.IPv4(192, 0, 2, 1), func() []net.IP { return nil })
	return d
}

// fzErr checks the detail an error becomes.
func fzErr(t *testing.T, err error, phase Phase) {
	t.Helper()
	if err != nil {
		fzText(t, "detail", fzDetail(err, phase))
	}
}

// fzSecretErr checks the detail an error becomes in a kind with a password.
func fzSecretErr(t *testing.T, sc *scrubber, err error, phase Phase) {
	t.Helper()
	if err != nil {
		fzShown(t, sc, "detail", fzDetail(err, phase))
	}
}

func FuzzFTPReply(f *testing.F) {
	for _, s := range []string{
		"220 ready\r\n331 pw\r\n230 ok\r\n",
		"220-multi\r\n220-more\r\n220 end\r\n",
		"229 Entering Extended Passive Mode (|||6446|)\r\n",
		"227 Entering Passive Mode (192,0,2,9,117,48)\r\n",
		"530 " + strings.Repeat("-", 16) + fzSecret + strings.Repeat("y", 9000) + "\r\n",
		"120 wait\r\n421 go\r\n",
		"SSH-2.0-x\r\n",
		"\x16\x03\x01\x00",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		sc := newScrubber(fzSecret)
		ctl := newFTPControl(nil, sc)
		ctl.lr = newBoundedLineReader(bytes.NewReader(data), ftpMaxLine)
		ctl.lr.scrub, ctl.lr.greets = sc, "FTP"
		for range 8 {
			rep, err := ctl.reply()
			if err != nil {
				fzSecretErr(t, sc, err, PhaseBanner)
				return
			}
			if rep.code < 100 || rep.code > 599 || rep.lines < 1 || rep.lines > ftpMaxReplyLines {
				t.Fatalf("reply %+v", rep)
			}
			fzShown(t, sc, "reply", ctl.describe(rep))
			if port, err := parseEPSV(rep.last); err == nil && (port < 1 || port > 65535) {
				t.Fatalf("EPSV port %d", port)
			}
			if ip, port, err := parsePASV(rep.last); err == nil && (ip.To4() == nil || port < 1 || port > 65535) {
				t.Fatalf("PASV %v %d", ip, port)
			}
		}
	})
}

func FuzzFTPPassive(f *testing.F) {
	for _, s := range []string{"Entering Extended Passive Mode (|||6446|)", "(!!!21!)", "(|||0|)", "(|||",
		"Entering Passive Mode (192,0,2,9,117,48)", "=192,0,2,9,0,0", "1,2,3,4,5,6,7", "(999,1,1,1,1,1)"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		if port, err := parseEPSV(text); err == nil && (port < 1 || port > 65535) {
			t.Fatalf("EPSV %q: port %d", text, port)
		}
		if ip, port, err := parsePASV(text); err == nil && (len(ip) != 4 || port < 1 || port > 65535) {
			t.Fatalf("PASV %q: %v %d", text, ip, port)
		}
	})
}

// fzMailSession is a mail session reading data, the password planted.
func fzMailSession(data []byte, greets string) *mailSession {
	login := &mailLogin{user: "probe", pass: fzSecret}
	login.wire = []string{fzSecret, login.plainToken()}
	login.sc = newScrubber(login.wire...)
	s := &mailSession{ctx: context.Background(), login: login, facts: &GreetingFacts{}, r: &Result{}}
	s.lr = newBoundedLineReader(bytes.NewReader(data), mailMaxLine)
	s.lr.scrub, s.lr.greets = login.sc, greets
	return s
}

func FuzzMailReplies(f *testing.F) {
	for _, s := range []string{
		"220 mail ESMTP\r\n250-mail\r\n250-AUTH PLAIN LOGIN\r\n250-AUTH=PLAIN\r\n250 STARTTLS\r\n",
		"535 5.7.8 " + fzSecret + "\r\n",
		"* OK IMAP ready\r\n* CAPABILITY IMAP4rev1\r\na1 NO [AUTHENTICATIONFAILED] (\"probe\" \"" + fzSecret + "\")\r\n",
		"+OK POP3\r\n-ERR " + strings.Repeat("x", 50) + fzSecret + "\r\n",
		"250-a\r\n251 b\r\n",
		"+ go ahead\r\n",
	} {
		f.Add([]byte(s), uint8(0))
	}
	f.Fuzz(func(t *testing.T, data []byte, which uint8) {
		greets := []string{"SMTP", "IMAP", "POP3", ""}[which%4]
		s := fzMailSession(data, greets)
		sc := s.login.sc
		switch greets {
		case "SMTP", "":
			for range 8 {
				rep, err := s.smtpReply()
				if err != nil {
					fzSecretErr(t, sc, err, PhaseBanner)
					return
				}
				fzShown(t, sc, "reply", rep.text())
				for _, k := range rep.keywords() {
					fzShown(t, sc, "keyword", k)
				}
				_ = rep.authMechanisms()
			}
		case "IMAP", "POP3":
			if _, err := s.greetingLine(); err != nil {
				fzSecretErr(t, sc, err, PhaseBanner)
				return
			}
			fzShown(t, sc, "greeting", s.facts.Greeting)
			resp, err := s.imapTagged("a1")
			fzSecretErr(t, sc, err, PhaseLogin)
			fzShown(t, sc, "completion", cleanText(resp, mailShown))
			fzSecretErr(t, sc, s.imapContinue("a2", s.login), PhaseLogin)
		}
	})
}

func FuzzSSHIdentification(f *testing.F) {
	for _, s := range []string{
		"SSH-2.0-OpenSSH_9.6\r\n", "Welcome\r\nSSH-2.0-x y z\r\n", "SSH-1.5-old\r\n", "SSH-2.0\r\n",
		"HTTP/1.1 400 Bad\r\n", "220 smtp\r\n", "\x00\x01junk\r\n", "\x15\x03\x03\x00\x02\x02\x28",
		strings.Repeat("hello\r\n", 40),
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		lr := newBoundedLineReader(bytes.NewReader(data), sshMaxLine)
		lr.greets = "SSH"
		id, pre, err := readSSHIdentification(lr)
		if err != nil {
			fzErr(t, err, PhaseBanner)
			return
		}
		if pre < 0 || pre >= sshMaxLines || !strings.HasPrefix(id.line, "SSH-") || len(id.line)+2 > sshMaxIDLine {
			t.Fatalf("identification %+v after %d lines", id, pre)
		}
		fzText(t, "identification", cleanText(id.line, sshMaxIDLine))
		fzText(t, "software", id.software)
	})
}

// fzSIPTxn is the transaction the SIP seeds answer.
var fzSIPTxn = sipTxn{transport: "tcp", branch: sipBranchCookie + "abc", callID: "call1", tag: "t1"}

func FuzzSIPResponse(f *testing.F) {
	ok := "SIP/2.0 200 OK\r\nVia: SIP/2.0/TCP 127.0.0.1;branch=" + fzSIPTxn.branch + "\r\n" +
		"Call-ID: call1\r\nCSeq: 1 OPTIONS\r\nServer: fuzz\r\nContent-Length: 0\r\n\r\n"
	for _, s := range []string{
		ok,
		"SIP/2.0 100 Trying\r\nv: SIP/2.0/TCP x;branch=" + fzSIPTxn.branch + "\r\ni: call1\r\nCSeq: 1 OPTIONS\r\nl: 3\r\n\r\nabc" + ok,
		"SIP/2.0 200 OK\r\nCall-ID: other\r\n\r\n",
		"\r\n\r\nSIP/2.0 404 Not Found\r\n folded\r\n\r\n",
		"HTTP/1.1 400 Bad\r\n\r\n",
		"SIP/2.0 99 x\r\n\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		// A datagram (UDP) and a stream (TCP, TLS).
		if resp, err := parseSIPHead(data); err != nil {
			fzErr(t, err, PhaseResponse)
		} else {
			fzText(t, "status", resp.status())
			fzText(t, "mismatch", resp.mismatch(fzSIPTxn))
			fzText(t, "detail", sipOKDetail(resp, false, "UDP", "127.0.0.1:5060", time.Millisecond))
		}
		final, prov, err := readSIPResponses(bufio.NewReaderSize(bytes.NewReader(data), 4096), fzSIPTxn)
		fzErr(t, err, PhaseResponse)
		for _, r := range []*sipResponse{final, prov} {
			if r == nil {
				continue
			}
			if r.code < 100 || r.code > 699 || r.mismatch(fzSIPTxn) != "" {
				t.Fatalf("accepted %+v", r)
			}
			fzText(t, "detail", sipOKDetail(r, final == nil, "TCP", "127.0.0.1:5060", time.Millisecond))
			fzText(t, "server", printable([]byte(r.server)))
		}
	})
}

func FuzzUDPReplies(f *testing.F) {
	f.Add([]byte{0x01, 0x01, 0, 0, 0x21, 0x12, 0xa4, 0x42}, true)
	f.Add([]byte{0x01, 0x11, 0, 8, 0x21, 0x12, 0xa4, 0x42, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 0, 0, 0, 0}, false)
	f.Add([]byte{0, 0, 0x81, 0x83, 0, 0, 0, 0, 0, 0, 0, 0}, true)
	f.Fuzz(func(t *testing.T, data []byte, patch bool) {
		for _, o := range []UDPOptions{{Payload: "stun"}, {Payload: "dns", Query: "example.com"}, {Payload: "echo"}, {Send: []byte("x")}} {
			req, match, describe, err := udpRequest(o)
			if err != nil {
				t.Fatal(err)
			}
			b := append([]byte(nil), data...)
			if patch {
				// Make the reply claim to answer this request, so that
				// describe runs on arbitrary rest.
				switch o.Payload {
				case "stun":
					b = append(b, make([]byte, max(0, 20-len(b)))...)
					binary.BigEndian.PutUint16(b[0:2], 0x0101|uint16(len(data)%2)<<4)
					copy(b[4:20], req[4:20])
				case "dns":
					b = append(b, make([]byte, max(0, 12-len(b)))...)
					copy(b[0:2], req[0:2])
					b[2] |= 0x80
				case "echo":
					b = append(b, req...)
				}
			}
			if match(b) {
				fzText(t, "reply", describe(b))
			}
		}
		var p dnsmessage.Parser
		if h, err := p.Start(data); err == nil {
			fzText(t, "rcode", dnsRCodeName(h.RCode))
		}
	})
}

func FuzzNTPReply(f *testing.F) {
	good := make([]byte, ntpHeaderLen)
	good[0], good[1] = 0x24, 2
	f.Add(good, int64(0), int64(time.Millisecond))
	kod := append([]byte(nil), good...)
	kod[1] = 0
	copy(kod[12:16], "RATE")
	f.Add(kod, int64(time.Hour), int64(-1))
	f.Fuzz(func(t *testing.T, data []byte, offset, rtt int64) {
		var xmit [8]byte
		if len(data) >= ntpHeaderLen {
			copy(xmit[:], data[24:32])
			if !ntpAnswers(data, xmit) {
				t.Fatal("a reply echoing the transmit time does not answer")
			}
		}
		if len(data) < ntpHeaderLen {
			if ntpAnswers(data, xmit) {
				t.Fatal("a short datagram answers")
			}
			data = append(data, make([]byte, ntpHeaderLen-len(data))...)
		}
		// The header fields the verdict reads (the ntp package decodes the
		// wire format; the verdict must hold for any values it yields).
		be := binary.BigEndian
		short := func(v uint32) time.Duration { return time.Duration(v) * time.Second >> 16 }
		resp := &ntp.Response{
			Leap:           ntp.LeapIndicator(data[0] >> 6),
			Version:        int(data[0]>>3) & 7,
			Stratum:        data[1],
			ClockOffset:    time.Duration(offset),
			RTT:            time.Duration(rtt),
			RootDelay:      short(be.Uint32(data[4:8])),
			RootDispersion: short(be.Uint32(data[8:12])),
			ReferenceID:    be.Uint32(data[12:16]),
			ReferenceTime:  time.Unix(int64(be.Uint32(data[16:20]))-2208988800, 0),
		}
		resp.RootDistance = resp.RTT/2 + resp.RootDelay/2 + resp.RootDispersion
		if resp.Stratum == 0 {
			resp.KissCode = string(data[12:16])
		}
		r := ntpVerdict(Result{}, resp, 123, 0)
		fzText(t, "detail", r.Detail)
		if r.Up != (r.Reason == ReasonOK) || (r.Up && (resp.Stratum < 1 || resp.Stratum > 15)) {
			t.Fatalf("verdict up=%v reason=%s for stratum %d", r.Up, r.Reason, resp.Stratum)
		}
	})
}

func FuzzHTTPResponse(f *testing.F) {
	for _, s := range []string{
		"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
		"HTTP/1.1 302 Found\r\nLocation: http://127.0.0.2:1/next\r\nContent-Length: 0\r\n\r\n",
		"HTTP/1.1 407 Proxy Authentication Required\r\nX-Squid-Error: ERR_ACCESS_DENIED 0\r\n\r\n",
		"HTTP/1.1 503 \x1b[2J\r\nLocation: \x00\r\n\r\n",
		"HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab",
	} {
		f.Add([]byte(s), uint8(0))
	}
	req, _ := http.NewRequest(http.MethodGet, "http://127.0.0.1:8080/", nil)
	pu, _ := url.Parse("http://127.0.0.1:3128")
	f.Fuzz(func(t *testing.T, data []byte, mode uint8) {
		resp, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(data)), req)
		if err != nil {
			return // net/http's parser; its errors are classified in TestHTTPHostile
		}
		n, bodyErr := io.Copy(io.Discard, io.LimitReader(resp.Body, httpMaxBody))
		resp.Body.Close()
		c := &Check{Name: "t", Kind: "http", Host: "127.0.0.1", Port: 8080}
		own(&c.HTTP).NoRedirects = mode&1 != 0
		p := &httpProbe{t: Target{Check: c, Addr: net.IPv4(127, 0, 0, 1)}, timings: map[Phase]time.Duration{}}
		if mode&2 != 0 {
			p.lastPlain = pu
		}
		res := p.judge(Result{}, resp, n, bodyErr, http.MethodGet, req.URL, httpDefaultExpect)
		fzText(t, "detail", res.Detail)
		if res.Up && !statusExpected(resp.StatusCode, httpDefaultExpect) {
			t.Fatalf("up with status %d", resp.StatusCode)
		}
		// A redirect's target names the hop when it fails.
		if loc, err := resp.Location(); err == nil {
			p.redirects, p.hopURL, p.hopStatus, p.hopAddr = 1, loc.Redacted(), resp.StatusCode, "192.0.2.1:80"
			failed := Result{Detail: "connection refused"}
			p.blameHop(&failed)
			fzText(t, "hop detail", failed.Detail)
		}
	})
}

func FuzzScrubber(f *testing.F) {
	f.Add(fzSecret, "530 "+fzSecret+" wrong")
	f.Add("ab", "x ab y")
	f.Add("d]xy", "[redacted]xy d]xy")
	f.Add("redacted1", "redacted1redacted1")
	f.Fuzz(func(t *testing.T, secret, text string) {
		out := newScrubber(secret).scrub(text)
		if secret == "" {
			if out != text {
				t.Fatalf("nothing to scrub, yet %q became %q", text, out)
			}
			return
		}
		if len(secret) < scrubMin {
			if strings.Contains(out, secret) {
				t.Fatalf("scrub(%q) = %q shows the password %q", text, out, secret)
			}
			return
		}
		for i := 0; i+scrubMin <= len(secret); i++ {
			if strings.Contains(out, secret[i:i+scrubMin]) {
				t.Fatalf("scrub(%q) = %q shows %q of %q", text, out, secret[i:i+scrubMin], secret)
			}
		}
	})
}

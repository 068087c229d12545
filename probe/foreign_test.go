package probe

import (
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// Every banner reader facing another protocol's greeting fails at once as
// protocol, quoting what it saw, instead of waiting for the timeout: each
// server below greets and then stays open, silent, until the probe leaves.

var lbForeignGreetings = []struct {
	name, proto, greeting, want string
}{
	{"smtp", "FTP SMTP", "220 mail.example ESMTP Postfix\r\n", `an FTP or SMTP server answered, not %s: "220 mail.example ESMTP Postfix"`},
	{"pop3", "POP3", "+OK POP3 ready\r\n", `a POP3 server answered, not %s: "+OK POP3 ready"`},
	{"imap", "IMAP", "* OK [CAPABILITY IMAP4rev1] ready\r\n", `an IMAP server answered, not %s: "* OK [CAPABILITY IMAP4rev1] ready"`},
	{"http", "HTTP", "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n", `an HTTP server answered, not %s: "HTTP/1.1 400 Bad Request"`},
	{"ssh", "SSH", "SSH-2.0-OpenSSH_9.6\r\n", `an SSH server answered, not %s: "SSH-2.0-OpenSSH_9.6"`},
	{"sip", "SIP", "SIP/2.0 400 Bad Request\r\n\r\n", `a SIP server answered, not %s: "SIP/2.0 400 Bad Request"`},
	// A TLS alert record: no line end ever comes.
	{"tls record", "TLS", "\x15\x03\x03\x00\x02\x02\x28", `a TLS endpoint answered, not %s: "\x15\x03\x03\x00\x02\x02("`},
}

func TestBannerReadersFailFastOnAnotherProtocol(t *testing.T) {
	p := lbPKI(t)
	const timeout = 3 * time.Second
	type reader struct {
		kind, proto string
		phase       Phase
		server      func(t *testing.T, greeting string) int
		check       func(t *testing.T, port int) *Check
	}
	readers := []reader{
		{"ssh", "SSH", PhaseBanner, lbGreetAndHold, func(t *testing.T, port int) *Check { return lbSSHCheck(port, timeout) }},
		{"ftp", "FTP", PhaseBanner, lbGreetAndHold, func(t *testing.T, port int) *Check {
			return &Check{Name: "t", Kind: "ftp", Host: "127.0.0.1", Port: port, Timeout: timeout}
		}},
		{"smtp", "SMTP", PhaseBanner, lbGreetAndHold, func(t *testing.T, port int) *Check { return lbMailCheck(t, "smtp", port) }},
		{"sip", "SIP", PhaseResponse, lbGreetAndHold, func(t *testing.T, port int) *Check { return sipCheck("tcp", port, timeout) }},
	}
	for _, kind := range []struct{ kind, proto string }{{"smtps", "SMTP"}, {"imaps", "IMAP"}, {"pop3s", "POP3"}} {
		readers = append(readers, reader{kind.kind, kind.proto, PhaseBanner, func(t *testing.T, greeting string) int {
			port, _ := lbMailTLSServer(t, p.good, greeting, func() func(string) string { return func(string) string { return "" } })
			return port
		}, func(t *testing.T, port int) *Check { return lbMailCheck(t, kind.kind, port) }})
	}
	for _, rd := range readers {
		for _, g := range lbForeignGreetings {
			if strings.Contains(" "+g.proto+" ", " "+rd.proto+" ") {
				continue // its own greeting
			}
			t.Run(rd.kind+"/"+g.name, func(t *testing.T) {
				port := rd.server(t, g.greeting)
				c := rd.check(t, port)
				c.Timeout = timeout
				begin := time.Now()
				r := lbRun1(t, c)
				took := time.Since(begin)
				lbExpect(t, r, false, ReasonProtocol, rd.phase, strings.Replace(g.want, "%s", rd.proto, 1))
				// Well before the timeout: a loaded machine still answers
				// loopback in far less than a second.
				if took > timeout/3 {
					t.Errorf("took %s with a %s timeout: it waited instead of failing at once", took, timeout)
				}
			})
		}
	}
}

// lbGreetAndHold is a server that sends greeting on accept and then reads
// and discards until the client leaves.
func lbGreetAndHold(t *testing.T, greeting string) int {
	return lbRawServer(t, func(c net.Conn) {
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.WriteString(c, greeting); err != nil {
			return
		}
		_, _ = io.Copy(io.Discard, c)
	})
}

package probe

import (
	"encoding/json"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// lbSSHCheck is an ssh check against a loopback port.
func lbSSHCheck(port int, timeout time.Duration) *Check {
	return &Check{Name: "t", Kind: "ssh", Host: "127.0.0.1", Port: port, IPFamily: FamilyIPv4, Timeout: timeout}
}

// lbSSHServer writes out on every connection, then reads (and discards)
// until the client closes; it records whether the client ever sent a byte.
func lbSSHServer(t *testing.T, out string, clientSent chan<- int) int {
	t.Helper()
	return lbRawServer(t, func(c net.Conn) {
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.WriteString(c, out); err != nil {
			return
		}
		n, _ := io.Copy(io.Discard, c)
		if clientSent != nil {
			clientSent <- int(n)
		}
	})
}

func TestSSHIdentification(t *testing.T) {
	sent := make(chan int, 1)
	port := lbSSHServer(t, "SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n", sent)
	r := lbRun1(t, lbSSHCheck(port, 3*time.Second))
	lbExpect(t, r, true, ReasonOK, PhaseBanner, `"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3"`, "software OpenSSH_9.2p1", "protocol 2.0")
	f := r.Facts.GreetingFacts
	if f == nil || f.Software != "OpenSSH_9.2p1" || f.Greeting != "SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3" {
		t.Errorf("facts %+v", f)
	}
	b, err := json.Marshal(r.Facts)
	if err != nil || !strings.Contains(string(b), `"software":"OpenSSH_9.2p1"`) {
		t.Errorf("facts JSON %s, %v", b, err)
	}
	if _, ok := r.TimingOf(PhaseBanner); !ok {
		t.Errorf("no banner timing: %+v", r.Timings)
	}
	select {
	case n := <-sent:
		if n != 0 {
			t.Errorf("the probe sent %d bytes to the SSH server; it must only read", n)
		}
	case <-time.After(5 * time.Second):
		t.Error("the probe did not close the connection")
	}
}

func TestSSHVariants(t *testing.T) {
	for _, tc := range []struct {
		name   string
		out    string
		up     bool
		reason Reason
		parts  []string
	}{
		{"LF only", "SSH-2.0-dropbear_2022.83\n", true, ReasonOK, []string{"software dropbear_2022.83"}},
		{"protocol 1.99", "SSH-1.99-Cisco-1.25\r\n", true, ReasonOK, []string{"protocol 1.99", "software Cisco"}},
		{"lines before", "Welcome to the jump host\r\nauthorized use only\r\nSSH-2.0-OpenSSH_9.6\r\n", true, ReasonOK,
			[]string{"software OpenSSH_9.6", "after 2 other line(s)"}},
		{"escape sequences sanitized", "SSH-2.0-Evil\x1b[31m_1\r\n", false, ReasonProtocol, []string{`malformed SSH identification "SSH-2.0-Evil\x1b[31m_1"`}},
		{"ssh 1 only", "SSH-1.5-OldServer\r\n", false, ReasonProtocol, []string{"obsolete SSH protocol 1"}},
		{"malformed", "SSH-2.0\r\n", false, ReasonProtocol, []string{"malformed SSH identification"}},
		{"too long", "SSH-2.0-" + strings.Repeat("x", 300) + "\r\n", false, ReasonProtocol, []string{"longer than 255 bytes"}},
		{"http", "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n", false, ReasonProtocol,
			[]string{`an HTTP server answered, not SSH: "HTTP/1.1 400 Bad Request"`}},
		{"smtp", "220 mail.example ESMTP\r\n", false, ReasonProtocol,
			[]string{`an FTP or SMTP server answered, not SSH: "220 mail.example ESMTP"`}},
		{"other first line, then closed", "Welcome\r\n", false, ReasonProtocol,
			[]string{`closed the connection without an SSH identification; the first was "Welcome"`}},
		{"garbage", "\x00\x01\xfe\xffjunk\r\n", false, ReasonProtocol, []string{`not an SSH server: it sent "\x00\x01\xfe\xffjunk"`}},
		{"endless preamble", strings.Repeat("hello\r\n", 100), false, ReasonProtocol, []string{"no SSH identification within 32 lines"}},
		{"long line", strings.Repeat("A", 1<<20), false, ReasonProtocol, []string{"longer than 1024 bytes"}},
		{"closes at once", "", false, ReasonProtocol, []string{"closed it without a word", "MaxStartups"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			port := lbRawServer(t, func(c net.Conn) {
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(5 * time.Second))
				_, _ = io.WriteString(c, tc.out)
				// Close after writing, like a server that gave up on us.
			})
			start := time.Now()
			r := lbRun1(t, lbSSHCheck(port, 3*time.Second))
			lbExpect(t, r, tc.up, tc.reason, PhaseBanner, tc.parts...)
			if el := time.Since(start); el > 2*time.Second {
				t.Errorf("took %v: a server that answered must be judged at once", el)
			}
		})
	}
}

func TestSSHSilentTLSServer(t *testing.T) {
	p := lbPKI(t)
	srv := lbStartTLS(t, p.good) // a TLS server waits for the ClientHello
	start := time.Now()
	r := lbRun1(t, lbSSHCheck(srv.port, 700*time.Millisecond))
	lbExpect(t, r, false, ReasonProtocol, PhaseBanner, "sent nothing in", "not an SSH server, or one waiting for the client as a TLS port does")
	if el := time.Since(start); el < 600*time.Millisecond || el > 3*time.Second {
		t.Errorf("took %v for a 700ms check", el)
	}
}

func TestSSHPartialLineThenSilence(t *testing.T) {
	port := lbRawServer(t, func(c net.Conn) {
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		_, _ = io.WriteString(c, "SSH-2.0-Half")
		_, _ = io.Copy(io.Discard, c)
	})
	r := lbRun1(t, lbSSHCheck(port, 600*time.Millisecond))
	lbExpect(t, r, false, ReasonProtocol, PhaseBanner, `sent "SSH-2.0-Half" and then no end of line`)
}

func TestSSHClosedPort(t *testing.T) {
	port := lbFreePort(t, "tcp4", "127.0.0.1:0")
	r := lbRun1(t, lbSSHCheck(port, 2*time.Second))
	lbExpect(t, r, false, ReasonRefused, PhaseConnect, "refused")
	if r.Facts.GreetingFacts != nil {
		t.Errorf("greeting facts %+v for a refused connection", r.Facts.GreetingFacts)
	}
}

func TestSSHKindRegistered(t *testing.T) {
	for name, port := range map[string]int{"ssh": 22, "smtp": 587, "smtps": 465, "imaps": 993, "pop3s": 995} {
		s, err := LookupKind(name)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if s.DefaultPort != port || s.Network != "tcp" {
			t.Errorf("%s: port %d protocol %q, want %d tcp", name, s.DefaultPort, s.Network, port)
		}
	}
}

package probe

import (
	"bufio"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// lbMailPassword is the password of the login tests; no detail, error or
// JSON may ever show it.
const lbMailPassword = "s3cret-Pa55\"\\word"

// lbMailLog records the command lines a fake mail server received.
type lbMailLog struct {
	mu    sync.Mutex
	lines []string
}

func (l *lbMailLog) add(s string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, s)
}

func (l *lbMailLog) all() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n")
}

// lbSMTPOpts shapes the fake SMTP server.
type lbSMTPOpts struct {
	leaf        *lbLeaf // certificate for STARTTLS or implicit TLS
	implicitTLS bool    // smtps: TLS from the first byte
	noStartTLS  bool    // an inspecting firewall stripped STARTTLS
	greeting    string  // default "220 mail.test ESMTP fake"
	// echoAuth makes a failed AUTH reply quote the whole command and the
	// decoded password, as a hostile server might.
	echoAuth bool
}

// lbSMTPServer runs a small SMTP server: EHLO, STARTTLS, AUTH PLAIN (user
// "probe", password lbMailPassword), QUIT.
func lbSMTPServer(t *testing.T, o lbSMTPOpts) (int, *lbMailLog) {
	t.Helper()
	log := &lbMailLog{}
	cfg := &tls.Config{Certificates: []tls.Certificate{o.leaf.tls}}
	greeting := o.greeting
	if greeting == "" {
		greeting = "220 mail.test ESMTP fake"
	}
	port := lbRawServer(t, func(c net.Conn) {
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		var conn net.Conn = c
		tlsOn := false
		if o.implicitTLS {
			tc := tls.Server(c, cfg)
			if tc.Handshake() != nil {
				return
			}
			conn, tlsOn = tc, true
		}
		br := bufio.NewReader(conn)
		w := func(s string) bool { _, err := io.WriteString(conn, s); return err == nil }
		if !w(greeting + "\r\n") {
			return
		}
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				return
			}
			line = strings.TrimRight(line, "\r\n")
			log.add(line)
			verb, arg, _ := strings.Cut(line, " ")
			switch strings.ToUpper(verb) {
			case "EHLO":
				ext := "250-mail.test hello " + arg + "\r\n250-PIPELINING\r\n"
				if !tlsOn && !o.noStartTLS {
					ext += "250-STARTTLS\r\n"
				}
				if tlsOn {
					ext += "250-AUTH LOGIN PLAIN\r\n"
				}
				w(ext + "250 8BITMIME\r\n")
			case "STARTTLS":
				if tlsOn || !w("220 2.0.0 go ahead\r\n") {
					return
				}
				tc := tls.Server(c, cfg)
				if tc.Handshake() != nil {
					return
				}
				conn, tlsOn, br = tc, true, bufio.NewReader(tc)
			case "AUTH":
				mech, tok, _ := strings.Cut(arg, " ")
				dec, _ := base64.StdEncoding.DecodeString(tok)
				switch {
				case strings.EqualFold(mech, "PLAIN") && string(dec) == "\x00probe\x00"+lbMailPassword:
					w("235 2.7.0 Authentication successful\r\n")
				case o.echoAuth:
					w("535 5.7.8 bad credentials in " + line + " (decoded " + string(dec) + ")\r\n")
				default:
					w("535 5.7.8 Authentication credentials invalid\r\n")
				}
			case "QUIT":
				w("221 2.0.0 bye\r\n")
				return
			default:
				w("502 5.5.2 unknown command\r\n")
			}
		}
	})
	return port, log
}

// lbMailCheck is a mail check against a loopback port trusting the test root.
func lbMailCheck(t *testing.T, kind string, port int) *Check {
	return &Check{Name: "t", Kind: kind, Host: "127.0.0.1", Port: port, IPFamily: FamilyIPv4,
		Timeout: 3 * time.Second, TLS: &TLSOptions{CAFile: lbWriteCAFile(t, lbPKI(t).root)}}
}

// lbMailWithLogin adds the test credentials, the password in a file.
func lbMailWithLogin(t *testing.T, c *Check, pass string) *Check {
	path := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(path, []byte(pass+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c.Credentials = &Credentials{User: "probe", PasswordFile: path}
	return c
}

// lbMailNoSecret fails when the password (or its AUTH PLAIN form) shows anywhere
// in the result.
func lbMailNoSecret(t *testing.T, r Result, pass string) {
	t.Helper()
	b, err := json.Marshal(struct {
		R     Result
		Facts Facts
	}{r, r.Facts})
	if err != nil {
		t.Fatal(err)
	}
	token := base64.StdEncoding.EncodeToString([]byte("\x00probe\x00" + pass))
	quoted, _ := json.Marshal(pass)
	imapQuoted := imapQuote(pass)
	for _, s := range []string{pass, token, string(quoted[1 : len(quoted)-1]), cleanText(pass, 1000), imapQuoted[1 : len(imapQuoted)-1]} {
		if strings.Contains(r.Detail, s) || strings.Contains(string(b), s) {
			t.Errorf("the result shows the password (%q): %s", s, b)
		}
	}
}

func TestSMTPStartTLS(t *testing.T) {
	p := lbPKI(t)
	port, log := lbSMTPServer(t, lbSMTPOpts{leaf: p.good})
	r := lbRun1(t, lbMailCheck(t, "smtp", port))
	lbExpect(t, r, true, ReasonOK, PhaseStartTLS, `SMTP greeting "220 mail.test ESMTP fake"`, "STARTTLS: TLS 1.3",
		`issued by "Test Root CA"`)
	f := r.Facts.TLSFacts
	if f == nil || f.Version != "TLS 1.3" || f.Issuer != "Test Root CA" || f.HandshakeSeconds <= 0 || f.ConnectSeconds <= 0 {
		t.Errorf("TLS facts %+v", f)
	}
	g := r.Facts.GreetingFacts
	if g == nil || !strings.Contains(strings.Join(g.Extensions, " "), "AUTH") || g.LoggedIn {
		t.Errorf("greeting facts %+v: want the extensions offered inside TLS, no login", g)
	}
	for _, ph := range []Phase{PhaseConnect, PhaseBanner, PhaseStartTLS, PhaseTLS} {
		if _, ok := r.TimingOf(ph); !ok {
			t.Errorf("no %s timing: %+v", ph, r.Timings)
		}
	}
	got := log.all()
	if strings.Contains(got, "AUTH") {
		t.Errorf("the probe tried to log in without credentials:\n%s", got)
	}
	if strings.Count(got, "EHLO ") != 2 || !strings.Contains(got, "STARTTLS") {
		t.Errorf("commands seen:\n%s\nwant EHLO, STARTTLS, EHLO, QUIT", got)
	}
	lbMailWaitFor(t, func() bool { return strings.HasSuffix(log.all(), "QUIT") }, "QUIT")
}

// waitFor polls cond for up to 2s: the server records a command after the
// probe already has its verdict.
func lbMailWaitFor(t *testing.T, cond func() bool, what string) {
	t.Helper()
	for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Errorf("the server never saw %s", what)
}

func TestSMTPStartTLSStripped(t *testing.T) {
	p := lbPKI(t)
	port, log := lbSMTPServer(t, lbSMTPOpts{leaf: p.good, noStartTLS: true})
	r := lbRun1(t, lbMailCheck(t, "smtp", port))
	lbExpect(t, r, false, ReasonProtocol, PhaseStartTLS,
		"STARTTLS not offered (an SMTP-inspecting firewall strips it)", "PIPELINING")
	if strings.Contains(log.all(), "STARTTLS") {
		t.Errorf("the probe sent STARTTLS although it was not offered:\n%s", log.all())
	}
}

func TestSMTPStartTLSCertificates(t *testing.T) {
	p := lbPKI(t)
	for _, tc := range []struct {
		name   string
		leaf   *lbLeaf
		reason Reason
		part   string
	}{
		{"unknown CA", p.unknownCA, ReasonTLSUntrusted, "unknown authority"},
		{"expired", p.expired, ReasonTLSExpired, "expired"},
		{"wrong host", p.wrongHost, ReasonTLSHostname, "www.example.invalid"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			port, _ := lbSMTPServer(t, lbSMTPOpts{leaf: tc.leaf})
			r := lbRun1(t, lbMailCheck(t, "smtp", port))
			lbExpect(t, r, false, tc.reason, PhaseTLS, tc.part)
			if r.Facts.TLSFacts == nil || r.Facts.TLSFacts.Issuer != tc.leaf.cert.Issuer.CommonName {
				t.Errorf("TLS facts %+v do not describe the presented certificate", r.Facts.TLSFacts)
			}
		})
	}
}

func TestSMTPSLogin(t *testing.T) {
	p := lbPKI(t)
	port, log := lbSMTPServer(t, lbSMTPOpts{leaf: p.good, implicitTLS: true})
	r := lbRun1(t, lbMailWithLogin(t, lbMailCheck(t, "smtps", port), lbMailPassword))
	lbExpect(t, r, true, ReasonOK, PhaseLogin, `logged in as "probe"`, "TLS 1.3")
	if r.Facts.GreetingFacts == nil || !r.Facts.GreetingFacts.LoggedIn {
		t.Errorf("facts %+v: want logged_in", r.Facts.GreetingFacts)
	}
	if _, ok := r.TimingOf(PhaseLogin); !ok {
		t.Errorf("no login timing: %+v", r.Timings)
	}
	lbMailNoSecret(t, r, lbMailPassword)
	if !strings.Contains(log.all(), "AUTH PLAIN ") {
		t.Errorf("no AUTH PLAIN seen:\n%s", log.all())
	}

	// STARTTLS then AUTH, the password from the environment.
	port, _ = lbSMTPServer(t, lbSMTPOpts{leaf: p.good})
	c := lbMailCheck(t, "smtp", port)
	t.Setenv("LB_MAIL_PW", lbMailPassword)
	c.Credentials = &Credentials{User: "probe", PasswordEnv: "LB_MAIL_PW"}
	r = lbRun1(t, c)
	lbExpect(t, r, true, ReasonOK, PhaseLogin, "STARTTLS: TLS 1.3", `logged in as "probe"`)
	lbMailNoSecret(t, r, lbMailPassword)
}

func TestSMTPLoginRefusedNeverShowsPassword(t *testing.T) {
	p := lbPKI(t)
	const wrong = "wr0ng-but-still-secret"
	port, _ := lbSMTPServer(t, lbSMTPOpts{leaf: p.good, echoAuth: true})
	r := lbRun1(t, lbMailWithLogin(t, lbMailCheck(t, "smtp", port), wrong))
	lbExpect(t, r, false, ReasonProtocol, PhaseLogin, `login as "probe" refused: 535`, "[redacted]")
	lbMailNoSecret(t, r, wrong)
}

func TestMailPasswordConfigErrors(t *testing.T) {
	c := lbMailCheck(t, "smtps", 9) // never dialled: the password is read first
	c.Credentials = &Credentials{User: "probe", PasswordFile: filepath.Join(t.TempDir(), "missing")}
	r := lbRun1(t, c)
	lbExpect(t, r, false, ReasonInternalError, PhaseLogin, "reading the mail password file", "missing")

	c.Credentials = &Credentials{User: "probe", PasswordEnv: "LB_MAIL_PW_UNSET_XYZ"}
	r = lbRun1(t, c)
	lbExpect(t, r, false, ReasonInternalError, PhaseLogin, "LB_MAIL_PW_UNSET_XYZ is not set")

	bad := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(bad, []byte("line1\nline2-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c.Credentials = &Credentials{User: "probe", PasswordFile: bad}
	r = lbRun1(t, c)
	lbExpect(t, r, false, ReasonInternalError, PhaseLogin, "line break")
	if strings.Contains(r.Detail, "secret") {
		t.Errorf("detail shows the file's content: %s", r.Detail)
	}
}

func TestSMTPSCertificates(t *testing.T) {
	p := lbPKI(t)
	for _, tc := range []struct {
		name   string
		leaf   *lbLeaf
		up     bool
		reason Reason
		phase  Phase
		part   string
	}{
		{"good", p.good, true, ReasonOK, PhaseBanner, `SMTP greeting "220 mail.test ESMTP fake"`},
		{"unknown CA", p.unknownCA, false, ReasonTLSUntrusted, PhaseTLS, "Unknown Test CA"},
		{"expired", p.expired, false, ReasonTLSExpired, PhaseTLS, "expired or not yet valid"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			port, log := lbSMTPServer(t, lbSMTPOpts{leaf: tc.leaf, implicitTLS: true})
			r := lbRun1(t, lbMailCheck(t, "smtps", port))
			lbExpect(t, r, tc.up, tc.reason, tc.phase, tc.part)
			if r.Facts.TLSFacts == nil {
				t.Error("no TLS facts")
			}
			if strings.Contains(log.all(), "AUTH") || strings.Contains(log.all(), "EHLO") {
				t.Errorf("smtps without credentials sent more than QUIT:\n%s", log.all())
			}
		})
	}
}

func TestSMTPSAgainstPlainSMTP(t *testing.T) {
	p := lbPKI(t)
	port, _ := lbSMTPServer(t, lbSMTPOpts{leaf: p.good}) // plain: greets before any TLS
	r := lbRun1(t, lbMailCheck(t, "smtps", port))
	lbExpect(t, r, false, ReasonProtocol, PhaseTLS, "does not speak TLS", `"220 m`)
}

func TestSMTPAgainstImplicitTLS(t *testing.T) {
	p := lbPKI(t)
	port, _ := lbSMTPServer(t, lbSMTPOpts{leaf: p.good, implicitTLS: true}) // waits for a ClientHello
	c := lbMailCheck(t, "smtp", port)
	c.Timeout = 700 * time.Millisecond
	r := lbRun1(t, c)
	lbExpect(t, r, false, ReasonProtocol, PhaseBanner, "sent nothing in", "port 465 is smtps")
}

// lbMailHostile serves the same bytes-producing behaviour to every connection.
func lbMailHostile(t *testing.T, behave func(c net.Conn)) int {
	t.Helper()
	return lbRawServer(t, func(c net.Conn) {
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		behave(c)
	})
}

func TestSMTPHostileServers(t *testing.T) {
	drain := func(c net.Conn) { _, _ = io.Copy(io.Discard, c) }
	for _, tc := range []struct {
		name   string
		behave func(c net.Conn)
		parts  []string
	}{
		{"never greets", drain, []string{"sent nothing in"}},
		{"greets forever", func(c net.Conn) {
			for i := 0; i < 1e6; i++ {
				if _, err := io.WriteString(c, "220-still greeting you\r\n"); err != nil {
					return
				}
			}
		}, []string{"more than 64 lines", "never ends it"}},
		{"1 MB line", func(c net.Conn) {
			_, _ = c.Write([]byte("220 " + strings.Repeat("A", 1<<20)))
			drain(c)
		}, []string{"line longer than 4096 bytes"}},
		{"garbage", func(c net.Conn) {
			_, _ = c.Write([]byte("\x16\x03\x01\x00\xff\x01garbage\r\n"))
			drain(c)
		}, []string{`a TLS endpoint answered, not SMTP: "\x16\x03\x01\x00\xff\x01garbage"`}},
		{"554 on connect", func(c net.Conn) {
			_, _ = io.WriteString(c, "554-5.7.1 \x1b[2Jblocked: your address is listed\r\n554 go away\r\n")
			drain(c)
		}, []string{`refused the session: 554 5.7.1 \x1b[2Jblocked: your address is listed / go away`}},
		{"closes at once", func(net.Conn) {}, []string{"closed it without a word"}},
		{"partial greeting", func(c net.Conn) {
			_, _ = io.WriteString(c, "220 half a gree")
			drain(c)
		}, []string{`"220 half a gree" and then no end of line`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			port := lbMailHostile(t, tc.behave)
			c := lbMailCheck(t, "smtp", port)
			c.Timeout = 800 * time.Millisecond
			start := time.Now()
			r := lbRun1(t, c)
			lbExpect(t, r, false, ReasonProtocol, PhaseBanner, tc.parts...)
			if el := time.Since(start); el > 3*time.Second {
				t.Errorf("an 800ms check took %v", el)
			}
		})
	}
}

// lbMailTLSServer serves TLS with leaf, sends greeting (or nothing, when
// empty), and answers each line with reply(line) until it returns "" (then
// closes). newReply makes one reply function per connection, for its state.
func lbMailTLSServer(t *testing.T, leaf *lbLeaf, greeting string, newReply func() func(line string) string) (int, *lbMailLog) {
	t.Helper()
	log := &lbMailLog{}
	cfg := &tls.Config{Certificates: []tls.Certificate{leaf.tls}}
	port := lbRawServer(t, func(c net.Conn) {
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		tc := tls.Server(c, cfg)
		if tc.Handshake() != nil {
			return
		}
		if greeting == "" {
			_, _ = io.Copy(io.Discard, tc)
			return
		}
		if _, err := io.WriteString(tc, greeting); err != nil {
			return
		}
		br := bufio.NewReader(tc)
		reply := newReply()
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				return
			}
			line = strings.TrimRight(line, "\r\n")
			log.add(line)
			out := reply(line)
			if out == "" {
				return
			}
			if _, err := io.WriteString(tc, out); err != nil {
				return
			}
		}
	})
	return port, log
}

// lbMailIMAPReply is a tiny IMAP server: LOGIN "probe" with lbMailPassword (as
// a quoted string or a literal), LOGOUT.
func lbMailIMAPReply() func(string) string {
	var literalFor string
	return func(line string) string {
		if literalFor != "" {
			// The literal's bytes, then the rest of the command.
			tag := literalFor
			literalFor = ""
			if strings.HasPrefix(line, "pässwörd") {
				return tag + " OK LOGIN completed\r\n"
			}
			return tag + " NO [AUTHENTICATIONFAILED] Invalid credentials\r\n"
		}
		tag, rest, _ := strings.Cut(line, " ")
		cmd, args, _ := strings.Cut(rest, " ")
		switch strings.ToUpper(cmd) {
		case "LOGIN":
			if strings.HasSuffix(args, "}") {
				literalFor = tag
				return "+ OK\r\n"
			}
			if args == `"probe" "s3cret-Pa55\"\\word"` {
				return "* CAPABILITY IMAP4rev1\r\n" + tag + " OK LOGIN completed\r\n"
			}
			return tag + " NO [AUTHENTICATIONFAILED] Invalid credentials (" + args + ")\r\n"
		case "LOGOUT":
			return "* BYE logging out\r\n" + tag + " OK LOGOUT completed\r\n"
		}
		return tag + " BAD unknown command\r\n"
	}
}

func TestIMAPS(t *testing.T) {
	p := lbPKI(t)
	port, log := lbMailTLSServer(t, p.good, "* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] Dovecot ready.\r\n", lbMailIMAPReply)
	r := lbRun1(t, lbMailCheck(t, "imaps", port))
	lbExpect(t, r, true, ReasonOK, PhaseBanner, `IMAP greeting "* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] Dovecot ready."`, "TLS 1.3")
	if r.Facts.TLSFacts == nil || r.Facts.GreetingFacts == nil {
		t.Errorf("facts %+v", r.Facts)
	}
	lbMailWaitFor(t, func() bool { return log.all() == "a1 LOGOUT" }, "a1 LOGOUT alone")

	r = lbRun1(t, lbMailWithLogin(t, lbMailCheck(t, "imaps", port), lbMailPassword))
	lbExpect(t, r, true, ReasonOK, PhaseLogin, `logged in as "probe"`)
	lbMailNoSecret(t, r, lbMailPassword)

	// A non-ASCII password goes as a literal after the "+" go-ahead.
	r = lbRun1(t, lbMailWithLogin(t, lbMailCheck(t, "imaps", port), "pässwörd"))
	lbExpect(t, r, true, ReasonOK, PhaseLogin, `logged in as "probe"`)

	// The server quotes the refused command: the password must not show,
	// in any of its forms (here the quoted string escapes " and \).
	r = lbRun1(t, lbMailWithLogin(t, lbMailCheck(t, "imaps", port), lbMailPassword+"-wrong"))
	lbExpect(t, r, false, ReasonProtocol, PhaseLogin, `login as "probe" refused`, "AUTHENTICATIONFAILED", `("probe" "[redacted]")`)
	lbMailNoSecret(t, r, lbMailPassword+"-wrong")
}

func TestIMAPSBadGreetings(t *testing.T) {
	p := lbPKI(t)
	for _, tc := range []struct {
		name     string
		greeting string
		part     string
	}{
		{"bye", "* BYE too many connections\r\n", `refused the session: "* BYE too many connections"`},
		{"pop3 on the imaps port", "+OK POP3 ready\r\n", `a POP3 server answered, not IMAP: "+OK POP3 ready"`},
		{"silent after TLS", "", "TLS handshake completed but no greeting followed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			port, _ := lbMailTLSServer(t, p.good, tc.greeting, func() func(string) string { return func(string) string { return "" } })
			c := lbMailCheck(t, "imaps", port)
			c.Timeout = 800 * time.Millisecond
			r := lbRun1(t, c)
			lbExpect(t, r, false, ReasonProtocol, PhaseBanner, tc.part)
		})
	}
}

func lbMailPOP3Reply() func(string) string { return lbMailPOP3Answer }

func lbMailPOP3Answer(line string) string {
	switch {
	case line == "USER probe":
		return "+OK send PASS\r\n"
	case line == "PASS "+lbMailPassword:
		return "+OK maildrop ready\r\n"
	case strings.HasPrefix(line, "PASS "):
		return "-ERR [AUTH] invalid password " + line[5:] + "\r\n"
	case line == "QUIT":
		return "+OK bye\r\n"
	}
	return "-ERR unknown\r\n"
}

func TestPOP3S(t *testing.T) {
	p := lbPKI(t)
	port, log := lbMailTLSServer(t, p.good, "+OK Dovecot ready.\r\n", lbMailPOP3Reply)
	r := lbRun1(t, lbMailCheck(t, "pop3s", port))
	lbExpect(t, r, true, ReasonOK, PhaseBanner, `POP3 greeting "+OK Dovecot ready."`, "TLS 1.3")
	lbMailWaitFor(t, func() bool { return log.all() == "QUIT" }, "QUIT alone")

	r = lbRun1(t, lbMailWithLogin(t, lbMailCheck(t, "pop3s", port), lbMailPassword))
	lbExpect(t, r, true, ReasonOK, PhaseLogin, `logged in as "probe"`)
	lbMailNoSecret(t, r, lbMailPassword)

	r = lbRun1(t, lbMailWithLogin(t, lbMailCheck(t, "pop3s", port), "nope-secret"))
	lbExpect(t, r, false, ReasonProtocol, PhaseLogin, `login as "probe" refused: "-ERR [AUTH] invalid password [redacted]"`)
	lbMailNoSecret(t, r, "nope-secret")

	port, _ = lbMailTLSServer(t, p.good, "-ERR go away\r\n", lbMailPOP3Reply)
	r = lbRun1(t, lbMailCheck(t, "pop3s", port))
	lbExpect(t, r, false, ReasonProtocol, PhaseBanner, `refused the session: "-ERR go away"`)

	port, _ = lbMailTLSServer(t, p.unknownCA, "+OK\r\n", lbMailPOP3Reply)
	r = lbRun1(t, lbMailCheck(t, "pop3s", port))
	lbExpect(t, r, false, ReasonTLSUntrusted, PhaseTLS, "unknown authority")
}

func TestMailClosedPort(t *testing.T) {
	port := lbFreePort(t, "tcp4", "127.0.0.1:0")
	for _, kind := range []string{"smtp", "smtps", "imaps", "pop3s"} {
		r := lbRun1(t, lbMailCheck(t, kind, port))
		lbExpect(t, r, false, ReasonRefused, PhaseConnect, "refused")
	}
}

package probe

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"time"
)

// The mail kinds: smtp (submission on 587 or relay on 25, upgraded with
// STARTTLS), smtps (465), imaps (993) and pop3s (995), all with implicit
// TLS. They prove what a mail client needs: the server greets, TLS is
// offered and verifies (the same handshake and verdicts as the tls kind),
// and, only when the check has credentials, that the login works.

const (
	// mailMaxLine bounds one line of any mail protocol (SMTP allows 512;
	// IMAP greetings carry capability lists).
	mailMaxLine = 4096
	// mailMaxReplyLines bounds one multi-line reply (an EHLO reply has a
	// dozen or two lines; a greeting that never ends must not run forever).
	mailMaxReplyLines = 64
	// mailGoodbye bounds the wait for the answer to QUIT or LOGOUT.
	mailGoodbye = time.Second
	// mailShown is how much of a server's text a detail quotes.
	mailShown = 160
)

// mailLogin is a check's credentials with the password read at probe time.
// secrets lists every form of the password that goes on the wire or into a
// detail, for redaction.
type mailLogin struct {
	user string
	pass string
	// wire lists the forms the password takes in commands (as is, in the
	// AUTH PLAIN response, as an IMAP quoted string); secrets adds the
	// forms a detail could show them in.
	wire    []string
	secrets []string
	sc      *scrubber // applied to every line the server sends
}

// loadMailLogin reads the check's password; nil without credentials (the
// mail kinds never log in unless told to).
func loadMailLogin(cr Credentials) (*mailLogin, error) {
	if cr.User == "" {
		return nil, nil
	}
	var pass string
	switch {
	case cr.PasswordFile != "":
		b, err := os.ReadFile(cr.PasswordFile)
		if err != nil {
			// The error names the file, never its content.
			return nil, &configError{Err: fmt.Errorf("reading the mail password file: %w", err)}
		}
		pass = strings.TrimRight(string(b), "\r\n")
	case cr.PasswordEnv != "":
		v, ok := os.LookupEnv(cr.PasswordEnv)
		if !ok {
			return nil, &configError{Err: fmt.Errorf("the mail password variable %s is not set", cr.PasswordEnv)}
		}
		pass = v
	default:
		return nil, &configError{Err: fmt.Errorf("credentials for user %q name no password file or variable", cr.User)}
	}
	if pass == "" {
		return nil, &configError{Err: fmt.Errorf("the mail password for user %q is empty", cr.User)}
	}
	// No mail protocol can carry these in a command line, and a line break
	// would let the value inject commands.
	if strings.ContainsAny(pass, "\r\n\x00") || strings.ContainsAny(cr.User, "\r\n\x00") {
		return nil, &configError{Err: errors.New("the mail user or password contains a line break or NUL")}
	}
	l := &mailLogin{user: cr.User, pass: pass}
	quoted := imapQuote(pass)
	l.wire = []string{pass, l.plainToken(), quoted[1 : len(quoted)-1]}
	l.sc = newScrubber(l.wire...)
	l.secrets = append([]string(nil), l.wire...)
	for _, w := range l.wire {
		// A detail shows server text through cleanText.
		l.secrets = append(l.secrets, cleanText(w, len(w)))
	}
	return l, nil
}

// plainToken is the AUTH PLAIN initial response (RFC 4616): no authorization
// identity, the user, the password.
func (l *mailLogin) plainToken() string {
	return base64.StdEncoding.EncodeToString([]byte("\x00" + l.user + "\x00" + l.pass))
}

// scrubber removes the password from every line the server sent, before
// anything parses, shortens or shows it (see scrubber).
func (l *mailLogin) scrubber() *scrubber {
	if l == nil {
		return nil
	}
	return l.sc
}

// redact removes every form of the password from the result's detail: the
// detail quotes server replies, and a hostile or buggy server may echo what
// it was sent.
func (l *mailLogin) redact(r Result) Result {
	if l == nil {
		return r
	}
	for _, s := range l.secrets {
		if s != "" {
			r.Detail = strings.ReplaceAll(r.Detail, s, l.sc.mark)
		}
	}
	return l.sc.result(r)
}

// mailSession is one connection to a mail server: the TCP connection, the
// TLS layer once there is one, and a bounded line reader over the current one.
type mailSession struct {
	ctx   context.Context
	t     Target
	r     *Result
	raw   net.Conn
	conn  net.Conn // raw, or the TLS connection over it
	lr    *boundedLineReader
	stop  func()
	login *mailLogin
	facts *GreetingFacts
	// ready is when the server could first speak on the current layer.
	ready       time.Time
	connectTime time.Duration
}

// mailDialog is one protocol's conversation after connect (and implicit TLS):
// it returns the phase it ended in (the failing one, or the last one done)
// and a detail for success.
type mailDialog func(s *mailSession, login *mailLogin) (Phase, string, error)

// probeMail runs dialog against t, over TLS from the first byte when
// implicitTLS is set.
func probeMail(ctx context.Context, t Target, implicitTLS bool, proto string, dialog mailDialog) Result {
	r := newResult(t)
	login, err := loadMailLogin(t.Check.GetCredentials())
	if err != nil {
		return fail(&r, PhaseLogin, err, t.Addr)
	}
	begin := time.Now()
	conn, err := dialTCP(ctx, t)
	s := &mailSession{ctx: ctx, t: t, r: &r, raw: conn, conn: conn, connectTime: time.Since(begin), login: login, facts: &GreetingFacts{}}
	r.addTiming(PhaseConnect, s.connectTime)
	if err != nil {
		return fail(&r, PhaseConnect, err, t.Addr)
	}
	s.stop = watchConn(ctx, conn)
	defer s.close()
	s.lr = newBoundedLineReader(conn, mailMaxLine)
	s.lr.scrub = login.scrubber()
	s.ready = time.Now()
	if implicitTLS {
		if err := s.startTLS(); err != nil {
			return login.redact(fail(&r, PhaseTLS, err, t.Addr))
		}
	}
	s.lr.greets = proto // the reader of the greeting; later ones expect none
	phase, detail, err := dialog(s, login)
	if s.facts.Greeting != "" {
		r.Facts.GreetingFacts = s.facts
	}
	if err != nil {
		res := fail(&r, phase, err, t.Addr)
		var se *silentError
		if errors.As(err, &se) {
			res.Detail += s.silentHint(implicitTLS)
		}
		return login.redact(res)
	}
	r.Up, r.Reason, r.Phase, r.Detail = true, ReasonOK, phase, detail
	return login.redact(r)
}

func (s *mailSession) close() {
	s.stop()
	_ = s.conn.Close()
}

// silentHint explains a server that accepted and said nothing.
func (s *mailSession) silentHint(implicitTLS bool) string {
	if implicitTLS {
		return ": the TLS handshake completed but no greeting followed"
	}
	return ": not an SMTP server, or one waiting for the client as a TLS port does (port 465 is smtps)"
}

// startTLS runs the shared TLS handshake over the TCP connection and
// switches the session to it.
func (s *mailSession) startTLS() error {
	begin := time.Now()
	tc, facts, err := handshakeTLS(s.ctx, s.raw, s.t, nil)
	took := time.Since(begin)
	s.r.addTiming(PhaseTLS, took)
	if facts != nil {
		facts.ConnectSeconds = s.connectTime.Seconds()
		facts.HandshakeSeconds = took.Seconds()
		s.r.Facts.TLSFacts = facts
	}
	armConnDeadline(s.ctx, s.raw) // handshakeTLS clears it
	if err != nil {
		return err
	}
	s.conn = tc
	s.lr = newBoundedLineReader(tc, mailMaxLine)
	s.lr.scrub = s.login.scrubber()
	s.ready = time.Now()
	return nil
}

// line reads one line, the password scrubbed from it (by the reader).
func (s *mailSession) line() (string, error) {
	return s.lr.readLine()
}

// send writes one command line.
func (s *mailSession) send(line string) error {
	_, err := io.WriteString(s.conn, line+"\r\n")
	return err
}

// greetingLine reads the first line of a line-per-reply protocol (IMAP,
// POP3) and turns silence into a silentError.
func (s *mailSession) greetingLine() (string, error) {
	line, err := s.line()
	if err != nil {
		return "", s.lr.silenceOr(s.ctx, err, s.ready, "")
	}
	s.facts.Greeting = cleanText(line, mailShown)
	return line, nil
}

// goodbye sends a polite last command and waits briefly for its answer, so
// the server logs a clean end rather than a lost connection. Failures no
// longer matter: the verdict is made.
func (s *mailSession) goodbye(cmd string, done func(line string) bool) {
	graceDeadline(s.ctx, s.conn, mailGoodbye)
	if s.send(cmd) != nil {
		return
	}
	for range mailMaxReplyLines {
		line, err := s.line()
		if err != nil || done(line) {
			return
		}
	}
}

// tlsSummary describes a completed handshake for a detail line.
func tlsSummary(f *TLSFacts) string {
	if f == nil {
		return "TLS"
	}
	return fmt.Sprintf("%s %s, certificate for %s issued by %q, valid until %s",
		f.Version, f.Cipher, f.Subject, f.Issuer, f.NotAfter.UTC().Format("2006-01-02"))
}

// ---- SMTP ----

// smtpReply is one (possibly multi-line) SMTP reply.
type smtpReply struct {
	code  int
	lines []string // the text after each line's code and separator
}

// text is the reply for a detail line: code and text, lines joined, sanitized.
func (r smtpReply) text() string {
	return fmt.Sprintf("%d %s", r.code, cleanText(strings.Join(r.lines, " / "), mailShown))
}

// keywords lists the EHLO extension keywords (the first word of every line
// after the first), upper-cased.
func (r smtpReply) keywords() []string {
	var kw []string
	for _, l := range r.lines[min(1, len(r.lines)):] {
		if f := strings.Fields(l); len(f) > 0 {
			kw = append(kw, strings.ToUpper(cleanText(f[0], 64)))
		}
	}
	return kw
}

// authMechanisms lists what an EHLO AUTH line offers (AUTH=... is the
// pre-standard spelling some servers still send).
func (r smtpReply) authMechanisms() []string {
	for _, l := range r.lines[min(1, len(r.lines)):] {
		f := strings.Fields(strings.ToUpper(l))
		if len(f) > 0 && (f[0] == "AUTH" || strings.HasPrefix(f[0], "AUTH=")) {
			if rest, ok := strings.CutPrefix(f[0], "AUTH="); ok {
				return append([]string{rest}, f[1:]...)
			}
			return f[1:]
		}
	}
	return nil
}

// smtpReply reads one reply, bounded in lines: "ddd-text" lines up to a
// "ddd text" line, all with the same code.
func (s *mailSession) smtpReply() (smtpReply, error) {
	var rep smtpReply
	for range mailMaxReplyLines {
		line, err := s.line()
		if err != nil {
			return rep, err
		}
		if len(line) < 3 || !smtpDigits(line[:3]) || (len(line) > 3 && line[3] != '-' && line[3] != ' ') {
			return rep, &protocolError{Msg: fmt.Sprintf("not an SMTP reply: \"%s\"", cleanText(line, 64))}
		}
		code := int(line[0]-'0')*100 + int(line[1]-'0')*10 + int(line[2]-'0')
		if rep.lines != nil && code != rep.code {
			return rep, &protocolError{Msg: fmt.Sprintf("a multi-line SMTP reply changed its code from %d to %d", rep.code, code)}
		}
		rep.code = code
		text := ""
		if len(line) > 4 {
			text = line[4:]
		}
		rep.lines = append(rep.lines, text)
		if len(line) == 3 || line[3] == ' ' {
			return rep, nil
		}
	}
	return rep, &protocolError{Msg: fmt.Sprintf("an SMTP reply of more than %d lines (code %d): the server never ends it", mailMaxReplyLines, rep.code)}
}

func smtpDigits(s string) bool {
	return s[0] >= '1' && s[0] <= '5' && s[1] >= '0' && s[1] <= '9' && s[2] >= '0' && s[2] <= '9'
}

// smtpCommand sends a command and reads its reply.
func (s *mailSession) smtpCommand(cmd string) (smtpReply, error) {
	if err := s.send(cmd); err != nil {
		return smtpReply{}, err
	}
	return s.smtpReply()
}

// smtpGreeting reads the 220 greeting.
func (s *mailSession) smtpGreeting() error {
	begin := time.Now()
	defer func() { s.r.addTiming(PhaseBanner, time.Since(begin)) }()
	rep, err := s.smtpReply()
	if err != nil {
		return s.lr.silenceOr(s.ctx, err, s.ready, "")
	}
	s.facts.Greeting = cleanText(fmt.Sprintf("%d %s", rep.code, rep.lines[0]), mailShown)
	if rep.code != 220 {
		// 554 on connect is RFC 5321's "no SMTP service here" (often a
		// blocklist or a policy refusing this client).
		return &protocolError{Msg: "the server refused the session: " + rep.text()}
	}
	return nil
}

// smtpEHLO greets the server and records its extensions.
func (s *mailSession) smtpEHLO() (smtpReply, error) {
	rep, err := s.smtpCommand("EHLO " + ehloName(s.raw))
	if err != nil {
		return rep, err
	}
	if rep.code != 250 {
		return rep, &protocolError{Msg: "EHLO refused: " + rep.text()}
	}
	s.facts.Extensions = rep.keywords()
	return rep, nil
}

// ehloName is this host's name for EHLO: its hostname when that is a domain
// name, else the address literal of the connection's local address, both
// forms RFC 5321 requires (a bare name may be refused).
func ehloName(conn net.Conn) string {
	if h, err := os.Hostname(); err == nil && strings.Contains(h, ".") && isDomainName(h) {
		return h
	}
	if a, ok := conn.LocalAddr().(*net.TCPAddr); ok && a.IP != nil {
		if a.IP.To4() != nil {
			return "[" + a.IP.String() + "]"
		}
		return "[IPv6:" + a.IP.String() + "]"
	}
	return "connprobe.invalid"
}

func isDomainName(h string) bool {
	if len(h) > 253 || strings.HasPrefix(h, ".") || strings.HasSuffix(h, ".") || strings.Contains(h, "..") {
		return false
	}
	for i := 0; i < len(h); i++ {
		c := h[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

// smtpAuth logs in with AUTH PLAIN and an initial response (RFC 4954).
func (s *mailSession) smtpAuth(ehlo smtpReply, login *mailLogin) error {
	begin := time.Now()
	defer func() { s.r.addTiming(PhaseLogin, time.Since(begin)) }()
	mechs := ehlo.authMechanisms()
	if !containsFold(mechs, "PLAIN") {
		if len(mechs) == 0 {
			return &protocolError{Msg: "the server offers no AUTH, so it accepts no login here"}
		}
		return &protocolError{Msg: fmt.Sprintf("the server does not offer AUTH PLAIN (it offers %s)", cleanText(strings.Join(mechs, " "), 80))}
	}
	rep, err := s.smtpCommand("AUTH PLAIN " + login.plainToken())
	if err != nil {
		return err
	}
	switch {
	case rep.code == 235:
		s.facts.LoggedIn = true
		return nil
	case rep.code == 334:
		_ = s.send("*") // cancel the exchange (RFC 4954 section 4)
		return &protocolError{Msg: "the server asked for more after AUTH PLAIN with an initial response: " + rep.text()}
	}
	return &protocolError{Msg: fmt.Sprintf("login as %q refused: %s", login.user, rep.text())}
}

func containsFold(list []string, s string) bool {
	for _, x := range list {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}

func (s *mailSession) smtpQuit() {
	s.goodbye("QUIT", func(line string) bool { return len(line) < 4 || line[3] != '-' })
}

// probeSMTP: 220, EHLO, STARTTLS (it must be offered), TLS, EHLO again, and
// AUTH PLAIN only with credentials.
func probeSMTP(ctx context.Context, t Target) Result {
	return probeMail(ctx, t, false, "SMTP", smtpSTARTTLSDialog)
}

func smtpSTARTTLSDialog(s *mailSession, login *mailLogin) (Phase, string, error) {
	if err := s.smtpGreeting(); err != nil {
		return PhaseBanner, "", err
	}
	begin := time.Now()
	if _, err := s.smtpEHLO(); err != nil {
		return PhaseStartTLS, "", err
	}
	if !containsFold(s.facts.Extensions, "STARTTLS") {
		return PhaseStartTLS, "", &protocolError{Msg: fmt.Sprintf(
			"STARTTLS not offered (an SMTP-inspecting firewall strips it); the server offered: %s",
			cleanText(strings.Join(s.facts.Extensions, " "), mailShown))}
	}
	rep, err := s.smtpCommand("STARTTLS")
	if err != nil {
		return PhaseStartTLS, "", err
	}
	if rep.code != 220 {
		return PhaseStartTLS, "", &protocolError{Msg: "STARTTLS refused: " + rep.text()}
	}
	// Anything already buffered came before TLS but would be read as if
	// after it: a man in the middle injecting replies (CVE-2011-0411 style).
	if n := s.lr.buffered(); n > 0 {
		return PhaseStartTLS, "", &protocolError{Msg: fmt.Sprintf(
			"the server sent %d bytes after its STARTTLS reply, before TLS: injected plaintext, refused", n)}
	}
	s.r.addTiming(PhaseStartTLS, time.Since(begin))
	if err := s.startTLS(); err != nil {
		return PhaseTLS, "", err
	}
	ehlo, err := s.smtpEHLO()
	if err != nil {
		return PhaseStartTLS, "", err
	}
	phase, how := PhaseStartTLS, ""
	if login != nil {
		if err := s.smtpAuth(ehlo, login); err != nil {
			return PhaseLogin, "", err
		}
		phase, how = PhaseLogin, fmt.Sprintf("; logged in as %q", login.user)
	}
	s.smtpQuit()
	return phase, fmt.Sprintf("SMTP greeting \"%s\"; STARTTLS: %s%s", s.facts.Greeting, tlsSummary(s.r.Facts.TLSFacts), how), nil
}

// probeSMTPS: TLS, 220, and EHLO with AUTH PLAIN only with credentials.
func probeSMTPS(ctx context.Context, t Target) Result {
	return probeMail(ctx, t, true, "SMTP", smtpsDialog)
}

func smtpsDialog(s *mailSession, login *mailLogin) (Phase, string, error) {
	if err := s.smtpGreeting(); err != nil {
		return PhaseBanner, "", err
	}
	phase, how := PhaseBanner, ""
	if login != nil {
		ehlo, err := s.smtpEHLO()
		if err != nil {
			return PhaseLogin, "", err
		}
		if err := s.smtpAuth(ehlo, login); err != nil {
			return PhaseLogin, "", err
		}
		phase, how = PhaseLogin, fmt.Sprintf("; logged in as %q", login.user)
	}
	s.smtpQuit()
	return phase, fmt.Sprintf("%s; SMTP greeting \"%s\"%s", tlsSummary(s.r.Facts.TLSFacts), s.facts.Greeting, how), nil
}

// ---- IMAP ----

// probeIMAPS: TLS, "* OK" (or PREAUTH), LOGIN only with credentials, LOGOUT.
func probeIMAPS(ctx context.Context, t Target) Result {
	return probeMail(ctx, t, true, "IMAP", imapsDialog)
}

func imapsDialog(s *mailSession, login *mailLogin) (Phase, string, error) {
	begin := time.Now()
	line, err := s.greetingLine()
	s.r.addTiming(PhaseBanner, time.Since(begin))
	if err != nil {
		return PhaseBanner, "", err
	}
	status := ""
	if f := strings.Fields(line); len(f) >= 2 && f[0] == "*" {
		status = strings.ToUpper(f[1])
	}
	switch status {
	case "OK", "PREAUTH":
	case "BYE":
		return PhaseBanner, "", &protocolError{Msg: fmt.Sprintf("the server refused the session: \"%s\"", s.facts.Greeting)}
	default:
		return PhaseBanner, "", &protocolError{Msg: fmt.Sprintf("not an IMAP greeting: \"%s\"", s.facts.Greeting)}
	}
	phase, how, tag := PhaseBanner, "", "a1"
	if login != nil && status == "PREAUTH" {
		how = "; the server pre-authenticated the connection, so no LOGIN was sent"
	} else if login != nil {
		lb := time.Now()
		err := s.imapLogin(tag, login)
		s.r.addTiming(PhaseLogin, time.Since(lb))
		if err != nil {
			return PhaseLogin, "", err
		}
		s.facts.LoggedIn = true
		phase, how, tag = PhaseLogin, fmt.Sprintf("; logged in as %q", login.user), "a2"
	}
	s.goodbye(tag+" LOGOUT", func(l string) bool { return strings.HasPrefix(l, tag+" ") })
	return phase, fmt.Sprintf("%s; IMAP greeting \"%s\"%s", tlsSummary(s.r.Facts.TLSFacts), s.facts.Greeting, how), nil
}

// imapLogin sends LOGIN with both arguments as quoted strings, or as
// literals (announced, then sent after the server's "+" go-ahead) when they
// hold bytes a quoted string cannot (8-bit characters).
func (s *mailSession) imapLogin(tag string, login *mailLogin) error {
	line := tag + " LOGIN"
	for _, arg := range []string{login.user, login.pass} {
		if imapQuotable(arg) {
			line += " " + imapQuote(arg)
			continue
		}
		if err := s.send(fmt.Sprintf("%s {%d}", line, len(arg))); err != nil {
			return err
		}
		if err := s.imapContinue(tag, login); err != nil {
			return err
		}
		line = arg
	}
	if err := s.send(line); err != nil {
		return err
	}
	resp, err := s.imapTagged(tag)
	if err != nil {
		return err
	}
	if f := strings.Fields(resp); len(f) >= 2 && strings.EqualFold(f[1], "OK") {
		return nil
	}
	return &protocolError{Msg: fmt.Sprintf("login as %q refused: \"%s\"", login.user, cleanText(resp, mailShown))}
}

// imapContinue waits for the "+" that lets a literal follow.
func (s *mailSession) imapContinue(tag string, login *mailLogin) error {
	for range mailMaxReplyLines {
		l, err := s.line()
		if err != nil {
			return err
		}
		switch {
		case strings.HasPrefix(l, "+"):
			return nil
		case strings.HasPrefix(l, tag+" "):
			return &protocolError{Msg: fmt.Sprintf("login as %q refused: \"%s\"", login.user, cleanText(l, mailShown))}
		}
	}
	return &protocolError{Msg: fmt.Sprintf("no IMAP continuation within %d lines", mailMaxReplyLines)}
}

// imapTagged skips untagged lines (bounded) up to the tagged completion.
func (s *mailSession) imapTagged(tag string) (string, error) {
	for range mailMaxReplyLines {
		l, err := s.line()
		if err != nil {
			return "", err
		}
		if strings.HasPrefix(l, tag+" ") {
			return l, nil
		}
	}
	return "", &protocolError{Msg: fmt.Sprintf("no IMAP completion for %s within %d lines", tag, mailMaxReplyLines)}
}

// imapQuotable reports whether s fits an IMAP quoted string: 7-bit, no CR,
// LF or NUL (loadMailLogin already refused those).
func imapQuotable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 || s[i] == 0 || s[i] == '\r' || s[i] == '\n' {
			return false
		}
	}
	return true
}

func imapQuote(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}

// ---- POP3 ----

// probePOP3S: TLS, "+OK", USER/PASS only with credentials, QUIT.
func probePOP3S(ctx context.Context, t Target) Result {
	return probeMail(ctx, t, true, "POP3", pop3sDialog)
}

func pop3sDialog(s *mailSession, login *mailLogin) (Phase, string, error) {
	begin := time.Now()
	line, err := s.greetingLine()
	s.r.addTiming(PhaseBanner, time.Since(begin))
	if err != nil {
		return PhaseBanner, "", err
	}
	switch {
	case strings.HasPrefix(line, "+OK"):
	case strings.HasPrefix(line, "-ERR"):
		return PhaseBanner, "", &protocolError{Msg: fmt.Sprintf("the server refused the session: \"%s\"", s.facts.Greeting)}
	default:
		return PhaseBanner, "", &protocolError{Msg: fmt.Sprintf("not a POP3 greeting: \"%s\"", s.facts.Greeting)}
	}
	phase, how := PhaseBanner, ""
	if login != nil {
		lb := time.Now()
		err := s.pop3Login(login)
		s.r.addTiming(PhaseLogin, time.Since(lb))
		if err != nil {
			return PhaseLogin, "", err
		}
		s.facts.LoggedIn = true
		phase, how = PhaseLogin, fmt.Sprintf("; logged in as %q", login.user)
	}
	s.goodbye("QUIT", func(string) bool { return true })
	return phase, fmt.Sprintf("%s; POP3 greeting \"%s\"%s", tlsSummary(s.r.Facts.TLSFacts), s.facts.Greeting, how), nil
}

func (s *mailSession) pop3Login(login *mailLogin) error {
	for _, cmd := range []string{"USER " + login.user, "PASS " + login.pass} {
		if err := s.send(cmd); err != nil {
			return err
		}
		l, err := s.line()
		if err != nil {
			return err
		}
		if !strings.HasPrefix(l, "+OK") {
			return &protocolError{Msg: fmt.Sprintf("login as %q refused: \"%s\"", login.user, cleanText(l, mailShown))}
		}
	}
	return nil
}

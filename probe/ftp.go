package probe

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"time"
)

// The ftp kind logs in and moves data over a passive data connection, because
// "port 21 answers" says little about FTP: the usual breakage is a firewall
// or NAT that passes the control channel and drops the passive port range.
//
// It is a small hand-written client rather than github.com/jlaffaye/ftp:
// a verdict needs each step (greeting, login, data) classified on its own,
// replies read by a bounded line reader (a hostile server's endless greeting
// or megabyte line must end in a bounded failure), the data connection made
// through dialTCP (ICMP attribution, proxies) to the control connection's own
// address whatever PASV names, and the data channel's TLS session resumed
// from the control channel's. The protocol subset needed is small.
//
// Active mode (PORT/EPRT) is deliberately not probed: there the server opens
// the data connection towards this host (from its port 20), so success or
// failure depends on this host's inbound firewall and NAT helpers, not on
// the outbound path an agent is here to prove. An outbound probe cannot
// truthfully report on it.

// FTP limits. A reply line longer than ftpMaxLine, or a multi-line reply of
// more than ftpMaxReplyLines lines, is a protocol failure: no real server
// sends either, and reading on would let a hostile one hold the probe.
const (
	ftpMaxLine       = 8192
	ftpMaxReplyLines = 200
	// ftpMaxData is how much of a listing or file is read before stopping.
	ftpMaxData = 1 << 20
	// ftpAnonPassword is the customary anonymous password (an e-mail-like
	// token); it is not a secret.
	ftpAnonPassword = "connprobe@"
	// ftpAbortWait bounds the wait for the server's reply after the probe
	// itself stopped a long transfer: the data path is proven by then.
	ftpAbortWait = 2 * time.Second
)

// FTPFacts are what an FTP session showed.
type FTPFacts struct {
	Banner string `json:"banner,omitempty"` // greeting text, sanitized
	User   string `json:"user,omitempty"`   // login user (never the password)
	// PassiveCommand is "EPSV" or "PASV", PassivePort the data port it named.
	PassiveCommand string `json:"passive_command,omitempty"`
	PassivePort    int    `json:"passive_port,omitempty"`
	// PASVAddress is the address a PASV reply named when it differs from the
	// control connection's (a NAT misconfiguration, or a steering attempt).
	PASVAddress string `json:"pasv_address,omitempty"`
	// DataAddress is where the data connection went.
	DataAddress   string `json:"data_address,omitempty"`
	DataCommand   string `json:"data_command,omitempty"` // LIST or RETR
	DataBytes     int64  `json:"data_bytes"`
	DataTruncated bool   `json:"data_truncated,omitempty"` // stopped at 1 MiB
	DataTLS       bool   `json:"data_tls,omitempty"`       // PROT P data channel
	DataResumed   bool   `json:"data_tls_resumed,omitempty"`
}

// ftpReply is one (possibly multi-line) FTP reply. Only the first and last
// lines are kept, so an endless multi-line reply costs no memory.
type ftpReply struct {
	code  int
	first string // text of the first line, after the code
	last  string // text of the last line, after the code
	lines int
}

// ftpControl is the control channel. Its reader scrubs the password from
// every reply line before anything parses, cuts or shows it.
type ftpControl struct {
	conn net.Conn
	lr   *boundedLineReader
}

func newFTPControl(conn net.Conn, sc *scrubber) *ftpControl {
	lr := newBoundedLineReader(conn, ftpMaxLine)
	lr.scrub = sc
	lr.greets = "FTP"
	return &ftpControl{conn: conn, lr: lr}
}

// send writes one command. Arguments come from configuration; a CR or LF in
// them would smuggle a second command, so it is refused before sending.
func (c *ftpControl) send(cmd string) error {
	if strings.ContainsAny(cmd, "\r\n") {
		return &configError{Err: errors.New("ftp: a command argument contains a line break")}
	}
	_, err := io.WriteString(c.conn, cmd+"\r\n")
	return err
}

// line reads one reply line of at most ftpMaxLine bytes.
func (c *ftpControl) line() (string, error) { return c.lr.readLine() }

// reply reads one reply (RFC 959 4.2): "ddd text", or "ddd-text" followed by
// any lines up to one starting "ddd ".
func (c *ftpControl) reply() (ftpReply, error) {
	l, err := c.line()
	if err != nil {
		return ftpReply{}, err
	}
	code, sep, text, ok := ftpSplit(l)
	if !ok {
		return ftpReply{}, &protocolError{Msg: fmt.Sprintf("not an FTP reply: %q", c.clean(l))}
	}
	rep := ftpReply{code: code, first: text, last: text, lines: 1}
	if sep != '-' {
		return rep, nil
	}
	prefix := l[:3]
	for {
		if rep.lines >= ftpMaxReplyLines {
			return rep, &protocolError{Msg: fmt.Sprintf("a %d reply went on for more than %d lines without its final line (%q)",
				code, ftpMaxReplyLines, c.clean(rep.first))}
		}
		l, err := c.line()
		if err != nil {
			return rep, err
		}
		rep.lines++
		if strings.HasPrefix(l, prefix) && (len(l) == 3 || l[3] == ' ') {
			rep.last = strings.TrimPrefix(l[3:], " ")
			return rep, nil
		}
	}
}

// ftpSplit parses "ddd text", "ddd-text" or "ddd".
func ftpSplit(l string) (code int, sep byte, text string, ok bool) {
	if len(l) < 3 || l[0] < '1' || l[0] > '5' || !ftpIsDigit(l[1]) || !ftpIsDigit(l[2]) {
		return 0, 0, "", false
	}
	code, _ = strconv.Atoi(l[:3])
	if len(l) == 3 {
		return code, ' ', "", true
	}
	if l[3] != ' ' && l[3] != '-' {
		return 0, 0, "", false
	}
	return code, l[3], l[4:], true
}

func ftpIsDigit(b byte) bool { return b >= '0' && b <= '9' }

// clean makes server text safe to show: control bytes escaped, length
// bounded (the password is gone already: the reader scrubs every line).
func (c *ftpControl) clean(s string) string { return printable([]byte(s)) }

// describe renders a reply for a detail.
func (c *ftpControl) describe(rep ftpReply) string {
	text := rep.last
	if rep.lines > 1 && rep.first != "" {
		text = rep.first
	}
	return c.clean(strconv.Itoa(rep.code) + " " + text)
}

// command sends cmd and reads its reply.
func (c *ftpControl) command(cmd string) (ftpReply, error) {
	if err := c.send(cmd); err != nil {
		return ftpReply{}, err
	}
	return c.reply()
}

// ftpPassword returns the login user and password of a check. The password
// is read now, never stored in the check, and never shown.
func ftpPassword(cr Credentials) (user, pass string, err error) {
	if cr.User == "" {
		return "anonymous", ftpAnonPassword, nil
	}
	switch {
	case cr.PasswordFile != "":
		b, err := os.ReadFile(cr.PasswordFile)
		if err != nil {
			// The error names the file, never its content.
			return "", "", &configError{Err: fmt.Errorf("reading the ftp password file: %w", err)}
		}
		pass = strings.TrimRight(string(b), "\r\n")
	case cr.PasswordEnv != "":
		v, ok := os.LookupEnv(cr.PasswordEnv)
		if !ok {
			return "", "", &configError{Err: fmt.Errorf("the ftp password variable %s is not set", cr.PasswordEnv)}
		}
		pass = v
	}
	if strings.ContainsAny(pass, "\r\n") || strings.ContainsAny(cr.User, "\r\n") {
		return "", "", &configError{Err: errors.New("the ftp user or password contains a line break")}
	}
	return cr.User, pass, nil
}

// ftpSession carries one probe's state across its steps.
type ftpSession struct {
	t      Target
	r      *Result
	facts  *FTPFacts
	ctl    *ftpControl
	tlsCfg *tls.Config // non-nil with ExplicitTLS; shared so data resumes the session
	user   string
	// connectTime is the control connection's connect time (a TLS fact).
	connectTime time.Duration
}

// probeFTP logs in to an FTP server and lists (or fetches, bounded) over a
// passive data connection.
func probeFTP(ctx context.Context, t Target) (res Result) {
	r := newResult(t)
	user, pass, err := ftpPassword(t.Check.GetCredentials())
	if err != nil {
		return fail(&r, PhaseLogin, err, t.Addr)
	}
	var sc *scrubber
	if t.Check.GetCredentials().User != "" { // the anonymous token is no secret
		sc = newScrubber(pass)
	}
	defer func() { res = sc.result(res) }()

	begin := time.Now()
	conn, err := dialTCP(ctx, t)
	connectTime := time.Since(begin)
	r.addTiming(PhaseConnect, connectTime)
	if err != nil {
		return fail(&r, PhaseConnect, err, t.Addr)
	}
	defer conn.Close()
	stop := bindDeadline(ctx, conn)
	defer stop()

	// Facts only once connected: an empty set would read as "0 bytes listed".
	facts := &FTPFacts{}
	r.Facts.FTPFacts = facts
	s := &ftpSession{t: t, r: &r, facts: facts, ctl: newFTPControl(conn, sc), user: user, connectTime: connectTime}
	if phase, err := s.greeting(); err != nil {
		return s.fail(phase, err)
	}
	if t.Check.GetFTP().ExplicitTLS {
		if phase, err := s.startTLS(ctx, conn); err != nil {
			return s.fail(phase, err)
		}
	}
	if err := s.login(pass); err != nil {
		return s.fail(PhaseLogin, err)
	}
	if s.tlsCfg != nil {
		if err := s.protect(); err != nil {
			return s.fail(PhaseStartTLS, err)
		}
	}
	if err := s.transfer(ctx); err != nil {
		return *s.r // transfer fills the result itself
	}
	// QUIT is a courtesy: the verdict is already in.
	_ = s.ctl.send("QUIT")
	_ = s.ctl.conn.SetReadDeadline(soonerOf(ctx, time.Second))
	_, _ = s.ctl.reply()

	r.Up, r.Reason, r.Phase = true, ReasonOK, PhaseData
	r.Detail = s.okDetail()
	return r
}

// soonerOf is d from now, or ctx's deadline when that comes first: a short
// courtesy wait must not outlast the check.
func soonerOf(ctx context.Context, d time.Duration) time.Time {
	t := time.Now().Add(d)
	if dl, ok := ctx.Deadline(); ok && dl.Before(t) {
		return dl
	}
	return t
}

func (s *ftpSession) fail(phase Phase, err error) Result {
	return fail(s.r, phase, err, s.t.Addr)
}

// step times one phase.
func (s *ftpSession) step(p Phase, begin time.Time) { s.r.addTiming(p, time.Since(begin)) }

// greeting reads the 220 (after any 120 "ready in n minutes" replies).
func (s *ftpSession) greeting() (Phase, error) {
	begin := time.Now()
	defer s.step(PhaseBanner, begin)
	for i := 0; ; i++ {
		rep, err := s.ctl.reply()
		if err != nil {
			if isTimeout(err) && s.ctl.lr.received() == 0 {
				return PhaseBanner, &silentError{Waited: time.Since(begin)}
			}
			if isTimeout(err) {
				return PhaseBanner, &protocolError{Msg: fmt.Sprintf(
					"the server began a greeting but did not finish it in %s (%d bytes received)",
					time.Since(begin).Round(time.Millisecond), s.ctl.lr.received())}
			}
			var pe *protocolError
			if s.ctl.lr.received() > 0 && errors.As(err, &pe) && strings.HasPrefix(pe.Msg, "not an FTP reply") {
				return PhaseBanner, &protocolError{Msg: "the server does not speak FTP: " + pe.Msg}
			}
			return PhaseBanner, err
		}
		switch {
		case rep.code == 220:
			s.facts.Banner = s.ctl.clean(rep.first)
			return PhaseBanner, nil
		case rep.code == 120 && i < 3:
			continue // "service ready in nnn minutes": the 220 follows
		case rep.code == 421:
			return PhaseBanner, &protocolError{Msg: "the server refused service: " + s.ctl.describe(rep)}
		default:
			return PhaseBanner, &protocolError{Msg: "unexpected greeting (want 220): " + s.ctl.describe(rep)}
		}
	}
}

// startTLS upgrades the control channel (RFC 4217: AUTH TLS, then PBSZ 0 and
// PROT P so that the data channel is protected too).
func (s *ftpSession) startTLS(ctx context.Context, raw net.Conn) (Phase, error) {
	begin := time.Now()
	rep, err := s.ctl.command("AUTH TLS")
	if err != nil {
		s.step(PhaseStartTLS, begin)
		return PhaseStartTLS, err
	}
	s.step(PhaseStartTLS, begin)
	switch {
	case rep.code == 234:
	case rep.code >= 500:
		return PhaseStartTLS, &protocolError{Msg: "the server does not offer FTPS (AUTH TLS answered " + s.ctl.describe(rep) + ")"}
	default:
		return PhaseStartTLS, &protocolError{Msg: "AUTH TLS answered " + s.ctl.describe(rep)}
	}
	if s.ctl.lr.buffered() > 0 {
		// Bytes before the handshake would be read as if protected (the
		// STARTTLS injection flaw): refuse them.
		return PhaseStartTLS, &protocolError{Msg: "the server sent data after 234 before the TLS handshake"}
	}
	cfg, err := tlsClientConfig(ctx, s.t.Check)
	if err != nil {
		return PhaseTLS, &configError{Err: err}
	}
	// The data channel resumes this session: servers such as vsftpd
	// (require_ssl_reuse) refuse a data connection that does not.
	cfg.ClientSessionCache = tls.NewLRUClientSessionCache(4)
	s.tlsCfg = cfg

	hsBegin := time.Now()
	tc, facts, err := handshakeWithConfig(ctx, raw, s.t, cfg)
	hsTime := time.Since(hsBegin)
	s.step(PhaseTLS, hsBegin)
	if facts != nil {
		facts.ConnectSeconds = s.connectTime.Seconds()
		facts.HandshakeSeconds = hsTime.Seconds()
		s.r.Facts.TLSFacts = facts
	}
	if err != nil {
		return PhaseTLS, err
	}
	s.ctl = newFTPControl(tc, s.ctl.lr.scrub)
	s.ctl.lr.started = true // no greeting inside TLS
	return PhaseTLS, nil
}

// protect asks for a protected data channel. It follows the login, as
// common clients do (some servers refuse PBSZ before it).
func (s *ftpSession) protect() error {
	for _, cmd := range []string{"PBSZ 0", "PROT P"} {
		rep, err := s.ctl.command(cmd)
		if err != nil {
			return err
		}
		if rep.code/100 != 2 {
			return &protocolError{Msg: fmt.Sprintf("the server refused a protected data channel: %s answered %s", cmd, s.ctl.describe(rep))}
		}
	}
	return nil
}

// login sends USER and, when asked, PASS. The password goes only onto the
// wire: errors show the server's replies with it scrubbed.
func (s *ftpSession) login(pass string) error {
	begin := time.Now()
	defer s.step(PhaseLogin, begin)
	s.facts.User = s.user
	rep, err := s.ctl.command("USER " + s.user)
	if err != nil {
		return err
	}
	if rep.code == 331 {
		if err := s.ctl.send("PASS " + pass); err != nil {
			return err
		}
		if rep, err = s.ctl.reply(); err != nil {
			return err
		}
	}
	switch {
	case rep.code == 230 || rep.code == 202:
		return nil
	case rep.code == 530:
		return &protocolError{Msg: fmt.Sprintf("login refused for user %q: %s", s.user, s.ctl.describe(rep))}
	case rep.code == 332:
		return &protocolError{Msg: fmt.Sprintf("the server wants an account (ACCT) for user %q, which the probe does not send", s.user)}
	default:
		return &protocolError{Msg: fmt.Sprintf("login as %q failed: %s", s.user, s.ctl.describe(rep))}
	}
}

// transfer opens a passive data connection and lists or fetches over it. On
// failure it fills s.r and returns a non-nil error.
func (s *ftpSession) transfer(ctx context.Context) error {
	begin := time.Now()
	defer s.step(PhaseData, begin)
	failed := func(err error) error {
		s.fail(PhaseData, err)
		s.r.Detail = fmt.Sprintf("control channel fine (logged in as %s); %s", s.user, s.r.Detail)
		return err
	}
	if rep, err := s.ctl.command("TYPE I"); err != nil {
		return failed(err)
	} else if rep.code/100 != 2 {
		return failed(&protocolError{Msg: "TYPE I answered " + s.ctl.describe(rep)})
	}
	cmd, err := s.dataCommand()
	if err != nil {
		return failed(err)
	}
	dataTarget, err := s.passive()
	if err != nil {
		return failed(err)
	}
	where := dataTarget.HostPort()
	s.facts.DataAddress = where

	data, err := dialTCP(ctx, dataTarget)
	if err != nil {
		// Classified as the connect it is, so that a drop reads "no answer"
		// and an ICMP error names its sender.
		s.r.Up, s.r.Phase = false, PhaseData
		s.r.Reason, s.r.Detail = classify(err, PhaseConnect, dataTarget.Addr)
		s.r.Detail = fmt.Sprintf("control channel fine (logged in as %s); data connection to %s (%s port) failed: %s",
			s.user, where, s.facts.PassiveCommand, s.r.Detail)
		return err
	}
	defer data.Close()
	stop := bindDeadline(ctx, data)
	defer stop()

	s.facts.DataCommand, _, _ = strings.Cut(cmd, " ")
	rep, err := s.ctl.command(cmd)
	if err != nil {
		return failed(err)
	}
	if rep.code/100 != 1 && rep.code/100 != 2 {
		return failed(&protocolError{Msg: fmt.Sprintf("%s answered %s (data connection to %s was open)",
			s.facts.DataCommand, s.ctl.describe(rep), where)})
	}
	var rd io.Reader = data
	if s.tlsCfg != nil {
		// The server starts TLS on the data connection once it has the
		// command, hence the handshake only now.
		tc, _, err := handshakeWithConfig(ctx, data, s.t, s.tlsCfg)
		if err != nil {
			return failed(fmt.Errorf("TLS on the data connection to %s: %w", where, err))
		}
		s.facts.DataTLS = true
		s.facts.DataResumed = tc.ConnectionState().DidResume
		rd = tc
	}
	n, err := io.Copy(io.Discard, io.LimitReader(rd, ftpMaxData))
	s.facts.DataBytes = n
	if err != nil {
		return failed(fmt.Errorf("reading the %s data from %s: %w", s.facts.DataCommand, where, err))
	}
	s.facts.DataTruncated = n >= ftpMaxData
	data.Close()
	if s.facts.DataTruncated {
		// The probe stopped the transfer itself; whatever the server says
		// now (226, or 426 for the cut), the data path is proven.
		_ = s.ctl.conn.SetReadDeadline(soonerOf(ctx, ftpAbortWait))
		if rep.code/100 == 1 {
			_, _ = s.ctl.reply()
		}
		if d, ok := ctx.Deadline(); ok {
			_ = s.ctl.conn.SetReadDeadline(d)
		}
		return nil
	}
	if rep.code/100 == 1 {
		if rep, err = s.ctl.reply(); err != nil {
			return failed(err)
		}
	}
	if rep.code/100 != 2 {
		return failed(&protocolError{Msg: fmt.Sprintf("%s ended with %s after %d bytes", s.facts.DataCommand, s.ctl.describe(rep), n)})
	}
	return nil
}

// dataCommand chooses LIST or RETR for the configured path: a path that SIZE
// answers for is a file (fetched, bounded); anything else is listed.
func (s *ftpSession) dataCommand() (string, error) {
	p := s.t.Check.GetFTP().Path
	if p == "" {
		return "LIST", nil
	}
	if strings.HasSuffix(p, "/") {
		return "LIST " + p, nil
	}
	rep, err := s.ctl.command("SIZE " + p)
	if err != nil {
		return "", err
	}
	if rep.code == 213 {
		return "RETR " + p, nil
	}
	return "LIST " + p, nil
}

// passive asks for a passive data port: EPSV (RFC 2428), falling back to PASV
// when the server rejects EPSV. The data connection goes to the control
// connection's own address: a PASV address behind NAT is often private, and
// a hostile server could name a third party. Only TrustPASVAddress uses it.
func (s *ftpSession) passive() (Target, error) {
	rep, err := s.ctl.command("EPSV")
	if err != nil {
		return Target{}, err
	}
	var port int
	var named net.IP
	switch {
	case rep.code == 229:
		s.facts.PassiveCommand = "EPSV"
		if port, err = parseEPSV(rep.last); err != nil {
			return Target{}, &protocolError{Msg: fmt.Sprintf("%s: %s", err, s.ctl.describe(rep))}
		}
	case rep.code >= 500:
		s.facts.PassiveCommand = "PASV"
		prep, err := s.ctl.command("PASV")
		if err != nil {
			return Target{}, err
		}
		if prep.code != 227 {
			return Target{}, &protocolError{Msg: fmt.Sprintf("passive mode refused: EPSV answered %s, PASV answered %s",
				s.ctl.describe(rep), s.ctl.describe(prep))}
		}
		if named, port, err = parsePASV(prep.last); err != nil {
			return Target{}, &protocolError{Msg: fmt.Sprintf("%s: %s", err, s.ctl.describe(prep))}
		}
	default:
		return Target{}, &protocolError{Msg: "EPSV answered " + s.ctl.describe(rep)}
	}
	s.facts.PassivePort = port
	addr := s.t.Addr
	if named != nil && !named.IsUnspecified() && !named.Equal(addr) {
		s.facts.PASVAddress = named.String()
		if s.t.Check.GetFTP().TrustPASVAddress {
			addr = named
		}
	}
	c := *s.t.Check
	c.Port = port
	family := s.t.Family // through a proxy there is no address: the tunnel goes to host:port
	if addr != nil {
		family = familyOf(addr)
	}
	return Target{Check: &c, Addr: addr, Family: family}, nil
}

// parseEPSV reads "(|||port|)" (any delimiter) from a 229 reply.
func parseEPSV(text string) (int, error) {
	i := strings.IndexByte(text, '(')
	j := strings.LastIndexByte(text, ')')
	if i < 0 || j < i+6 {
		return 0, errors.New("malformed EPSV reply")
	}
	body := text[i+1 : j]
	d := body[0]
	parts := strings.Split(body, string(d))
	// "|||6446|" splits into "", "", "", "6446", "".
	if len(parts) != 5 || parts[1] != "" || parts[2] != "" || parts[4] != "" {
		return 0, errors.New("malformed EPSV reply")
	}
	port, err := strconv.Atoi(parts[3])
	if err != nil || port < 1 || port > 65535 {
		return 0, errors.New("EPSV reply names no valid port")
	}
	return port, nil
}

// parsePASV reads "h1,h2,h3,h4,p1,p2" from a 227 reply (with or without the
// customary parentheses).
func parsePASV(text string) (net.IP, int, error) {
	start := strings.IndexFunc(text, func(r rune) bool { return r >= '0' && r <= '9' })
	if start < 0 {
		return nil, 0, errors.New("malformed PASV reply")
	}
	end := start
	for end < len(text) && (ftpIsDigit(text[end]) || text[end] == ',') {
		end++
	}
	fields := strings.Split(text[start:end], ",")
	if len(fields) != 6 {
		return nil, 0, errors.New("malformed PASV reply")
	}
	var v [6]byte
	for i, f := range fields {
		n, err := strconv.Atoi(f)
		if err != nil || n < 0 || n > 255 {
			return nil, 0, errors.New("malformed PASV reply")
		}
		v[i] = byte(n)
	}
	port := int(v[4])<<8 | int(v[5])
	if port == 0 {
		return nil, 0, errors.New("PASV reply names port 0")
	}
	return net.IPv4(v[0], v[1], v[2], v[3]).To4(), port, nil
}

// okDetail summarises a completed session.
func (s *ftpSession) okDetail() string {
	f := s.facts
	var b strings.Builder
	if f.Banner != "" {
		fmt.Fprintf(&b, "greeting \"%s\"; ", f.Banner) // already escaped by clean
	}
	if tf := s.r.Facts.TLSFacts; tf != nil {
		fmt.Fprintf(&b, "FTPS (AUTH TLS, %s, certificate for %s issued by %q); ", tf.Version, tf.Subject, tf.Issuer)
	}
	fmt.Fprintf(&b, "logged in as %s; %s port %d", f.User, f.PassiveCommand, f.PassivePort)
	if f.PASVAddress != "" && f.DataAddress != net.JoinHostPort(f.PASVAddress, strconv.Itoa(f.PassivePort)) {
		fmt.Fprintf(&b, " (PASV named %s; connected to the control address instead)", f.PASVAddress)
	}
	what := "listing"
	if f.DataCommand == "RETR" {
		what = "file"
	}
	fmt.Fprintf(&b, "; %s of %d bytes", what, f.DataBytes)
	if f.DataTruncated {
		b.WriteString(" (stopped after 1 MiB)")
	}
	if f.DataTLS {
		b.WriteString(" over a protected data channel")
		if f.DataResumed {
			b.WriteString(" (TLS session resumed)")
		}
	}
	return b.String()
}

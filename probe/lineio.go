package probe

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"time"
)

// Line-oriented protocols (the SSH identification, SMTP, IMAP, POP3) are read
// through a boundedLineReader: every line is bounded in length and every read
// in time (by the connection deadline, see watchConn), so a hostile or broken
// server costs at most a fixed amount of memory and the check's timeout.

// GreetingFacts are what a line-protocol server said about itself (the ssh
// and mail kinds).
type GreetingFacts struct {
	// Greeting is the server's first line (SSH identification, SMTP 220,
	// IMAP * OK, POP3 +OK), sanitized and shortened.
	Greeting string `json:"greeting,omitempty"`
	// Software is the SSH software version ("OpenSSH_9.2p1").
	Software string `json:"software,omitempty"`
	// Extensions are the SMTP EHLO keywords; after STARTTLS, those offered
	// inside TLS (AUTH often appears only there).
	Extensions []string `json:"extensions,omitempty"`
	// LoggedIn is set when the check logged in with its credentials.
	LoggedIn bool `json:"logged_in,omitempty"`
}

// countingReader counts the bytes read through it: "sent nothing" (silence)
// and "sent something, but not a line" are different verdicts.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// boundedLineReader reads CRLF- or LF-terminated lines of at most max bytes
// (terminator included). Its buffer is max bytes, so a longer line is a
// protocol error after max bytes, not an allocation the server controls.
type boundedLineReader struct {
	br  *bufio.Reader
	cnt *countingReader
	max int
	// scrub, when set, removes the check's password from every line and
	// error text before anything parses, cuts or shows it.
	scrub *scrubber
	// greets, when set, names the protocol whose greeting the first line
	// must be ("SSH", "FTP"...): another protocol's greeting there fails
	// at once (see foreignGreeting) instead of after the timeout.
	greets  string
	started bool // a first line has been read
}

func newBoundedLineReader(r io.Reader, limit int) *boundedLineReader {
	cnt := &countingReader{r: r}
	return &boundedLineReader{br: bufio.NewReaderSize(cnt, limit), cnt: cnt, max: limit}
}

// received is how many bytes the server has sent through this reader.
func (l *boundedLineReader) received() int64 { return l.cnt.n }

// buffered is how many received bytes have not been returned as lines yet.
func (l *boundedLineReader) buffered() int { return l.br.Buffered() }

// readLine returns the next line without its terminator. A line that does
// not fit, or that the server leaves unterminated when it closes or the
// deadline passes, is a protocolError quoting its (sanitized) start; other
// errors (timeouts with nothing pending, EOF between lines, resets) are
// returned as they are for classify.
func (l *boundedLineReader) readLine() (string, error) {
	first := !l.started && l.greets != ""
	l.started = true
	if first {
		// A TLS record has no line end to wait for.
		if rec := tlsRecordAhead(l.br); rec != nil {
			return "", foreignError(l.greets, rec)
		}
	}
	b, err := l.br.ReadSlice('\n')
	if err == nil {
		s := l.scrub.scrub(strings.TrimSuffix(string(b[:len(b)-1]), "\r"))
		if first {
			if err := foreignError(l.greets, []byte(s)); err != nil {
				return "", err
			}
		}
		return s, nil
	}
	// The quoted start is scrubbed whole before it is cut: a password
	// straddling the cut would otherwise show its first characters.
	start := func() string { return cleanText(l.scrub.scrub(string(b)), 64) }
	switch {
	case errors.Is(err, bufio.ErrBufferFull):
		return "", &protocolError{Msg: fmt.Sprintf("the server sent a line longer than %d bytes: \"%s\"", l.max, start())}
	case len(b) > 0 && isTimeout(err):
		return "", &protocolError{Msg: fmt.Sprintf("the server sent \"%s\" and then no end of line until the deadline", start())}
	case len(b) > 0 && errors.Is(err, io.EOF):
		return "", &protocolError{Msg: fmt.Sprintf("the server closed the connection after an unterminated line \"%s\"", start())}
	}
	return "", err
}

// silenceOr turns a failed first read into the verdict it deserves: a
// deadline with not a byte received is a silentError (the server waits for
// the client, as a TLS port does), a close with not a byte received says so
// plainly; everything else is err itself.
func (l *boundedLineReader) silenceOr(ctx context.Context, err error, since time.Time, closedHint string) error {
	if l.received() > 0 || errors.Is(ctx.Err(), context.Canceled) {
		return err
	}
	if isTimeout(err) {
		return &silentError{Waited: time.Since(since)}
	}
	if errors.Is(err, io.EOF) {
		return &protocolError{Msg: "the server accepted the connection and closed it without a word" + closedHint}
	}
	return err
}

// fallbackTimeout bounds connections whose context has no deadline (Run
// always sets one; this only keeps the promise that every read ends).
const fallbackTimeout = 30 * time.Second

// armConnDeadline sets conn's deadline to ctx's (or to the past when ctx is
// already done). handshakeTLS clears the deadline it sets, so callers re-arm
// after it.
func armConnDeadline(ctx context.Context, conn net.Conn) {
	if ctx.Err() != nil {
		_ = conn.SetDeadline(time.Unix(1, 0))
		return
	}
	d, ok := ctx.Deadline()
	if !ok {
		d = time.Now().Add(fallbackTimeout)
	}
	_ = conn.SetDeadline(d)
}

// watchConn arms conn's deadline and ends pending reads and writes at once
// when ctx is cancelled. Call the returned stop before closing conn.
func watchConn(ctx context.Context, conn net.Conn) (stop func()) {
	armConnDeadline(ctx, conn)
	return interruptWhenDone(ctx, conn.SetDeadline)
}

// graceDeadline shortens conn's deadline to at most d from now, for the
// polite goodbye (QUIT, LOGOUT) after the verdict: a server that never
// answers it must not stretch every run to the check's timeout.
func graceDeadline(ctx context.Context, conn net.Conn, d time.Duration) {
	until := time.Now().Add(d)
	if cd, ok := ctx.Deadline(); ok && cd.Before(until) {
		until = cd
	}
	_ = conn.SetDeadline(until)
}

// cleanText renders bytes a server sent for a detail line: printable ASCII
// as is, anything else as \xNN (no terminal escapes, no bidi tricks), at
// most limit input bytes, "..." marking a cut.
func cleanText[T string | []byte](b T, limit int) string {
	cut := len(b) > limit
	if cut {
		b = b[:limit]
	}
	var sb strings.Builder
	for i := 0; i < len(b); i++ {
		c := b[i]
		if c >= 0x20 && c < 0x7f {
			sb.WriteByte(c)
		} else {
			fmt.Fprintf(&sb, "\\x%02x", c)
		}
	}
	if cut {
		sb.WriteString("...")
	}
	return sb.String()
}

// scrubber removes a password from text a server sent. A hostile server
// knows the password once it has been sent (on an earlier run, too) and may
// echo it to get it into this probe's results, whole or cut so that only a
// part shows. So besides every whole form of the password, any run of 4 or
// more bytes that also occurs in one (found through its 4-byte pieces) is
// redacted, wherever a later cut falls. A nil scrubber changes nothing.
type scrubber struct {
	short []string            // forms under 4 bytes: only whole occurrences
	grams map[string]struct{} // every 4-byte piece of the longer forms
	mark  string              // what replaces a redacted span
}

// scrubMin is the shortest run of a password that is redacted on its own.
const scrubMin = 4

// redactedMark replaces a redacted span, unless the password itself could
// show through it (see newScrubber).
const redactedMark = "[redacted]"

// scrubMarks are the marks tried in order: the first that holds no piece of
// the password and whose first and last bytes occur in no form of it, so
// that no run of the password can form across its edges either.
var scrubMarks = []string{redactedMark, "<redacted>", "[***]", "<***>", "{***}", "(...)"}

func newScrubber(forms ...string) *scrubber {
	sc := &scrubber{grams: map[string]struct{}{}}
	var all []string
	for _, f := range forms {
		switch {
		case f == "":
			continue
		case len(f) < scrubMin:
			sc.short = append(sc.short, f)
		default:
			for i := 0; i+scrubMin <= len(f); i++ {
				sc.grams[f[i:i+scrubMin]] = struct{}{}
			}
		}
		all = append(all, f)
	}
	if len(all) == 0 {
		return nil
	}
	for _, m := range scrubMarks {
		if sc.marks(m) == nil && !strings.ContainsAny(strings.Join(all, ""), m[:1]+m[len(m)-1:]) {
			sc.mark = m
			break
		}
	}
	return sc // no safe mark: spans are cut out (mark "")
}

// scrub returns text with every run of the password replaced by the mark.
func (sc *scrubber) scrub(text string) string {
	if sc == nil {
		return text
	}
	// With an empty mark, cutting a span out can join two pieces into a
	// new run: repeat until none is left (each pass shortens the text).
	for {
		mark := sc.marks(text)
		if mark == nil {
			return text
		}
		var sb strings.Builder
		for i := 0; i < len(text); i++ {
			if !mark[i] {
				sb.WriteByte(text[i])
				continue
			}
			sb.WriteString(sc.mark)
			for i+1 < len(text) && mark[i+1] {
				i++
			}
		}
		text = sb.String()
		if sc.mark != "" {
			return text
		}
	}
}

// result scrubs what a finished result shows of server text, once more:
// lines are scrubbed as read, but rendering them for people can make a run
// of the password (the escape \x82 before "mL4" reads "2mL4").
func (sc *scrubber) result(r Result) Result {
	if sc == nil {
		return r
	}
	r.Detail = sc.scrub(r.Detail)
	if g := r.Facts.GreetingFacts; g != nil {
		c := *g
		c.Greeting = sc.scrub(c.Greeting)
		c.Extensions = append([]string(nil), c.Extensions...)
		for i, e := range c.Extensions {
			c.Extensions[i] = sc.scrub(e)
		}
		r.Facts.GreetingFacts = &c
	}
	if f := r.Facts.FTPFacts; f != nil {
		c := *f
		c.Banner = sc.scrub(c.Banner)
		r.Facts.FTPFacts = &c
	}
	return r
}

// marks flags the bytes of text that belong to a run of the password, nil
// when there is none.
func (sc *scrubber) marks(text string) []bool {
	var mark []bool
	set := func(i, n int) {
		if mark == nil {
			mark = make([]bool, len(text))
		}
		for j := i; j < i+n; j++ {
			mark[j] = true
		}
	}
	if len(sc.grams) > 0 {
		for i := 0; i+scrubMin <= len(text); i++ {
			if _, ok := sc.grams[text[i:i+scrubMin]]; ok {
				set(i, scrubMin)
			}
		}
	}
	for _, f := range sc.short {
		for i := 0; ; {
			j := strings.Index(text[i:], f)
			if j < 0 {
				break
			}
			set(i+j, len(f))
			i += j + len(f)
		}
	}
	return mark
}

// foreignGreetings are the first words of other protocols' servers.
var foreignGreetings = []struct{ prefix, proto, who string }{
	{"SSH-", "SSH", "an SSH server"},
	{"HTTP/", "HTTP", "an HTTP server"},
	{"SIP/2.0 ", "SIP", "a SIP server"},
	{"+OK", "POP3", "a POP3 server"},
	{"* OK", "IMAP", "an IMAP server"},
	{"* PREAUTH", "IMAP", "an IMAP server"},
	{"* BYE", "IMAP", "an IMAP server"},
	// 220 opens both FTP and SMTP; a reader of either cannot tell them apart.
	{"220 ", "FTP SMTP", "an FTP or SMTP server"},
	{"220-", "FTP SMTP", "an FTP or SMTP server"},
}

// foreignGreeting names the server whose greeting b starts with when that is
// another protocol's than self (or a TLS record), else "".
func foreignGreeting(self string, b []byte) string {
	if isTLSRecord(b) {
		return "a TLS endpoint"
	}
	for _, g := range foreignGreetings {
		if bytes.HasPrefix(b, []byte(g.prefix)) {
			if slices.Contains(strings.Fields(g.proto), self) {
				return ""
			}
			return g.who
		}
	}
	return ""
}

// foreignError is the verdict on a first line (or record) b from another
// protocol's server, nil when b is not one: the port speaks something else.
func foreignError(self string, b []byte) error {
	who := foreignGreeting(self, b)
	if who == "" {
		return nil
	}
	return &protocolError{Msg: fmt.Sprintf("%s answered, not %s: \"%s\"", who, self, cleanText(firstLine(b), 80))}
}

// isTLSRecord reports a TLS record header: content type change_cipher_spec,
// alert, handshake or application data, then major version 3.
func isTLSRecord(b []byte) bool {
	return len(b) >= 2 && b[0] >= 0x14 && b[0] <= 0x17 && b[1] == 0x03
}

// tlsRecordAhead waits for the peer's first bytes and returns what br holds
// when they start a TLS record, else nil. It consumes nothing.
func tlsRecordAhead(br *bufio.Reader) []byte {
	if _, err := br.Peek(1); err != nil {
		return nil // the read that follows meets the same error
	}
	b, _ := br.Peek(min(br.Buffered(), 16))
	if isTLSRecord(b) {
		return b
	}
	return nil
}

package probe

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"
)

// The sip kind sends one RFC 3261 OPTIONS request over UDP, TCP or TLS. Any
// SIP response that answers it (same Call-ID, CSeq and top Via branch) proves
// that a SIP server answered; its status (200, 401, 404, 405, 503...) is a
// fact reported in the detail and facts, not the verdict, because a server
// that rejects an out-of-dialog OPTIONS has still answered.

// Default SIP ports: 5060 for UDP and TCP, 5061 for TLS (RFC 3261 19.1.2).
const (
	sipPort  = 5060
	sipsPort = 5061
)

const (
	// sipMaxHead bounds one response's start line and header fields: a
	// server sending an endless line costs at most this much.
	sipMaxHead = 64 << 10
	// sipMaxBody bounds the body of a provisional response skipped on a
	// stream while waiting for the final one.
	sipMaxBody = 64 << 10
	// sipMaxProvisional bounds the provisional responses read on a stream.
	sipMaxProvisional = 16
	// sipT1 and sipT2 are RFC 3261's retransmission timers: a client
	// transaction over UDP resends at T1, doubling up to T2 (Timer E), since
	// one lost datagram must not read as a silent server.
	sipT1 = 500 * time.Millisecond
	sipT2 = 4 * time.Second
	// sipBranchCookie starts every RFC 3261 branch, telling servers the
	// branch alone identifies the transaction.
	sipBranchCookie = "z9hG4bK"
)

// SIPFacts are what a SIP response showed.
type SIPFacts struct {
	StatusCode int    `json:"status_code"`
	Server     string `json:"server,omitempty"` // Server, else User-Agent, sanitized
}

// sipTxn identifies one OPTIONS transaction: what a response must echo.
type sipTxn struct {
	transport string // "udp", "tcp" or "tls"
	branch    string
	callID    string
	tag       string
}

func newSIPTxn(transport string) sipTxn {
	return sipTxn{
		transport: transport,
		branch:    sipBranchCookie + randomHex(12),
		callID:    randomHex(16),
		tag:       randomHex(8),
	}
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// sipDefaultPort is the port a SIP URI leaves out for transport.
func sipDefaultPort(transport string) int {
	if transport == "tls" {
		return sipsPort
	}
	return sipPort
}

// sipHostPort renders host (and port when it is not the default) for a SIP
// URI, bracketing IPv6 literals.
func sipHostPort(host string, port int, transport string) string {
	if port != 0 && port != sipDefaultPort(transport) {
		return net.JoinHostPort(host, strconv.Itoa(port))
	}
	if strings.Contains(host, ":") {
		return "[" + host + "]"
	}
	return host
}

// request renders the OPTIONS request for check c sent from local.
func (x sipTxn) request(c *Check, local net.Addr) []byte {
	lhost, lport, err := net.SplitHostPort(local.String())
	if err != nil {
		lhost, lport = local.String(), "0"
	}
	if i := strings.IndexByte(lhost, '%'); i >= 0 {
		lhost = lhost[:i] // a zone means nothing to the server
	}
	sentBy := net.JoinHostPort(lhost, lport)
	fromHost := lhost
	if strings.Contains(fromHost, ":") {
		fromHost = "[" + fromHost + "]"
	}
	target := sipHostPort(c.Host, c.Port, x.transport)
	via := "SIP/2.0/" + strings.ToUpper(x.transport) + " " + sentBy + ";branch=" + x.branch
	contact := "<sip:connprobe@" + sentBy + ">"
	if x.transport == "udp" {
		// rport (RFC 3581) makes a server answer the source port a NAT chose,
		// not the one written in Via.
		via += ";rport"
	} else {
		contact = "<sip:connprobe@" + sentBy + ";transport=" + x.transport + ">"
	}
	var b strings.Builder
	b.WriteString("OPTIONS sip:" + target + " SIP/2.0\r\n")
	b.WriteString("Via: " + via + "\r\n")
	b.WriteString("Max-Forwards: 70\r\n")
	b.WriteString("From: <sip:connprobe@" + fromHost + ">;tag=" + x.tag + "\r\n")
	b.WriteString("To: <sip:" + target + ">\r\n")
	b.WriteString("Call-ID: " + x.callID + "\r\n")
	b.WriteString("CSeq: 1 OPTIONS\r\n")
	b.WriteString("Contact: " + contact + "\r\n")
	b.WriteString("Accept: application/sdp\r\n")
	b.WriteString("User-Agent: connprobe\r\n")
	b.WriteString("Content-Length: 0\r\n\r\n")
	return []byte(b.String())
}

// sipResponse is the little of a response the probe looks at.
type sipResponse struct {
	code          int
	reason        string
	callID        string
	cseq          string
	branch        string    // of the topmost Via
	server        string    // Server, else User-Agent
	contentLength int       // -1 when absent
	at            time.Time // when it arrived
}

func (r *sipResponse) status() string {
	s := fmt.Sprintf("SIP %d", r.code)
	if r.reason != "" {
		s += " " + printable([]byte(r.reason))
	}
	return s
}

// mismatch says why r does not answer x, or "" when it does.
func (r *sipResponse) mismatch(x sipTxn) string {
	switch {
	case r.callID != x.callID:
		return "Call-ID " + quoted(r.callID) + " is not ours"
	case strings.Join(strings.Fields(r.cseq), " ") != "1 OPTIONS":
		return "CSeq " + quoted(r.cseq) + " is not \"1 OPTIONS\""
	case r.branch != x.branch:
		return "top Via branch " + quoted(r.branch) + " is not ours"
	}
	return ""
}

// parseSIPStatusLine accepts exactly `SIP/2.0 [1-6]\d\d <reason>`.
func parseSIPStatusLine(l string) (int, string, bool) {
	if len(l) < 12 || !strings.HasPrefix(l, "SIP/2.0 ") || l[11] != ' ' ||
		l[8] < '1' || l[8] > '6' || !isDigit(l[9]) || !isDigit(l[10]) {
		return 0, "", false
	}
	code := int(l[8]-'0')*100 + int(l[9]-'0')*10 + int(l[10]-'0')
	return code, l[12:], true
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// quoted renders peer text for a detail: sanitized, bounded, in quotes.
func quoted(s string) string { return "\"" + printable([]byte(s)) + "\"" }

// sipHeaderName lowercases a header name and expands the compact forms
// (RFC 3261 7.3.3) of the fields the probe reads.
func sipHeaderName(name string) string {
	name = strings.ToLower(strings.TrimSpace(name))
	switch name {
	case "i":
		return "call-id"
	case "v":
		return "via"
	case "l":
		return "content-length"
	}
	return name
}

// parseSIPHead parses a response's start line and header fields, up to the
// first blank line (a datagram holds the body too). It is strict about the status line and the header
// syntax, lenient about bare LF line ends.
func parseSIPHead(head []byte) (*sipResponse, error) {
	lines := strings.Split(strings.TrimRight(string(head), "\r\n"), "\n")
	for i := range lines {
		lines[i] = strings.TrimSuffix(lines[i], "\r")
	}
	code, reason, ok := parseSIPStatusLine(lines[0])
	if !ok {
		return nil, &protocolError{Msg: "not a SIP status line: " + quoted(lines[0])}
	}
	r := &sipResponse{code: code, reason: reason, contentLength: -1}
	var userAgent string
	var fields []string // "name:value", folded lines joined
	for _, l := range lines[1:] {
		if l == "" {
			break // the end of the header; a datagram's body follows
		}
		if l[0] == ' ' || l[0] == '\t' {
			if len(fields) == 0 {
				return nil, &protocolError{Msg: "SIP header starts with a continuation line"}
			}
			fields[len(fields)-1] += " " + strings.TrimSpace(l)
			continue
		}
		fields = append(fields, l)
	}
	for _, f := range fields {
		name, value, ok := strings.Cut(f, ":")
		name = sipHeaderName(name)
		if !ok || name == "" {
			return nil, &protocolError{Msg: "malformed SIP header line " + quoted(f)}
		}
		value = strings.TrimSpace(value)
		switch name {
		case "call-id":
			r.callID = value
		case "cseq":
			r.cseq = value
		case "server":
			r.server = value
		case "user-agent":
			userAgent = value
		case "content-length":
			n, err := strconv.Atoi(value)
			if err != nil || n < 0 {
				return nil, &protocolError{Msg: "bad Content-Length " + quoted(value)}
			}
			r.contentLength = n
		}
	}
	r.branch = topViaBranch(fields)
	if r.server == "" {
		r.server = userAgent
	}
	return r, nil
}

// topViaBranch is the branch parameter of the topmost Via: the first value
// of the first Via header field.
func topViaBranch(fields []string) string {
	for _, f := range fields {
		name, value, _ := strings.Cut(f, ":")
		if sipHeaderName(name) != "via" {
			continue
		}
		first, _, _ := strings.Cut(value, ",")
		params := strings.Split(first, ";")
		for _, p := range params[1:] {
			k, v, _ := strings.Cut(p, "=")
			if strings.EqualFold(strings.TrimSpace(k), "branch") {
				return strings.TrimSpace(v)
			}
		}
		return ""
	}
	return ""
}

// probeSIP sends one OPTIONS request over the check's transport.
func probeSIP(ctx context.Context, t Target) Result {
	transport := t.Check.Transport
	if transport == "" {
		transport = "udp"
	}
	switch transport {
	case "udp":
		return probeSIPUDP(ctx, t)
	case "tcp", "tls":
		return probeSIPStream(ctx, t, transport)
	}
	r := newResult(t)
	r.Reason, r.Detail = ReasonInternalError, fmt.Sprintf("sip: unknown transport %q (udp, tcp, tls)", transport)
	return r
}

// probeSIPUDP runs a client transaction over a connected UDP socket,
// retransmitting as RFC 3261's Timer E does until the check's deadline.
func probeSIPUDP(ctx context.Context, t Target) Result {
	r := newResult(t)
	begin := time.Now()
	conn, err := dialUDP(ctx, t)
	if err != nil {
		r.addTiming(PhaseConnect, time.Since(begin))
		return fail(&r, PhaseConnect, err, t.Addr)
	}
	defer conn.Close()
	facts := &UDPFacts{SourcePort: localPortOf(conn)}
	r.Facts.UDPFacts = facts

	x := newSIPTxn("udp")
	req := x.request(t.Check, conn.LocalAddr())
	var final, provisional *sipResponse
	var strays int
	var firstStray string
	match := func(b []byte) bool {
		resp, err := parseSIPHead(b)
		why := ""
		if err != nil {
			why = err.Error()
		} else {
			why = resp.mismatch(x)
		}
		if why != "" {
			// Not an answer to this request (stale, foreign or broken): keep
			// waiting, as exchangeUDP does for any stray datagram.
			if strays == 0 {
				firstStray = why
			}
			strays++
			return false
		}
		resp.at = time.Now()
		if resp.code < 200 {
			if provisional == nil {
				provisional = resp
			}
			return false // wait for the final response
		}
		final = resp
		return true
	}

	sendBegin := time.Now()
	interval, sends := sipT1, 0
	var reply []byte
	for {
		sends++
		roundDeadline := time.Now().Add(interval)
		if d, ok := ctx.Deadline(); ok && d.Before(roundDeadline) {
			roundDeadline = d
		}
		reply, _, err = exchangeUDP(sipRound{ctx, roundDeadline}, conn, req, match)
		if err == nil || ctx.Err() != nil || time.Now().Before(roundDeadline) || strays >= maxStrayDatagrams {
			break // answered, out of time, an ICMP or local error, or too many strays
		}
		// The round ended without an answer to this request: silence, or only
		// strays (which exchangeUDP reports as a protocolError). Resend.
		var nr *noReplyError
		var pe *protocolError
		if !errors.As(err, &nr) && !errors.As(err, &pe) {
			break
		}
		if d, ok := ctx.Deadline(); ok && time.Until(d) <= 0 {
			break // the round ended with the check's deadline: send no more
		}
		if provisional != nil {
			interval = sipT2 // RFC 3261 17.1.2.2: after a provisional, resend at T2
		} else {
			interval = min(2*interval, sipT2)
		}
	}
	took := time.Since(sendBegin)
	r.addTiming(PhaseResponse, time.Since(begin))
	resp := final
	if resp == nil {
		resp = provisional
	}
	if resp == nil {
		var nr *noReplyError
		var pe *protocolError
		switch {
		case strays > 0 && (errors.As(err, &nr) || errors.As(err, &pe)):
			// As exchangeUDP does: datagrams from the target that answer
			// something else are not silence.
			err = &protocolError{Msg: fmt.Sprintf("%d datagram(s) from the target within %s (%d sends), "+
				"none answering this OPTIONS request (first: %s)", strays, took.Round(time.Millisecond), sends, firstStray)}
		case errors.As(err, &nr):
			err = &noReplyError{Waited: took}
		}
		res := udpFailure(&r, err, t)
		if res.Reason == ReasonNoReply {
			res.Detail = fmt.Sprintf("no SIP response to %d OPTIONS sends and no ICMP error within %s: "+
				"the datagrams were dropped on the way, or nothing answers SIP there (open|filtered)",
				sends, took.Round(time.Millisecond))
		}
		return res
	}
	if final != nil {
		facts.ReplyBytes = len(reply)
	}
	facts.RTTSeconds = resp.at.Sub(sendBegin).Seconds()
	r.Facts.SIPFacts = &SIPFacts{StatusCode: resp.code, Server: printable([]byte(resp.server))}
	r.Up, r.Reason, r.Phase = true, ReasonOK, PhaseResponse
	r.Detail = sipOKDetail(resp, final == nil, "UDP", t.HostPort(), resp.at.Sub(sendBegin))
	if sends > 1 {
		r.Detail += fmt.Sprintf(" (%d sends)", sends)
	}
	return r
}

// sipRound is the check's context with an earlier deadline: one
// retransmission round for exchangeUDP. It is not a child context on purpose:
// exchangeUDP's hook that interrupts the socket when its context ends would
// then fire at each round's end, concurrently with the next round, and could
// cut that round's send or wait short. Here the hook fires only when the
// check itself ends; a round ends by the socket deadline alone.
type sipRound struct {
	context.Context
	deadline time.Time
}

func (r sipRound) Deadline() (time.Time, bool) { return r.deadline, true }

func sipOKDetail(resp *sipResponse, provisionalOnly bool, transport, hostPort string, took time.Duration) string {
	d := resp.status()
	if resp.server != "" {
		d += " (server " + quoted(resp.server) + ")"
	}
	d += fmt.Sprintf(" over %s from %s in %s", transport, hostPort, took.Round(time.Microsecond))
	if provisionalOnly {
		d += "; only a provisional response came before the deadline, which still proves a SIP server answered"
	}
	return d
}

// probeSIPStream connects (and for tls completes a verified handshake), sends
// the request and reads responses until a final one or the deadline.
func probeSIPStream(ctx context.Context, t Target, transport string) Result {
	r := newResult(t)
	begin := time.Now()
	raw, err := dialTCP(ctx, t)
	r.addTiming(PhaseConnect, time.Since(begin))
	if err != nil {
		return fail(&r, PhaseConnect, err, t.Addr)
	}
	defer raw.Close()
	conn := raw
	if transport == "tls" {
		hsBegin := time.Now()
		tc, facts, err := handshakeTLS(ctx, raw, t, nil)
		hsTime := time.Since(hsBegin)
		r.addTiming(PhaseTLS, hsTime)
		if facts != nil {
			facts.HandshakeSeconds = hsTime.Seconds()
			r.Facts.TLSFacts = facts
		}
		if err != nil {
			return fail(&r, PhaseTLS, err, t.Addr)
		}
		defer tc.Close()
		conn = tc
	}
	// The deadline bounds every read and write; cancellation interrupts them.
	if d, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(d)
	}
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	x := newSIPTxn(transport)
	reqBegin := time.Now()
	_, err = conn.Write(x.request(t.Check, raw.LocalAddr()))
	r.addTiming(PhaseRequest, time.Since(reqBegin))
	if err != nil {
		return fail(&r, PhaseRequest, err, t.Addr)
	}

	respBegin := time.Now()
	cr := &countingReader{r: conn}
	final, provisional, err := readSIPResponses(bufio.NewReaderSize(cr, 4096), x)
	took := time.Since(respBegin)
	r.addTiming(PhaseResponse, took)
	resp := final
	if resp == nil {
		resp = provisional
	}
	if resp == nil {
		res := fail(&r, PhaseResponse, err, t.Addr)
		if res.Reason == ReasonTimeout {
			if cr.n == 0 {
				res.Detail = fmt.Sprintf("the server accepted the connection and the OPTIONS request but sent nothing within %s",
					took.Round(time.Millisecond))
			} else {
				res.Detail = fmt.Sprintf("deadline reached after %d bytes of an incomplete SIP response", cr.n)
			}
		}
		return res
	}
	r.Facts.SIPFacts = &SIPFacts{StatusCode: resp.code, Server: printable([]byte(resp.server))}
	r.Up, r.Reason, r.Phase = true, ReasonOK, PhaseResponse
	r.Detail = sipOKDetail(resp, final == nil, strings.ToUpper(transport), t.HostPort(), resp.at.Sub(reqBegin))
	return r
}

// readSIPResponses reads responses answering x until a final one. It returns
// the final response, or the first provisional one with the error that ended
// the wait.
func readSIPResponses(br *bufio.Reader, x sipTxn) (final, provisional *sipResponse, err error) {
	if rec := tlsRecordAhead(br); rec != nil {
		return nil, nil, foreignError("SIP", rec) // no line end to wait for
	}
	for i := 0; i <= sipMaxProvisional; i++ {
		head, err := readSIPHead(br, sipMaxHead)
		if err != nil {
			return nil, provisional, err
		}
		resp, err := parseSIPHead(head)
		if err != nil {
			return nil, provisional, err
		}
		if why := resp.mismatch(x); why != "" {
			// A stream carries only this transaction: a response to anything
			// else is a server fault, not a stray.
			return nil, provisional, &protocolError{Msg: fmt.Sprintf("%s answers another request: %s", resp.status(), why)}
		}
		resp.at = time.Now()
		if resp.code >= 200 {
			return resp, provisional, nil
		}
		if provisional == nil {
			provisional = resp
		}
		n := max(resp.contentLength, 0) // a stream message without Content-Length has no body
		if n > sipMaxBody {
			return nil, provisional, &protocolError{Msg: fmt.Sprintf("provisional response with a %d-byte body", n)}
		}
		if _, err := io.CopyN(io.Discard, br, int64(n)); err != nil {
			return nil, provisional, err
		}
	}
	return nil, provisional, &protocolError{Msg: fmt.Sprintf("more than %d provisional responses and no final one", sipMaxProvisional)}
}

// readSIPHead reads one message's start line and header fields, up to and
// without the blank line, taking at most limit bytes from br. Empty lines before
// a message are skipped (RFC 3261 7.5; CRLF keep-alives, RFC 5626). A start
// that cannot be SIP fails at once rather than after limit bytes.
func readSIPHead(br *bufio.Reader, limit int) ([]byte, error) {
	var head []byte
	total := 0
	midLine := false // the previous chunk ended without a newline
	for {
		chunk, err := br.ReadSlice('\n')
		total += len(chunk)
		if total > limit {
			return nil, &protocolError{Msg: fmt.Sprintf("SIP response header longer than %d KB without an end", limit>>10)}
		}
		blank := !midLine && (string(chunk) == "\r\n" || string(chunk) == "\n")
		switch {
		case blank && len(head) == 0:
			// a keep-alive or leading empty line
		case blank:
			return head, nil
		default:
			head = append(head, chunk...)
		}
		if len(head) >= 8 && !strings.HasPrefix(string(head[:8]), "SIP/2.0 ") {
			if err := foreignError("SIP", head); err != nil {
				return nil, err
			}
			return nil, &protocolError{Msg: "not a SIP response: the server sent " + quoted(string(head))}
		}
		switch {
		case err == bufio.ErrBufferFull:
			midLine = true
		case err != nil:
			if errors.Is(err, io.EOF) && len(head) > 0 {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		default:
			midLine = false
		}
	}
}

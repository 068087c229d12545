package probe

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The http and https kinds request one URL and judge the final status.
//
// Every connection goes through dialTCP (ICMP attribution, CONNECT tunnels)
// and every https connection through handshakeTLS (the same verification,
// TLS reasons and facts as the tls kind), so net/http only speaks HTTP/1.1
// over connections this package made. Proxies (see proxy.go): https goes
// through a CONNECT tunnel; plain http is sent to the proxy in absolute form
// ("GET http://host/ HTTP/1.1"), as browsers and curl do, because proxies
// commonly allow that but refuse CONNECT to port 80 (Squid's default), and a
// verdict must reflect what users get.
//
// Redirects are followed to any host (each hop resolved, or proxied, on its
// own terms) up to MaxRedirects; the verdict is the final response's status.

const (
	httpMaxBody             = 64 << 10 // read at most this much of the body
	httpMaxHeaderBytes      = 64 << 10 // net/http's bound on response headers
	httpDefaultMaxRedirects = 5
)

var httpDefaultExpect = [][2]int{{200, 399}}

// HTTPFacts are what the final HTTP response showed.
type HTTPFacts struct {
	StatusCode int    `json:"status_code"`
	Redirects  int    `json:"redirects"`
	FinalURL   string `json:"final_url,omitempty"` // set when redirects were followed
	BodyBytes  int64  `json:"body_bytes"`          // read, at most 64 KiB
	// FailedURL and FailedAddress name the hop of a redirect chain that
	// failed (not the configured URL, which answered with a redirect):
	// its URL and the address connected to (or "via proxy HOST:PORT").
	FailedURL     string `json:"failed_url,omitempty"`
	FailedAddress string `json:"failed_address,omitempty"`
}

// hopError is a failure of one connection of the exchange, with the phase
// it stopped in and the address it was made to (for ICMP attribution).
type hopError struct {
	phase Phase
	addr  net.IP
	err   error
}

func (e *hopError) Error() string { return e.err.Error() }
func (e *hopError) Unwrap() error { return e.err }

// httpProbe is the state of one attempt; the transport dials on its own
// goroutines, which may outlive client.Do on a deadline, hence the mutex.
type httpProbe struct {
	t Target
	// ctx bounds every dial: the transport hands dials a context without
	// the request's deadline (so that a late connection can be pooled).
	ctx context.Context

	dials sync.WaitGroup // dials in progress

	mu        sync.Mutex
	stage     Phase
	lastErr   *hopError
	tlsFacts  *TLSFacts
	timings   map[Phase]time.Duration
	gotConn   time.Time
	wrote     time.Time
	redirects int
	plain     map[string]*url.URL // proxies the transport was told to use, by address
	lastPlain *url.URL            // the proxy of the latest request, nil when direct
	early     []byte              // the start of what a server sent before the request
	// The redirect being followed: its URL, the status that sent the
	// probe there, and the address its connection went to.
	hopURL    string
	hopStatus int
	hopAddr   string
	tooMany   bool // the chain ended at MaxRedirects
}

// httpConn holds back what the server sends until the request has been
// written. net/http's read loop treats bytes that arrive before it expects a
// response as an unsolicited answer on an idle connection and fails with an
// error without text ("readLoopPeekFailLocked: <nil>") in a race with the
// request write; holding them makes every server that speaks first read as
// a (malformed, usually) response, and lets the probe say it spoke first.
type httpConn struct {
	net.Conn
	p      *httpProbe
	once   sync.Once
	wrote  chan struct{} // closed at the first Write (the request)
	closed chan struct{}
	cOnce  sync.Once
}

func (p *httpProbe) wrap(c net.Conn) net.Conn {
	return &httpConn{Conn: c, p: p, wrote: make(chan struct{}), closed: make(chan struct{})}
}

func (c *httpConn) Write(b []byte) (int, error) {
	c.once.Do(func() { close(c.wrote) })
	return c.Conn.Write(b)
}

func (c *httpConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if n > 0 {
		select {
		case <-c.wrote:
		default:
			c.p.mu.Lock()
			if c.p.early == nil {
				c.p.early = append([]byte(nil), b[:min(n, 128)]...)
			}
			c.p.mu.Unlock()
			select {
			case <-c.wrote:
			case <-c.closed:
			case <-c.p.ctx.Done():
			}
		}
		// Whatever the server sends once the request is on its way is its
		// response, even before the write-done hook has run.
		c.p.setStage(PhaseResponse)
	}
	return n, err
}

func (c *httpConn) Close() error {
	c.cOnce.Do(func() { close(c.closed) })
	return c.Conn.Close()
}

func probeHTTP(ctx context.Context, t Target) Result {
	r := newResult(t)
	c := t.Check
	o := c.GetHTTP()
	method := o.Method
	if method == "" {
		method = http.MethodGet
	}
	path := o.Path
	if path == "" {
		path = "/"
	}
	expect := o.ExpectStatus
	if len(expect) == 0 {
		expect = httpDefaultExpect
	}
	for _, e := range expect {
		if e[0] < 100 || e[1] > 999 || e[0] > e[1] {
			return fail(&r, PhaseRequest, &configError{Err: fmt.Errorf("invalid expected status range %d-%d", e[0], e[1])}, t.Addr)
		}
	}
	maxRedirects := o.MaxRedirects
	if maxRedirects <= 0 {
		maxRedirects = httpDefaultMaxRedirects
	}
	u, err := httpURL(c.Kind, c.Host, c.Port, path)
	if err != nil {
		return fail(&r, PhaseRequest, &configError{Err: err}, t.Addr)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), nil)
	if err != nil {
		return fail(&r, PhaseRequest, &configError{Err: fmt.Errorf("http request: %w", err)}, t.Addr)
	}
	req.Header.Set("User-Agent", "connprobe")

	p := &httpProbe{t: t, ctx: ctx, stage: PhaseConnect, timings: map[Phase]time.Duration{}, plain: map[string]*url.URL{}}
	tr := &http.Transport{
		Proxy:                  p.proxy,
		DialContext:            p.dial,
		DialTLSContext:         p.dialTLS,
		DisableKeepAlives:      true,
		MaxResponseHeaderBytes: httpMaxHeaderBytes,
		// HTTP/1.1 only: handshakeTLS offers no ALPN, and one protocol keeps
		// the phases and errors plain.
		TLSNextProto: map[string]func(string, *tls.Conn) http.RoundTripper{},
	}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, CheckRedirect: func(next *http.Request, via []*http.Request) error {
		if o.NoRedirects {
			return http.ErrUseLastResponse
		}
		if len(via) > maxRedirects {
			p.mu.Lock()
			p.tooMany = true
			p.mu.Unlock()
			return &protocolError{Msg: fmt.Sprintf("more than %d redirects (the next one to %s)", maxRedirects, next.URL.Redacted())}
		}
		p.mu.Lock()
		p.redirects = len(via)
		p.stage = PhaseConnect
		p.hopURL, p.hopAddr, p.hopStatus = next.URL.Redacted(), "", 0
		if next.Response != nil {
			p.hopStatus = next.Response.StatusCode
		}
		p.mu.Unlock()
		return nil
	}}
	req = req.WithContext(httptrace.WithClientTrace(ctx, p.trace()))

	resp, err := client.Do(req)
	if err != nil {
		return p.failed(&r, err)
	}
	n, bodyErr := io.Copy(io.Discard, io.LimitReader(resp.Body, httpMaxBody))
	resp.Body.Close()
	p.record(&r)
	return p.judge(r, resp, n, bodyErr, method, u, expect)
}

// judge turns the final response into the verdict: status against expect,
// a proxy's own refusal, the body read's error, and the detail. It reads
// nothing from the network (the fuzz target FuzzHTTPResponse drives it).
func (p *httpProbe) judge(r Result, resp *http.Response, n int64, bodyErr error, method string, u *url.URL, expect [][2]int) Result {
	t, o := p.t, p.t.Check.GetHTTP()
	facts := &HTTPFacts{StatusCode: resp.StatusCode, Redirects: p.redirects, BodyBytes: n}
	if p.redirects > 0 {
		facts.FinalURL = resp.Request.URL.Redacted()
	}
	r.Facts.HTTPFacts = facts
	status := printable([]byte(resp.Status))
	what := fmt.Sprintf("for %s %s", method, resp.Request.URL.Redacted())
	if p.redirects > 0 {
		what += fmt.Sprintf(" after %d redirect(s) from %s", p.redirects, u.Redacted())
	}

	p.mu.Lock()
	viaPlain := p.lastPlain
	p.mu.Unlock()
	if viaPlain != nil && resp.StatusCode >= 400 {
		// Over a plain proxied request, the proxy's own refusals come back
		// as HTTP responses: 407 is the proxy's by definition, and Squid
		// marks its error pages.
		if note := squidNote(resp.Header); resp.StatusCode == http.StatusProxyAuthRequired || note != "" {
			pe := &proxyError{Proxy: net.JoinHostPort(viaPlain.Hostname(), strconv.Itoa(proxyPort(viaPlain))),
				Method: method, Target: resp.Request.URL.Redacted(), Status: resp.StatusCode, StatusText: status, Note: note}
			return fail(&r, PhaseResponse, pe, nil)
		}
	}
	if !statusExpected(resp.StatusCode, expect) {
		return fail(&r, PhaseResponse, &protocolError{Msg: fmt.Sprintf("HTTP %s, expected %s (%s)", status, formatRanges(expect), what)}, t.Addr)
	}
	if bodyErr != nil {
		res := fail(&r, PhaseResponse, bodyErr, t.Addr)
		res.Detail = fmt.Sprintf("HTTP %s %s, then reading the body: %s", status, what, res.Detail)
		return res
	}

	r.Up, r.Reason, r.Phase = true, ReasonOK, PhaseResponse
	r.Detail = fmt.Sprintf("HTTP %s %s", status, what)
	if loc := resp.Header.Get("Location"); o.NoRedirects && loc != "" && resp.StatusCode >= 300 && resp.StatusCode < 400 {
		r.Detail += fmt.Sprintf(" (redirect to %s, not followed)", printable([]byte(loc)))
	}
	if viaPlain != nil {
		r.Detail += " via proxy " + net.JoinHostPort(viaPlain.Hostname(), strconv.Itoa(proxyPort(viaPlain)))
	}
	if f := r.Facts.TLSFacts; f != nil {
		r.Detail += fmt.Sprintf("; %s %s, certificate for %s issued by %q, valid until %s",
			f.Version, f.Cipher, f.Subject, f.Issuer, f.NotAfter.UTC().Format("2006-01-02"))
	}
	return r
}

// failed classifies an error of client.Do in the phase the exchange reached.
func (p *httpProbe) failed(r *Result, err error) Result {
	p.record(r)
	var he *hopError
	if !errors.As(err, &he) {
		// Do returns at the deadline without waiting for a dial in progress,
		// whose own error (ICMP, proxy) says more: it ends at the same
		// deadline, so wait for it, boundedly.
		done := make(chan struct{})
		go func() { p.dials.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(time.Second):
		}
		p.mu.Lock()
		he = p.lastErr // a dial that failed after the deadline had ended Do
		stage := p.stage
		p.mu.Unlock()
		if he == nil || he.phase != stage {
			he = &hopError{phase: stage, addr: p.t.Addr, err: err}
		}
	}
	p.mu.Lock()
	early := p.early
	p.mu.Unlock()
	if early != nil && he.phase == PhaseResponse && !isTimeout(he.err) {
		// An HTTP server never speaks first: say so, with what it sent,
		// before net/http's own words for the failure.
		inner := he.err
		var ue *url.Error
		if errors.As(inner, &ue) {
			inner = ue.Err // not "Get <url>:" again
		}
		_, d := classify(inner, PhaseResponse, he.addr)
		he = &hopError{phase: PhaseResponse, addr: he.addr, err: &protocolError{
			Msg: fmt.Sprintf("the server sent data before the request: \"%s\" (%s)", cleanText(firstLine(early), 64), d)}}
	}
	res := fail(r, he.phase, he.err, he.addr)
	if res.Reason == ReasonTimeout {
		switch he.phase {
		case PhaseRequest:
			res.Detail = "deadline reached while sending the request"
		case PhaseResponse:
			res.Detail = "no complete HTTP response before the deadline (the connection was accepted and the request sent)"
		}
	}
	p.blameHop(&res)
	return res
}

// blameHop names the redirect hop that failed, in the detail and facts: the
// configured host answered (with a redirect), so a bare "refused" would
// blame the wrong host.
func (p *httpProbe) blameHop(res *Result) {
	p.mu.Lock()
	n, hopURL, hopAddr, status, tooMany := p.redirects, p.hopURL, p.hopAddr, p.hopStatus, p.tooMany
	p.mu.Unlock()
	if n == 0 || tooMany {
		return
	}
	where := hopURL
	if hopAddr != "" {
		where += " at " + hopAddr
	}
	res.Detail = fmt.Sprintf("redirect %d of the chain (HTTP %d to %s) failed: %s", n, status, where, res.Detail)
	res.Facts.HTTPFacts = &HTTPFacts{StatusCode: status, Redirects: n, FailedURL: hopURL, FailedAddress: hopAddr}
}

// setHopAddr records where the connection of the current hop goes.
func (p *httpProbe) setHopAddr(t Target) {
	addr := ""
	switch {
	case t.Addr != nil:
		addr = net.JoinHostPort(t.Addr.String(), strconv.Itoa(t.Check.Port))
	case t.Family == FamilyProxy:
		if pu, _ := proxyFor(t.Check); pu != nil {
			addr = "via proxy " + net.JoinHostPort(pu.Hostname(), strconv.Itoa(proxyPort(pu)))
		}
	}
	p.mu.Lock()
	p.hopAddr = addr
	p.mu.Unlock()
}

// record copies what the transport's goroutines observed into r.
func (p *httpProbe) record(r *Result) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, ph := range []Phase{PhaseConnect, PhaseTLS} {
		if d, ok := p.timings[ph]; ok {
			r.addTiming(ph, d)
		}
	}
	if !p.gotConn.IsZero() && !p.wrote.IsZero() {
		r.addTiming(PhaseRequest, p.wrote.Sub(p.gotConn))
		r.addTiming(PhaseResponse, time.Since(p.wrote))
	}
	if p.tlsFacts != nil {
		r.Facts.TLSFacts = p.tlsFacts
	}
}

func (p *httpProbe) trace() *httptrace.ClientTrace {
	return &httptrace.ClientTrace{
		GotConn: func(httptrace.GotConnInfo) {
			p.mu.Lock()
			defer p.mu.Unlock()
			p.stage = PhaseRequest
			if p.gotConn.IsZero() {
				p.gotConn = time.Now()
			}
		},
		WroteRequest: func(i httptrace.WroteRequestInfo) {
			if i.Err != nil {
				return
			}
			p.mu.Lock()
			defer p.mu.Unlock()
			p.stage = PhaseResponse
			if p.wrote.IsZero() {
				p.wrote = time.Now()
			}
		},
	}
}

// hop records a failed connection of the exchange and returns it.
func (p *httpProbe) hop(phase Phase, addr net.IP, err error) error {
	he := &hopError{phase: phase, addr: addr, err: err}
	p.mu.Lock()
	p.lastErr = he
	p.mu.Unlock()
	return he
}

// timing keeps the first connection's duration of each phase: that of the
// check's own host.
func (p *httpProbe) timing(ph Phase, d time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, ok := p.timings[ph]; !ok {
		p.timings[ph] = d
	}
}

func (p *httpProbe) setStage(ph Phase) {
	p.mu.Lock()
	p.stage = ph
	p.mu.Unlock()
}

// proxy is the transport's Proxy hook. It names a proxy only for plain http
// (absolute-form requests); https is tunnelled by dialTCP, whose CONNECT
// handling classifies refusals itself.
func (p *httpProbe) proxy(req *http.Request) (*url.URL, error) {
	var pu *url.URL
	if req.URL.Scheme == "http" {
		port, _ := strconv.Atoi(req.URL.Port())
		if port == 0 {
			port = 80
		}
		var err error
		if pu, err = proxyFor(p.hopCheck("http", req.URL.Hostname(), port)); err != nil {
			return nil, &configError{Err: err}
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.lastPlain = pu
	if pu != nil {
		p.plain[net.JoinHostPort(pu.Hostname(), strconv.Itoa(proxyPort(pu)))] = pu
	}
	return pu, nil
}

// dial is the transport's DialContext: plain http, to the target or to the
// proxy its Proxy hook named.
func (p *httpProbe) dial(_ context.Context, _, addr string) (net.Conn, error) {
	ctx := p.ctx
	p.dials.Add(1)
	defer p.dials.Done()
	p.setStage(PhaseConnect)
	p.mu.Lock()
	pu := p.plain[addr]
	p.mu.Unlock()
	begin := time.Now()
	if pu != nil {
		conn, pe := dialProxyServer(ctx, p.t.Check, pu)
		p.timing(PhaseConnect, time.Since(begin))
		if pe != nil {
			return nil, p.hop(PhaseConnect, nil, &dialError{Op: "proxy", Err: pe, Timeout: isTimeout(pe.Err)})
		}
		return p.wrap(conn), nil
	}
	t, err := p.targetFor(ctx, "http", addr)
	if err != nil {
		return nil, p.hop(PhaseDNS, nil, err)
	}
	p.setHopAddr(t)
	conn, err := dialTCP(ctx, t)
	p.timing(PhaseConnect, time.Since(begin))
	if err != nil {
		return nil, p.hop(PhaseConnect, t.Addr, err)
	}
	return p.wrap(conn), nil
}

// dialTLS is the transport's DialTLSContext: dialTCP (direct or tunnelled),
// then handshakeTLS with the hop's host name for SNI and verification.
func (p *httpProbe) dialTLS(_ context.Context, _, addr string) (net.Conn, error) {
	ctx := p.ctx
	p.dials.Add(1)
	defer p.dials.Done()
	p.setStage(PhaseConnect)
	t, err := p.targetFor(ctx, "https", addr)
	if err != nil {
		return nil, p.hop(PhaseDNS, nil, err)
	}
	p.setHopAddr(t)
	begin := time.Now()
	raw, err := dialTCP(ctx, t)
	connectTime := time.Since(begin)
	p.timing(PhaseConnect, connectTime)
	if err != nil {
		return nil, p.hop(PhaseConnect, t.Addr, err)
	}
	p.setStage(PhaseTLS)
	hsBegin := time.Now()
	tc, facts, err := handshakeTLS(ctx, raw, t, nil)
	hsTime := time.Since(hsBegin)
	p.timing(PhaseTLS, hsTime)
	if facts != nil {
		facts.ConnectSeconds, facts.HandshakeSeconds = connectTime.Seconds(), hsTime.Seconds()
		p.mu.Lock()
		// The first handshake describes the check's own host; a failing one
		// explains the verdict.
		if p.tlsFacts == nil || err != nil {
			p.tlsFacts = facts
		}
		p.mu.Unlock()
	}
	if err != nil {
		raw.Close()
		return nil, p.hop(PhaseTLS, t.Addr, err)
	}
	return p.wrap(tc), nil
}

// hopCheck is the check as it applies to one hop (a redirect may lead to
// another scheme, host or port). A TLS name override belongs to the
// check's own host only.
func (p *httpProbe) hopCheck(scheme, host string, port int) *Check {
	oc := p.t.Check
	c := *oc
	c.Kind, c.Host, c.Port = scheme, host, port
	if !strings.EqualFold(host, oc.Host) && oc.TLS != nil {
		// A copy: the original check shares its options.
		tls := *oc.TLS
		tls.ServerName = ""
		c.TLS = &tls
	}
	return &c
}

// targetFor binds a hop's host:port to a Target: the probe's own target for
// the check's host, else the hop's own resolution (in the family of the
// probe's target) or, through a proxy, no address.
func (p *httpProbe) targetFor(ctx context.Context, scheme, addr string) (Target, error) {
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return Target{}, &protocolError{Msg: fmt.Sprintf("cannot connect to %q: %v", printable([]byte(addr)), err)}
	}
	port, _ := strconv.Atoi(portStr)
	oc := p.t.Check
	if scheme == oc.Kind && strings.EqualFold(host, oc.Host) && port == oc.Port {
		return p.t, nil
	}
	c := p.hopCheck(scheme, host, port)
	if pu, err := proxyFor(c); pu != nil || err != nil {
		return Target{Check: c, Family: FamilyProxy}, nil
	}
	if ip := net.ParseIP(host); ip != nil {
		return Target{Check: c, Addr: ip, Family: familyOf(ip)}, nil
	}
	network := "ip"
	switch p.t.Family {
	case FamilyIPv4:
		network = "ip4"
	case FamilyIPv6:
		network = "ip6"
	}
	addrs, err := lookupNetIP(ctx, c.DNSServer, network, host)
	if err != nil {
		return Target{}, err
	}
	if len(addrs) == 0 {
		return Target{}, &net.DNSError{Err: errNoFamilyAddress, Name: host, IsNotFound: true}
	}
	ip := net.IP(addrs[0].Unmap().AsSlice())
	return Target{Check: c, Addr: ip, Family: familyOf(ip)}, nil
}

// httpURL is the URL a check requests; the port is left out when it is the
// scheme's default, as a browser would (it shows in the Host header).
func httpURL(scheme, host string, port int, path string) (*url.URL, error) {
	if !strings.HasPrefix(path, "/") {
		path = "/" + path
	}
	// ParseRequestURI reads "//x/y" as a path, never as another host.
	ref, err := url.ParseRequestURI(path)
	if err != nil {
		return nil, fmt.Errorf("http path %q: %w", path, err)
	}
	hostport := net.JoinHostPort(host, strconv.Itoa(port))
	if (scheme == "http" && port == 80) || (scheme == "https" && port == 443) {
		hostport = host
		if strings.Contains(host, ":") {
			hostport = "[" + host + "]"
		}
	}
	return &url.URL{Scheme: scheme, Host: hostport, Path: ref.Path, RawPath: ref.RawPath, RawQuery: ref.RawQuery}, nil
}

// firstLine is b up to its first line end, for quoting what a server sent.
func firstLine(b []byte) []byte {
	if i := bytes.IndexAny(b, "\r\n"); i >= 0 {
		return b[:i]
	}
	return b
}

func statusExpected(code int, ranges [][2]int) bool {
	for _, r := range ranges {
		if code >= r[0] && code <= r[1] {
			return true
		}
	}
	return false
}

// formatRanges renders accepted statuses for people: "200-399", "200, 204".
func formatRanges(ranges [][2]int) string {
	parts := make([]string, len(ranges))
	for i, r := range ranges {
		if r[0] == r[1] {
			parts[i] = strconv.Itoa(r[0])
		} else {
			parts[i] = fmt.Sprintf("%d-%d", r[0], r[1])
		}
	}
	return strings.Join(parts, ", ")
}

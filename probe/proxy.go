package probe

import (
	"bufio"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"golang.org/x/net/http/httpproxy"
)

// Proxies. Many offices let the web out only through an HTTP proxy, so a
// direct connection proves nothing about what users get. A check names its
// proxy in Check.Proxy; TCP-based kinds then reach the target through an HTTP
// CONNECT tunnel, and every dial in this package goes through dialTCP, which
// decides per connection.
//
// Which proxy applies (proxyFor):
//
//   - Check.Proxy "direct": none, not even one from the environment;
//   - Check.Proxy set: that proxy, for every kind that connects out over TCP
//     (UDP cannot be tunnelled through CONNECT, so UDP kinds ignore it);
//   - Check.Proxy empty: only the http and https kinds consult the
//     environment, with the semantics of Go's http.ProxyFromEnvironment
//     (HTTPS_PROXY for https, HTTP_PROXY for http, NO_PROXY honoured,
//     loopback never proxied). Those are the variables a user expects a web
//     client to honour; a raw tls or tcp check is not a web client (neither
//     openssl s_client nor nc honour them), so it stays direct unless its
//     configuration names a proxy. The environment is read at probe time.
//
// Through a proxy the proxy resolves the target's name: Run does not resolve
// it locally (a local DNS failure would be a false verdict when only the
// proxy needs to resolve it), the Target has no address, its Family is
// FamilyProxy and its result's Address reads "via proxy host:port". ICMP
// attribution applies to the connection to the proxy, the one hop this host
// can observe.

// FamilyProxy is the IP family of a target reached through a proxy: the
// proxy chooses the family it connects with, and this host cannot see it.
const FamilyProxy = "proxy"

// ProxyDirect as Check.Proxy turns proxying off, including the environment's.
const ProxyDirect = "direct"

// ProxyScheme is the one scheme of a proxy URL: an HTTP proxy that takes
// CONNECT.
const ProxyScheme = "http"

// proxyMaxHeaderBytes bounds the proxy's answer to CONNECT: a hostile or
// broken proxy must not make the probe read without end.
const proxyMaxHeaderBytes = 16 << 10

// proxyError is a proxy that could not be reached, did not answer CONNECT as
// HTTP requires, or refused the request (Status set).
type proxyError struct {
	Proxy   string // the proxy as dialled: ip:port, or host:port before it resolved
	ProxyIP net.IP // nil when the proxy's name did not resolve
	Target  string // host:port the tunnel was asked for (or the URL of a plain proxied request)
	Method  string // "CONNECT", or the method of a plain proxied request (http kind)

	Status     int    // the refusal's status code; 0 when the proxy gave none
	StatusText string // its status line, e.g. "403 Forbidden" (printable)
	Note       string // what the proxy said beyond the status, e.g. Squid's X-Squid-Error

	// Connected tells a failure talking to the proxy from one reaching it.
	Connected bool
	Err       error
}

func (e *proxyError) Error() string {
	if e.Status != 0 {
		what := e.Method + " " + e.Target
		if e.Method == http.MethodConnect {
			what = "CONNECT to " + e.Target
		}
		s := fmt.Sprintf("proxy %s refused %s: %s", e.Proxy, what, e.StatusText)
		if e.Note != "" {
			s += " (" + e.Note + ")"
		}
		return s + proxyHint(e.Method, e.Status, e.Target)
	}
	return fmt.Sprintf("proxy %s: %v", e.Proxy, e.Err)
}

func (e *proxyError) Unwrap() error { return e.Err }

// proxyHint explains the refusals people most often meet.
func proxyHint(method string, status int, target string) string {
	switch {
	case status == http.StatusProxyAuthRequired:
		return " (proxy authentication required)"
	case status == http.StatusForbidden && method == http.MethodConnect && !strings.HasSuffix(target, ":443"):
		return " (Squid and many proxies only allow CONNECT to port 443 by default)"
	}
	return ""
}

// dialTCP connects to t: directly (dialDirect), or through an HTTP CONNECT
// tunnel when a proxy applies to t's check. Every TCP dial of this package
// goes through it. A returned conn may hold bytes the proxy sent after its
// answer; they are read first.
func dialTCP(ctx context.Context, t Target) (net.Conn, error) {
	pu, err := proxyFor(t.Check)
	if err != nil {
		return nil, &dialError{Op: "proxy", Err: &configError{Err: err}}
	}
	if pu == nil {
		if t.Addr == nil {
			// resolve saw a proxy that has since disappeared (the environment changed).
			return nil, &dialError{Op: "connect", Err: &configError{Err: errors.New("no address to connect to: the proxy setting changed during the probe")}}
		}
		return dialDirect(ctx, t)
	}
	host := t.Check.Host
	if t.Addr != nil {
		host = t.Addr.String() // a kind chose the address itself (e.g. an FTP data connection)
	}
	return dialTunnel(ctx, t.Check, pu, net.JoinHostPort(host, strconv.Itoa(t.Check.Port)))
}

// dialTunnel opens a CONNECT tunnel to target through the proxy pu.
func dialTunnel(ctx context.Context, c *Check, pu *url.URL, target string) (net.Conn, error) {
	if strings.ContainsAny(target, " \t\r\n") {
		// A name from a redirect or a PASV reply must not inject header lines.
		return nil, &dialError{Op: "proxy", Err: &protocolError{Msg: fmt.Sprintf("cannot ask a proxy for %q", printable([]byte(target)))}}
	}
	conn, pe := dialProxyServer(ctx, c, pu)
	if pe != nil {
		pe.Target, pe.Method = target, http.MethodConnect
		return nil, &dialError{Op: "proxy", Err: pe, Timeout: isTimeout(pe.Err)}
	}
	tc, err := connectTunnel(ctx, conn, pu, target)
	if err != nil {
		conn.Close()
		var pe *proxyError
		if errors.As(err, &pe) {
			pe.Proxy, pe.ProxyIP = conn.RemoteAddr().String(), remoteIP(conn)
			pe.Target, pe.Method = target, http.MethodConnect
		}
		return nil, &dialError{Op: "proxy", Err: err, Timeout: isTimeout(err)}
	}
	return tc, nil
}

// dialProxyServer resolves the proxy's name and connects to it with
// dialDirect, so that ICMP attribution applies to this hop. The proxy's name
// is resolved by the system resolver (a check's dns_server is for its
// target), in the check's IP family when it asks for one.
func dialProxyServer(ctx context.Context, c *Check, pu *url.URL) (net.Conn, *proxyError) {
	host, port := pu.Hostname(), proxyPort(pu)
	ip := net.ParseIP(host)
	if ip == nil {
		network := "ip"
		switch c.IPFamily {
		case FamilyIPv4:
			network = "ip4"
		case FamilyIPv6:
			network = "ip6"
		}
		addrs, err := net.DefaultResolver.LookupNetIP(ctx, network, host)
		if err != nil {
			return nil, &proxyError{Proxy: net.JoinHostPort(host, strconv.Itoa(port)), Err: err}
		}
		if len(addrs) == 0 {
			return nil, &proxyError{Proxy: net.JoinHostPort(host, strconv.Itoa(port)),
				Err: &net.DNSError{Err: errNoFamilyAddress, Name: host, IsNotFound: true}}
		}
		ip = net.IP(addrs[0].Unmap().AsSlice())
	}
	pc := *c
	pc.Host, pc.Port = host, port
	conn, err := dialDirect(ctx, Target{Check: &pc, Addr: ip, Family: familyOf(ip)})
	if err != nil {
		return nil, &proxyError{Proxy: net.JoinHostPort(ip.String(), strconv.Itoa(port)), ProxyIP: ip, Err: err}
	}
	return conn, nil
}

// connectTunnel sends CONNECT target over conn and reads the answer within
// ctx's deadline and proxyMaxHeaderBytes.
func connectTunnel(ctx context.Context, conn net.Conn, pu *url.URL, target string) (net.Conn, error) {
	if d, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(d)
	}
	stop := interruptWhenDone(ctx, conn.SetDeadline)
	defer stop()

	var req strings.Builder
	fmt.Fprintf(&req, "CONNECT %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: connprobe\r\n", target, target)
	if auth := proxyAuth(pu); auth != "" {
		fmt.Fprintf(&req, "Proxy-Authorization: %s\r\n", auth)
	}
	req.WriteString("\r\n")
	if _, err := io.WriteString(conn, req.String()); err != nil {
		return nil, &proxyError{Connected: true, Err: ctxErr(ctx, err)}
	}

	lr := &io.LimitedReader{R: conn, N: proxyMaxHeaderBytes}
	br := bufio.NewReader(lr)
	resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodConnect})
	if err != nil {
		err = ctxErr(ctx, err)
		switch {
		case lr.N == 0:
			err = &protocolError{Msg: fmt.Sprintf("its answer to CONNECT %s has more than %d bytes of headers", target, proxyMaxHeaderBytes)}
		case !isTimeout(err) && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) && !isNetOpError(err):
			err = &protocolError{Msg: fmt.Sprintf("its answer to CONNECT %s is not HTTP (%s)", target, printable([]byte(err.Error())))}
		}
		return nil, &proxyError{Connected: true, Err: err}
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, &proxyError{Connected: true, Status: resp.StatusCode,
			StatusText: printable([]byte(resp.Status)), Note: squidNote(resp.Header), Err: errors.New(resp.Status)}
	}
	_ = conn.SetDeadline(time.Time{})
	// Bytes the peer sent right after the proxy's answer (a server that
	// speaks first) are already in br; the tunnel must deliver them first.
	pending, _ := br.Peek(br.Buffered())
	return &tunnelConn{Conn: conn, pending: append([]byte(nil), pending...)}, nil
}

// squidNote is Squid's machine-readable error name, when the proxy sent one.
func squidNote(h http.Header) string {
	if v := h.Get("X-Squid-Error"); v != "" {
		return "X-Squid-Error: " + printable([]byte(v))
	}
	return ""
}

// ctxErr prefers the context's error to the deadline error it caused.
func ctxErr(ctx context.Context, err error) error {
	if ctx.Err() != nil && isTimeout(err) {
		return ctx.Err()
	}
	return err
}

// isNetOpError tells an error of the connection (reset, ...) from one of
// parsing what came over it.
func isNetOpError(err error) bool {
	var op *net.OpError
	return errors.As(err, &op)
}

// proxyAuth is the Proxy-Authorization value for a proxy URL with user
// information, or "". The password goes only into this header.
func proxyAuth(pu *url.URL) string {
	if pu.User == nil {
		return ""
	}
	pass, _ := pu.User.Password()
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(pu.User.Username()+":"+pass))
}

// tunnelConn serves the bytes read past the proxy's answer before reading on.
type tunnelConn struct {
	net.Conn
	pending []byte
}

func (c *tunnelConn) Read(p []byte) (int, error) {
	if len(c.pending) > 0 {
		n := copy(p, c.pending)
		c.pending = c.pending[n:]
		return n, nil
	}
	return c.Conn.Read(p)
}

func remoteIP(c net.Conn) net.IP {
	if a, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		return a.IP
	}
	return nil
}

// proxyFor returns the proxy that applies to c, or nil for a direct
// connection. The rules are at the top of this file.
func proxyFor(c *Check) (*url.URL, error) {
	if !tunnelable(c) {
		return nil, nil
	}
	switch c.Proxy {
	case ProxyDirect:
		return nil, nil
	case "":
		if spec, err := LookupKind(c.Kind); err != nil || !spec.EnvProxy {
			return nil, nil
		}
		// httpproxy, unlike http.ProxyFromEnvironment, reads the variables
		// on every call: a changed environment takes effect at the next probe.
		u := &url.URL{Scheme: c.Kind, Host: net.JoinHostPort(c.Host, strconv.Itoa(c.Port))}
		pu, err := httpproxy.FromEnvironment().ProxyFunc()(u)
		if err != nil {
			// Its message quotes the variable, password included.
			return nil, errors.New("the proxy named by HTTPS_PROXY/HTTP_PROXY is not a valid URL")
		}
		if pu == nil {
			return nil, nil
		}
		return checkProxyURL(pu)
	}
	raw := c.Proxy
	if !strings.Contains(raw, "://") {
		raw = ProxyScheme + "://" + raw
	}
	pu, err := url.Parse(raw)
	if err != nil {
		// url.Parse's message quotes the URL, password included.
		return nil, errors.New("proxy is not a valid http://[user:pass@]host:port URL")
	}
	return checkProxyURL(pu)
}

func checkProxyURL(pu *url.URL) (*url.URL, error) {
	if pu.Scheme != ProxyScheme {
		return nil, fmt.Errorf("proxy %s: only http:// proxies are supported, not %s://", pu.Redacted(), pu.Scheme)
	}
	if pu.Hostname() == "" {
		return nil, fmt.Errorf("proxy %s names no host", pu.Redacted())
	}
	if p := pu.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return nil, fmt.Errorf("proxy %s: invalid port", pu.Redacted())
		}
	}
	return pu, nil
}

// proxyPort is the proxy URL's port; 80 when it names none, as in Go's
// own proxy handling.
func proxyPort(pu *url.URL) int {
	if n, err := strconv.Atoi(pu.Port()); err == nil {
		return n
	}
	return 80
}

// tunnelable reports whether c's kind connects out over TCP, as the kind
// says (KindSpec.Proxyable).
func tunnelable(c *Check) bool {
	spec, err := LookupKind(c.Kind)
	return err == nil && spec.Proxyable(c.Transport)
}

// viaProxyAddress is the Address of a result obtained through c's proxy:
// "via proxy host:port" as configured (never with its credentials).
func viaProxyAddress(c *Check) string {
	pu, err := proxyFor(c)
	if err != nil || pu == nil {
		return ""
	}
	return "via proxy " + net.JoinHostPort(pu.Hostname(), strconv.Itoa(proxyPort(pu)))
}

package probe

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Tests of the http and https kinds and of proxies, on real loopback sockets.
// Helpers carry an "hp" prefix.

// hpServer starts an HTTP server on 127.0.0.1 (TLS with leaf when non-nil)
// and returns its port; sni reports the names TLS clients sent.
func hpServer(t *testing.T, leaf *lbLeaf, h http.Handler) (port int, sni func() []string) {
	t.Helper()
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // failed handshakes are the point of some tests
	var mu sync.Mutex
	var names []string
	if leaf != nil {
		srv.TLS = &tls.Config{
			Certificates: []tls.Certificate{leaf.tls},
			GetConfigForClient: func(hi *tls.ClientHelloInfo) (*tls.Config, error) {
				mu.Lock()
				names = append(names, hi.ServerName)
				mu.Unlock()
				return nil, nil
			},
		}
		srv.StartTLS()
	} else {
		srv.Start()
	}
	t.Cleanup(srv.Close)
	port = srv.Listener.Addr().(*net.TCPAddr).Port
	return port, func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), names...)
	}
}

func hpCheck(kind string, port int) *Check {
	return &Check{Name: "t", Kind: kind, Host: "127.0.0.1", Port: port, IPFamily: FamilyIPv4,
		Timeout: 3 * time.Second, Proxy: ProxyDirect}
}

func hpStatus(code int) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(code) })
}

func hpFacts(t *testing.T, r Result) *HTTPFacts {
	t.Helper()
	if r.Facts.HTTPFacts == nil {
		t.Fatalf("no HTTP facts: %+v", r)
	}
	return r.Facts.HTTPFacts
}

func TestHTTPPlainOK(t *testing.T) {
	var gotPath, gotMethod, gotHost string
	port, _ := hpServer(t, nil, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotPath, gotMethod, gotHost = r.URL.RequestURI(), r.Method, r.Host
		io.WriteString(w, "hello")
	}))
	c := hpCheck("http", port)
	c.HTTP = &HTTPOptions{Method: "HEAD", Path: "/health?x=1"}
	r := lbRun1(t, c)
	lbExpect(t, r, true, ReasonOK, PhaseResponse, "HTTP 200 OK", "HEAD http://127.0.0.1:"+strconv.Itoa(port)+"/health?x=1")
	if f := hpFacts(t, r); f.StatusCode != 200 || f.Redirects != 0 {
		t.Errorf("facts %+v", f)
	}
	if gotPath != "/health?x=1" || gotMethod != "HEAD" || gotHost != "127.0.0.1:"+strconv.Itoa(port) {
		t.Errorf("server saw %s %s Host %s", gotMethod, gotPath, gotHost)
	}
	if r.Address != "127.0.0.1" || r.IPFamily != FamilyIPv4 {
		t.Errorf("address %q family %q", r.Address, r.IPFamily)
	}
	for _, ph := range []Phase{PhaseConnect, PhaseRequest, PhaseResponse} {
		if _, ok := r.TimingOf(ph); !ok {
			t.Errorf("no %s timing: %+v", ph, r.Timings)
		}
	}
	b, err := json.Marshal(r.Facts)
	if err != nil || !strings.Contains(string(b), `"status_code":200`) {
		t.Errorf("facts JSON %s, %v", b, err)
	}
}

func TestHTTPSOK(t *testing.T) {
	p := lbPKI(t)
	port, sni := hpServer(t, p.good, hpStatus(204))
	c := hpCheck("https", port)
	c.Host = "localhost"
	own(&c.TLS).CAFile = lbWriteCAFile(t, p.root)
	r := lbRun1(t, c)
	lbExpect(t, r, true, ReasonOK, PhaseResponse, "HTTP 204 No Content", `issued by "Test Root CA"`)
	if f := hpFacts(t, r); f.StatusCode != 204 {
		t.Errorf("status_code %d", f.StatusCode)
	}
	f := r.Facts.TLSFacts
	if f == nil || f.Subject != "localhost" || f.ServerName != "localhost" || f.HandshakeSeconds <= 0 {
		t.Errorf("TLS facts %+v", f)
	}
	if got := sni(); len(got) != 1 || got[0] != "localhost" {
		t.Errorf("SNI %q", got)
	}
	if _, ok := r.TimingOf(PhaseTLS); !ok {
		t.Errorf("no tls timing: %+v", r.Timings)
	}
}

func TestHTTPSUntrusted(t *testing.T) {
	p := lbPKI(t)
	port, _ := hpServer(t, p.unknownCA, hpStatus(200))
	c := hpCheck("https", port)
	own(&c.TLS).CAFile = lbWriteCAFile(t, p.root)
	r := lbRun1(t, c)
	lbExpect(t, r, false, ReasonTLSUntrusted, PhaseTLS, "unknown authority")
	if r.Facts.TLSFacts == nil || r.Facts.TLSFacts.Issuer != "Unknown Test CA" {
		t.Errorf("TLS facts %+v", r.Facts.TLSFacts)
	}
}

func TestHTTPStatus(t *testing.T) {
	cases := []struct {
		name   string
		code   int
		expect [][2]int
		ok     bool
		detail string
	}{
		{"500 default", 500, nil, false, "HTTP 500 Internal Server Error, expected 200-399"},
		{"503 default", 503, nil, false, "HTTP 503 Service Unavailable, expected 200-399"},
		{"404 expected", 404, [][2]int{{404, 404}}, true, "HTTP 404 Not Found"},
		{"201 not in list", 201, [][2]int{{200, 200}, {204, 204}}, false, "HTTP 201 Created, expected 200, 204"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			port, _ := hpServer(t, nil, hpStatus(tc.code))
			c := hpCheck("http", port)
			own(&c.HTTP).ExpectStatus = tc.expect
			r := lbRun1(t, c)
			if tc.ok {
				lbExpect(t, r, true, ReasonOK, PhaseResponse, tc.detail)
			} else {
				lbExpect(t, r, false, ReasonProtocol, PhaseResponse, tc.detail)
			}
			if f := hpFacts(t, r); f.StatusCode != tc.code {
				t.Errorf("status_code %d", f.StatusCode)
			}
		})
	}
}

func TestHTTPInvalidExpectStatus(t *testing.T) {
	c := hpCheck("http", lbFreePort(t, "tcp4", "127.0.0.1:0"))
	own(&c.HTTP).ExpectStatus = [][2]int{{399, 200}}
	lbExpect(t, lbRun1(t, c), false, ReasonInternalError, PhaseRequest, "invalid expected status range")
}

// hpRedirects serves /r/N redirecting to /r/N-1, /r/0 answering 200, and
// /loop redirecting to itself.
func hpRedirects() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/loop" {
			http.Redirect(w, r, "/loop", http.StatusFound)
			return
		}
		n, err := strconv.Atoi(strings.TrimPrefix(r.URL.Path, "/r/"))
		if err != nil {
			http.NotFound(w, r)
			return
		}
		if n == 0 {
			io.WriteString(w, "done")
			return
		}
		http.Redirect(w, r, "/r/"+strconv.Itoa(n-1), http.StatusMovedPermanently)
	})
}

func TestHTTPRedirects(t *testing.T) {
	port, _ := hpServer(t, nil, hpRedirects())
	base := "http://127.0.0.1:" + strconv.Itoa(port)

	c := hpCheck("http", port)
	own(&c.HTTP).Path = "/r/3"
	r := lbRun1(t, c)
	lbExpect(t, r, true, ReasonOK, PhaseResponse, "HTTP 200 OK", "after 3 redirect(s) from "+base+"/r/3")
	if f := hpFacts(t, r); f.Redirects != 3 || f.FinalURL != base+"/r/0" || f.StatusCode != 200 {
		t.Errorf("facts %+v", f)
	}

	c = hpCheck("http", port)
	own(&c.HTTP).Path = "/loop"
	lbExpect(t, lbRun1(t, c), false, ReasonProtocol, PhaseResponse, "more than 5 redirects")

	c = hpCheck("http", port)
	h := own(&c.HTTP)
	h.Path, h.MaxRedirects = "/r/2", 1
	lbExpect(t, lbRun1(t, c), false, ReasonProtocol, PhaseResponse, "more than 1 redirects")

	c = hpCheck("http", port)
	h = own(&c.HTTP)
	h.Path, h.NoRedirects = "/r/2", true
	r = lbRun1(t, c)
	lbExpect(t, r, true, ReasonOK, PhaseResponse, "HTTP 301 Moved Permanently", "redirect to /r/1, not followed")
	if f := hpFacts(t, r); f.StatusCode != 301 || f.Redirects != 0 {
		t.Errorf("facts %+v", f)
	}

	own(&c.HTTP).ExpectStatus = [][2]int{{200, 299}}
	lbExpect(t, lbRun1(t, c), false, ReasonProtocol, PhaseResponse, "HTTP 301 Moved Permanently, expected 200-299")
}

// A redirect whose target is closed: the failure names the hop (its URL and
// address), not the configured host, which answered.
func TestHTTPRedirectHopFails(t *testing.T) {
	closed := lbFreePort(t, "tcp4", "127.0.0.1:0")
	hop := fmt.Sprintf("http://127.0.0.2:%d/next", closed)
	port, _ := hpServer(t, nil, http.RedirectHandler(hop, http.StatusFound))
	r := lbRun1(t, hpCheck("http", port))
	lbExpect(t, r, false, ReasonRefused, PhaseConnect,
		fmt.Sprintf("redirect 1 of the chain (HTTP 302 to %s at 127.0.0.2:%d) failed: connection refused", hop, closed))
	if r.Address != "127.0.0.1" {
		t.Errorf("address %q, want the configured target's", r.Address)
	}
	f := hpFacts(t, r)
	if f.Redirects != 1 || f.StatusCode != 302 || f.FailedURL != hop || f.FailedAddress != fmt.Sprintf("127.0.0.2:%d", closed) {
		t.Errorf("facts %+v", f)
	}
	b, _ := json.Marshal(f)
	for _, key := range []string{`"failed_url":`, `"failed_address":`, `"redirects":1`, `"status_code":302`} {
		if !strings.Contains(string(b), key) {
			t.Errorf("facts JSON %s lacks %s", b, key)
		}
	}
}

// A redirect to another scheme and port: the https hop is dialled and
// verified like the first.
func TestHTTPRedirectToHTTPS(t *testing.T) {
	p := lbPKI(t)
	tlsPort, sni := hpServer(t, p.good, hpStatus(200))
	port, _ := hpServer(t, nil, http.RedirectHandler(fmt.Sprintf("https://localhost:%d/secure", tlsPort), http.StatusFound))
	c := hpCheck("http", port)
	own(&c.TLS).CAFile = lbWriteCAFile(t, p.root)
	r := lbRun1(t, c)
	lbExpect(t, r, true, ReasonOK, PhaseResponse, "HTTP 200 OK", "after 1 redirect(s)", `issued by "Test Root CA"`)
	if got := sni(); len(got) != 1 || got[0] != "localhost" {
		t.Errorf("SNI %q", got)
	}

	// Without the CA, the https hop fails as TLS, not as HTTP, and is named.
	own(&c.TLS).CAFile = ""
	hop := fmt.Sprintf("https://localhost:%d/secure", tlsPort)
	r = lbRun1(t, c)
	lbExpect(t, r, false, ReasonTLSUntrusted, PhaseTLS, "redirect 1 of the chain (HTTP 302 to "+hop+" at 127.0.0.1:")
	if f := hpFacts(t, r); f.FailedURL != hop || f.Redirects != 1 || f.StatusCode != 302 {
		t.Errorf("facts %+v", f)
	}
}

func TestHTTPHostile(t *testing.T) {
	silent := lbRawServer(t, func(c net.Conn) { _, _ = io.Copy(io.Discard, c) })
	bigHeader := lbRawServer(t, func(c net.Conn) {
		defer c.Close()
		_, _ = c.Write([]byte("HTTP/1.1 200 OK\r\nX-Big: "))
		_, _ = c.Write([]byte(strings.Repeat("a", 1<<20)))
		_, _ = c.Write([]byte("\r\n\r\n"))
	})
	notHTTP := lbRawServer(t, func(c net.Conn) {
		defer c.Close()
		_, _ = c.Write([]byte("SSH-2.0-OpenSSH_9.6\r\n"))
		_, _ = io.Copy(io.Discard, c)
	})
	bigBody := lbRawServer(t, func(c net.Conn) {
		defer c.Close()
		_, _ = bufio.NewReader(c).ReadString('\n')
		_, _ = c.Write([]byte("HTTP/1.1 200 OK\r\nContent-Length: 10000000\r\n\r\n"))
		_, _ = c.Write(make([]byte, 1<<20))
	})
	stalledBody := lbRawServer(t, func(c net.Conn) {
		defer c.Close()
		_, _ = bufio.NewReader(c).ReadString('\n')
		_, _ = c.Write([]byte("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nabc"))
		_, _ = io.Copy(io.Discard, c)
	})
	closed := lbFreePort(t, "tcp4", "127.0.0.1:0")

	run := func(port int) Result {
		c := hpCheck("http", port)
		c.Timeout = time.Second
		begin := time.Now()
		r := lbRun1(t, c)
		if d := time.Since(begin); d > 3*time.Second {
			t.Errorf("port %d: took %s with a 1s timeout", port, d)
		}
		return r
	}
	lbExpect(t, run(silent), false, ReasonTimeout, PhaseResponse, "no complete HTTP response before the deadline")
	lbExpect(t, run(bigHeader), false, ReasonProtocol, PhaseResponse, "exceeded")
	// Whether the banner arrives before the request is written is a race the
	// probe cannot win; the verdict, phase and quoted banner must not depend
	// on it (the detail adds "sent data before the request" when it saw that).
	lbExpect(t, run(notHTTP), false, ReasonProtocol, PhaseResponse, `malformed HTTP response "SSH-2.0-OpenSSH_9.6"`)
	r := run(bigBody)
	lbExpect(t, r, true, ReasonOK, PhaseResponse, "HTTP 200 OK")
	if f := hpFacts(t, r); f.BodyBytes != httpMaxBody {
		t.Errorf("read %d body bytes, want the bound %d", f.BodyBytes, httpMaxBody)
	}
	lbExpect(t, run(stalledBody), false, ReasonTimeout, PhaseResponse, "HTTP 200 OK", "then reading the body")
	lbExpect(t, run(closed), false, ReasonRefused, PhaseConnect, "connection refused")
}

// TestHTTPServerSpeaksFirst drives the connection wrapper deterministically
// (the transport's own ordering is a race, see TestHTTPHostile): bytes a
// server sends before the request are held until the request is written,
// recorded, and turn a failed exchange into "sent data before the request".
func TestHTTPServerSpeaksFirst(t *testing.T) {
	port := lbRawServer(t, func(c net.Conn) {
		defer c.Close()
		_, _ = io.WriteString(c, "220 mail.example.net ESMTP\r\n")
		_, _ = io.Copy(io.Discard, c)
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c := hpCheck("http", port)
	p := &httpProbe{t: Target{Check: c, Addr: net.IPv4(127, 0, 0, 1)}, ctx: ctx, stage: PhaseRequest,
		timings: map[Phase]time.Duration{}, plain: map[string]*url.URL{}}
	raw, err := net.Dial("tcp4", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		t.Fatal(err)
	}
	conn := p.wrap(raw)
	defer conn.Close()
	got := make(chan string, 1)
	go func() {
		buf := make([]byte, 64)
		n, _ := conn.Read(buf)
		got <- string(buf[:n])
	}()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		p.mu.Lock()
		early := p.early
		p.mu.Unlock()
		if early != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the greeting sent before the request was not recorded")
		}
	}
	select {
	case s := <-got:
		t.Fatalf("read returned %q before the request was written", s)
	case <-time.After(50 * time.Millisecond):
	}
	if _, err := io.WriteString(conn, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	select {
	case s := <-got:
		if !strings.HasPrefix(s, "220 mail") {
			t.Errorf("read %q", s)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the held greeting was not released by the request")
	}
	r := newResult(p.t)
	res := p.failed(&r, &url.Error{Op: "Get", URL: "http://x/", Err: errors.New(`malformed HTTP response "220 mail.example.net ESMTP"`)})
	lbExpect(t, res, false, ReasonProtocol, PhaseResponse,
		`the server sent data before the request: "220 mail.example.net ESMTP" (malformed HTTP response`)
	if strings.Contains(res.Detail, "Get ") {
		t.Errorf("detail repeats the request: %s", res.Detail)
	}
}

// hpProxy is an in-test HTTP proxy on 127.0.0.1. CONNECT requests are
// answered per mode and, when allowed, tunnelled to 127.0.0.1 at the
// requested port whatever the host name (so that names need no DNS);
// absolute-form requests are answered by the proxy itself.
type hpProxy struct {
	port int
	mode string // "allow", "deny" (403), "auth" (407 unless user:secret), "garbage", "silent", "bighead", "early"

	mu    sync.Mutex
	lines []string // request lines received
	auths []string // Proxy-Authorization values received
}

func (p *hpProxy) seen() ([]string, []string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.lines...), append([]string(nil), p.auths...)
}

func hpStartProxy(t *testing.T, mode string) *hpProxy {
	t.Helper()
	p := &hpProxy{mode: mode}
	p.port = lbRawServer(t, func(c net.Conn) {
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		br := bufio.NewReader(c)
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		p.mu.Lock()
		p.lines = append(p.lines, req.Method+" "+req.RequestURI+" Host:"+req.Host)
		p.auths = append(p.auths, req.Header.Get("Proxy-Authorization"))
		p.mu.Unlock()
		authOK := req.Header.Get("Proxy-Authorization") == "Basic "+base64.StdEncoding.EncodeToString([]byte("user:secret"))
		switch {
		case p.mode == "deny":
			io.WriteString(c, "HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
			return
		case p.mode == "auth" && !authOK:
			io.WriteString(c, "HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm=\"x\"\r\nContent-Length: 0\r\n\r\n")
			return
		case p.mode == "garbage":
			io.WriteString(c, "\x00\x01garbage\r\n\r\n")
			return
		case p.mode == "silent":
			_, _ = io.Copy(io.Discard, c)
			return
		case p.mode == "bighead":
			io.WriteString(c, "HTTP/1.1 200 OK\r\nX-Big: "+strings.Repeat("a", 64<<10)+"\r\n\r\n")
			return
		case req.Method != http.MethodConnect:
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nproxy")
			return
		}
		_, port, _ := net.SplitHostPort(req.Host)
		up, err := net.Dial("tcp4", "127.0.0.1:"+port)
		if err != nil {
			io.WriteString(c, "HTTP/1.1 502 Bad Gateway\r\n\r\n")
			return
		}
		defer up.Close()
		if p.mode == "early" {
			// The answer and the server's first bytes in one segment.
			io.WriteString(c, "HTTP/1.1 200 Connection established\r\n\r\nEARLY")
		} else {
			io.WriteString(c, "HTTP/1.1 200 Connection established\r\n\r\n")
		}
		go func() { _, _ = io.Copy(up, br); up.Close() }()
		_, _ = io.Copy(c, up)
	})
	return p
}

func (p *hpProxy) url() string { return "http://127.0.0.1:" + strconv.Itoa(p.port) }

func TestProxyHTTPS(t *testing.T) {
	pki := lbPKI(t)
	port, sni := hpServer(t, pki.svc, hpStatus(200))
	px := hpStartProxy(t, "allow")
	// svc.test resolves nowhere: only the proxy may "resolve" it.
	c := hpCheck("https", port)
	c.Host, c.Proxy, own(&c.TLS).CAFile = "svc.test", px.url(), lbWriteCAFile(t, pki.root)
	r := lbRun1(t, c)
	lbExpect(t, r, true, ReasonOK, PhaseResponse, "HTTP 200 OK", "certificate for svc.test")
	if want := "via proxy 127.0.0.1:" + strconv.Itoa(px.port); r.Address != want || r.IPFamily != FamilyProxy {
		t.Errorf("address %q family %q, want %q %q", r.Address, r.IPFamily, want, FamilyProxy)
	}
	if _, ok := r.TimingOf(PhaseDNS); ok {
		t.Errorf("a dns timing through a proxy: %+v", r.Timings)
	}
	lines, _ := px.seen()
	want := fmt.Sprintf("CONNECT svc.test:%d Host:svc.test:%d", port, port)
	if len(lines) != 1 || lines[0] != want {
		t.Errorf("proxy saw %q, want %q", lines, want)
	}
	if got := sni(); len(got) != 1 || got[0] != "svc.test" {
		t.Errorf("SNI %q", got)
	}
}

func TestProxyOtherKinds(t *testing.T) {
	pki := lbPKI(t)
	srv := lbStartTLS(t, pki.good)
	px := hpStartProxy(t, "allow")

	c := lbTLSCheck(srv.port, lbWriteCAFile(t, pki.root))
	c.Host, c.Proxy = "localhost", px.url()
	r := lbRun1(t, c)
	lbExpect(t, r, true, ReasonOK, PhaseTLS, "certificate for localhost")
	if r.IPFamily != FamilyProxy {
		t.Errorf("family %q", r.IPFamily)
	}

	c = &Check{Name: "t", Kind: "tcp", Host: "web.invalid", Port: srv.port, Timeout: 3 * time.Second, Proxy: px.url()}
	lbExpect(t, lbRun1(t, c), true, ReasonOK, PhaseConnect, "web.invalid:"+strconv.Itoa(srv.port))
}

func TestProxyEarlyBytes(t *testing.T) {
	banner := lbRawServer(t, func(c net.Conn) {
		defer c.Close()
		_, _ = io.Copy(io.Discard, c)
	})
	px := hpStartProxy(t, "early")
	c := &Check{Kind: "tcp", Host: "127.0.0.1", Port: banner, Proxy: px.url()}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	conn, err := dialTCP(ctx, Target{Check: c, Family: FamilyProxy})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetReadDeadline(time.Now().Add(time.Second))
	buf := make([]byte, 5)
	if _, err := io.ReadFull(conn, buf); err != nil || string(buf) != "EARLY" {
		t.Errorf("read %q, %v: bytes after the proxy's answer were lost", buf, err)
	}
}

func TestProxyRefusals(t *testing.T) {
	pki := lbPKI(t)
	port, _ := hpServer(t, pki.good, hpStatus(200))
	closed := lbFreePort(t, "tcp4", "127.0.0.1:0")
	cases := []struct {
		mode   string
		proxy  string // overrides the proxy URL
		reason Reason
		detail []string
	}{
		{"deny", "", ReasonProxyDenied, []string{"refused CONNECT to localhost:" + strconv.Itoa(port) + ": 403 Forbidden",
			"(Squid and many proxies only allow CONNECT to port 443 by default)"}},
		{"auth", "", ReasonProxyDenied, []string{"407 Proxy Authentication Required", "(proxy authentication required)"}},
		{"auth", "http://user:wrong@127.0.0.1:%d", ReasonProxyDenied, []string{"407"}},
		{"auth", "http://user:secret@127.0.0.1:%d", ReasonOK, []string{"HTTP 200 OK"}},
		{"garbage", "", ReasonProtocol, []string{"is not HTTP"}},
		{"bighead", "", ReasonProtocol, []string{"more than 16384 bytes of headers"}},
		{"silent", "", ReasonTimeout, []string{"accepted the connection but did not answer CONNECT localhost:" + strconv.Itoa(port)}},
		{"closed", "", ReasonRefused, []string{fmt.Sprintf("proxy 127.0.0.1:%d: connection refused (TCP reset from the proxy)", closed)}},
	}
	for _, tc := range cases {
		t.Run(tc.mode+tc.proxy, func(t *testing.T) {
			var px *hpProxy
			proxyURL := "http://127.0.0.1:" + strconv.Itoa(closed)
			if tc.mode != "closed" {
				px = hpStartProxy(t, tc.mode)
				proxyURL = px.url()
				if tc.proxy != "" {
					proxyURL = fmt.Sprintf(tc.proxy, px.port)
				}
			}
			c := hpCheck("https", port)
			c.Host, c.Proxy, own(&c.TLS).CAFile, c.Timeout = "localhost", proxyURL, lbWriteCAFile(t, pki.root), time.Second
			r := lbRun1(t, c)
			phase := PhaseConnect
			if tc.reason == ReasonOK {
				phase = PhaseResponse
			}
			lbExpect(t, r, tc.reason == ReasonOK, tc.reason, phase, tc.detail...)
			if strings.Contains(r.Detail, "secret") || strings.Contains(r.Detail, "wrong") {
				t.Errorf("detail shows the proxy password: %s", r.Detail)
			}
			if px != nil && strings.Contains(proxyURL, "@") {
				if _, auths := px.seen(); len(auths) == 0 || !strings.HasPrefix(auths[0], "Basic ") {
					t.Errorf("no Proxy-Authorization sent: %q", auths)
				}
			}
		})
	}
}

// Plain http goes to the proxy in absolute form, not through CONNECT.
func TestProxyPlainHTTP(t *testing.T) {
	px := hpStartProxy(t, "allow")
	c := hpCheck("http", 8080)
	c.Host, c.Proxy = "web.invalid", px.url()
	r := lbRun1(t, c)
	lbExpect(t, r, true, ReasonOK, PhaseResponse, "HTTP 200 OK", "via proxy 127.0.0.1:"+strconv.Itoa(px.port))
	if lines, _ := px.seen(); len(lines) != 1 || lines[0] != "GET http://web.invalid:8080/ Host:web.invalid:8080" {
		t.Errorf("proxy saw %q", lines)
	}

	auth := hpStartProxy(t, "auth")
	c.Proxy = auth.url()
	lbExpect(t, lbRun1(t, c), false, ReasonProxyDenied, PhaseResponse, "refused GET http://web.invalid:8080/: 407", "(proxy authentication required)")
	c.Proxy = "http://user:secret@127.0.0.1:" + strconv.Itoa(auth.port)
	lbExpect(t, lbRun1(t, c), true, ReasonOK, PhaseResponse, "HTTP 200 OK")

	c.Proxy = "http://127.0.0.1:" + strconv.Itoa(lbFreePort(t, "tcp4", "127.0.0.1:0"))
	lbExpect(t, lbRun1(t, c), false, ReasonRefused, PhaseConnect, "proxy 127.0.0.1:", "connection refused")
}

func TestProxyEnvironment(t *testing.T) {
	pki := lbPKI(t)
	port, _ := hpServer(t, pki.svc, hpStatus(200))
	px := hpStartProxy(t, "allow")
	dns := lbStartDNS(t)
	t.Setenv("HTTPS_PROXY", px.url())
	t.Setenv("HTTP_PROXY", "")
	t.Setenv("NO_PROXY", "")
	for _, v := range []string{"https_proxy", "http_proxy", "no_proxy"} {
		t.Setenv(v, "")
		os.Unsetenv(v)
	}
	c := hpCheck("https", port)
	c.Host, c.Proxy, own(&c.TLS).CAFile, c.DNSServer = "svc.test", "", lbWriteCAFile(t, pki.root), dns.addr
	lbExpect(t, lbRun1(t, c), true, ReasonOK, PhaseResponse, "HTTP 200 OK")
	if lines, _ := px.seen(); len(lines) != 1 {
		t.Errorf("proxy saw %q", lines)
	}

	// NO_PROXY sends it direct: the name is then resolved here (the test
	// DNS server does not know it).
	t.Setenv("NO_PROXY", ".test")
	lbExpect(t, lbRun1(t, c), false, ReasonDNS, PhaseDNS, `"svc.test" does not exist`)
	t.Setenv("NO_PROXY", "")

	// "direct" ignores the environment.
	c.Proxy = ProxyDirect
	lbExpect(t, lbRun1(t, c), false, ReasonDNS, PhaseDNS)
	c.Proxy = ""

	// A raw tls check is not a web client: it does not read HTTPS_PROXY.
	tc := *c
	tc.Kind = "tls"
	if pu, err := proxyFor(&tc); pu != nil || err != nil {
		t.Errorf("tls kind uses the environment's proxy %v, %v", pu, err)
	}

	// An invalid variable is reported without its password.
	t.Setenv("HTTPS_PROXY", "http://u:hunter2@127.0.0.1:99999")
	r := lbRun1(t, c)
	lbExpect(t, r, false, ReasonInternalError, PhaseConnect, "invalid port")
	if strings.Contains(r.Detail, "hunter2") {
		t.Errorf("detail shows the password: %s", r.Detail)
	}
}

func TestProxyScope(t *testing.T) {
	px := "http://127.0.0.1:3128"
	for _, tc := range []struct {
		c    Check
		want bool
	}{
		{Check{Kind: "tcp", Proxy: px}, true},
		{Check{Kind: "tls", Proxy: px}, true},
		{Check{Kind: "https", Proxy: px}, true},
		{Check{Kind: "tcp", Proxy: ProxyDirect}, false},
		{Check{Kind: "udp", Proxy: px}, false},
		{Check{Kind: "ntp", Proxy: px}, false},
		{Check{Kind: "sip", Proxy: px}, false},
		{Check{Kind: "sip", Transport: "tcp", Proxy: px}, true},
		{Check{Kind: "tcp"}, false},
	} {
		if _, ok := Kinds()[tc.c.Kind]; !ok {
			continue // a kind of another change, not registered yet
		}
		c := tc.c
		c.Host, c.Port = "192.0.2.1", 443
		pu, err := proxyFor(&c)
		if err != nil || (pu != nil) != tc.want {
			t.Errorf("%s/%s: proxy %v, %v; want proxied=%v", c.Kind, c.Transport, pu, err, tc.want)
		}
		targets, failed := resolve(context.Background(), &c)
		if failed != nil || len(targets) != 1 || (targets[0].Addr == nil) != tc.want {
			t.Errorf("%s/%s: resolve gave %+v %+v", c.Kind, c.Transport, targets, failed)
		}
	}
	for _, bad := range []string{"socks5://127.0.0.1:1080", "http://u:pw@[::1", "http://127.0.0.1:0"} {
		_, err := proxyFor(&Check{Kind: "tcp", Proxy: bad})
		if err == nil || strings.Contains(err.Error(), "pw@") {
			t.Errorf("proxy %q: %v", bad, err)
		}
	}
}

// TestProxyTinyproxy runs the probe against a real proxy: tinyproxy, with
// CONNECT allowed to one port only.
func TestProxyTinyproxy(t *testing.T) {
	bin, err := exec.LookPath("tinyproxy")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("tinyproxy is not installed; CI must install it (apt-get install tinyproxy)")
		}
		t.Skip("tinyproxy is not installed")
	}
	pki := lbPKI(t)
	allowed, _ := hpServer(t, pki.good, hpStatus(200))
	other, _ := hpServer(t, pki.good, hpStatus(200))
	proxyPort := lbFreePort(t, "tcp4", "127.0.0.1:0")
	dir := t.TempDir()
	conf := filepath.Join(dir, "tinyproxy.conf")
	if err := os.WriteFile(conf, fmt.Appendf(nil,
		"Port %d\nListen 127.0.0.1\nTimeout 10\nAllow 127.0.0.1\nConnectPort %d\nMaxClients 20\nLogLevel Info\n",
		proxyPort, allowed), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-d", "-c", conf)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("tinyproxy log:\n%s", out.String())
		}
	})
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := net.Dial("tcp4", "127.0.0.1:"+strconv.Itoa(proxyPort))
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("tinyproxy does not listen: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	proxyURL := "http://127.0.0.1:" + strconv.Itoa(proxyPort)
	ca := lbWriteCAFile(t, pki.root)

	c := hpCheck("https", allowed)
	c.Proxy, own(&c.TLS).CAFile = proxyURL, ca
	r := lbRun1(t, c)
	lbExpect(t, r, true, ReasonOK, PhaseResponse, "HTTP 200 OK", `issued by "Test Root CA"`)
	if r.Address != "via proxy 127.0.0.1:"+strconv.Itoa(proxyPort) {
		t.Errorf("address %q", r.Address)
	}

	c = hpCheck("https", other)
	c.Proxy, own(&c.TLS).CAFile = proxyURL, ca
	lbExpect(t, lbRun1(t, c), false, ReasonProxyDenied, PhaseConnect,
		fmt.Sprintf("proxy 127.0.0.1:%d refused CONNECT to 127.0.0.1:%d: 403", proxyPort, other),
		"(Squid and many proxies only allow CONNECT to port 443 by default)")

	c = hpCheck("tls", other)
	c.Proxy, own(&c.TLS).CAFile = proxyURL, ca
	lbExpect(t, lbRun1(t, c), false, ReasonProxyDenied, PhaseConnect, "403")
}

// ICMP errors on the way to a proxy are judged against the proxy's address.
func TestClassifyProxyICMP(t *testing.T) {
	proxyIP := net.ParseIP("10.0.0.8")
	wrap := func(offender string) error {
		return &dialError{Op: "proxy", Err: &proxyError{Proxy: "10.0.0.8:3128", ProxyIP: proxyIP, Target: "example.com:443", Method: http.MethodConnect,
			Err: &dialError{Op: "connect", Err: syscall.ECONNREFUSED,
				ICMP: &icmpError{Origin: originICMP, Type: 3, Code: 3, Offender: net.ParseIP(offender)}}}}
	}
	none := func() []net.IP { return nil }
	r, d := classifyWith(wrap("10.0.0.8"), PhaseConnect, nil, none)
	if r != ReasonRefused || d != "proxy 10.0.0.8:3128: ICMP destination unreachable (port unreachable) from the proxy 10.0.0.8: nothing listens on that port" {
		t.Errorf("from the proxy: %s %q", r, d)
	}
	r, d = classifyWith(wrap("10.0.0.1"), PhaseConnect, nil, none)
	if r != ReasonRejected || !strings.HasPrefix(d, "proxy 10.0.0.8:3128: ") || !strings.Contains(d, "from 10.0.0.1, a device on the path") {
		t.Errorf("from a router: %s %q", r, d)
	}
}

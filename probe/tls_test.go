package probe

import (
	"crypto/tls"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// lbTLSServer serves leaf with TLS on 127.0.0.1 and records the SNI names
// clients sent.
type lbTLSServer struct {
	port int
	mu   sync.Mutex
	sni  []string
}

func (s *lbTLSServer) names() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.sni...)
}

func lbStartTLS(t testing.TB, leaf *lbLeaf) *lbTLSServer {
	t.Helper()
	s := &lbTLSServer{}
	cfg := &tls.Config{
		Certificates: []tls.Certificate{leaf.tls},
		GetConfigForClient: func(hi *tls.ClientHelloInfo) (*tls.Config, error) {
			s.mu.Lock()
			s.sni = append(s.sni, hi.ServerName)
			s.mu.Unlock()
			return nil, nil
		},
	}
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	lbServe(t, ln, func(c net.Conn) {
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		tc := tls.Server(c, cfg)
		if tc.Handshake() != nil {
			return
		}
		_, _ = io.Copy(io.Discard, tc)
	})
	s.port = ln.Addr().(*net.TCPAddr).Port
	return s
}

func lbTLSCheck(port int, caFile string) *Check {
	return &Check{Name: "t", Kind: "tls", Host: "127.0.0.1", Port: port, IPFamily: FamilyIPv4,
		Timeout: 3 * time.Second, TLS: &TLSOptions{CAFile: caFile}}
}

// lbRawServer starts a TCP listener on 127.0.0.1 whose connections handle
// gets; it returns the port.
func lbRawServer(t testing.TB, handle func(net.Conn)) int {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	lbServe(t, ln, handle)
	return ln.Addr().(*net.TCPAddr).Port
}

func TestTLSGood(t *testing.T) {
	p := lbPKI(t)
	srv := lbStartTLS(t, p.good)
	r := lbRun1(t, lbTLSCheck(srv.port, lbWriteCAFile(t, p.root)))
	lbExpect(t, r, true, ReasonOK, PhaseTLS, "TLS 1.3", `issued by "Test Root CA"`, "certificate for localhost",
		"valid until "+p.good.cert.NotAfter.UTC().Format("2006-01-02"))
	if strings.Contains(r.Detail, "classic") {
		t.Errorf("detail mentions classic curves for a normal server: %s", r.Detail)
	}
	f := r.Facts.TLSFacts
	if f == nil {
		t.Fatal("no TLS facts")
	}
	if f.Version != "TLS 1.3" {
		t.Errorf("version %q, want TLS 1.3", f.Version)
	}
	if !strings.HasPrefix(f.Cipher, "TLS_AES_") && !strings.HasPrefix(f.Cipher, "TLS_CHACHA20_") {
		t.Errorf("cipher %q is not a TLS 1.3 suite", f.Cipher)
	}
	if f.Issuer != "Test Root CA" || f.Subject != "localhost" {
		t.Errorf("issuer %q subject %q", f.Issuer, f.Subject)
	}
	if !f.NotAfter.Equal(p.good.cert.NotAfter) {
		t.Errorf("not_after %v, want %v", f.NotAfter, p.good.cert.NotAfter)
	}
	if f.ServerName != "127.0.0.1" {
		t.Errorf("server name %q, want 127.0.0.1", f.ServerName)
	}
	if f.ClassicCurvesOnly {
		t.Error("classic_curves_only set for a normal server")
	}
	if f.ConnectSeconds <= 0 || f.HandshakeSeconds <= 0 {
		t.Errorf("connect %v s, handshake %v s: both must be measured", f.ConnectSeconds, f.HandshakeSeconds)
	}
	if _, ok := r.TimingOf(PhaseConnect); !ok {
		t.Errorf("no connect timing: %+v", r.Timings)
	}
	if d, ok := r.TimingOf(PhaseTLS); !ok || d <= 0 {
		t.Errorf("tls timing %v, %v", d, ok)
	}
}

func TestTLSIntermediateChain(t *testing.T) {
	p := lbPKI(t)
	srv := lbStartTLS(t, p.goodIntermediate)
	c := lbTLSCheck(srv.port, lbWriteCAFile(t, p.root))
	own(&c.TLS).ExpectIssuer = []string{"Test Root CA"} // the pin may name any CA of the chain
	r := lbRun1(t, c)
	lbExpect(t, r, true, ReasonOK, PhaseTLS, `issued by "Test Intermediate CA"`)
}

func TestTLSCertificateProblems(t *testing.T) {
	p := lbPKI(t)
	for _, tc := range []struct {
		name   string
		leaf   *lbLeaf
		reason Reason
		parts  []string
	}{
		{"expired", p.expired, ReasonTLSExpired, []string{"expired or not yet valid", "Test Root CA"}},
		{"not yet valid", p.notYetValid, ReasonTLSExpired, []string{"expired or not yet valid"}},
		{"wrong host", p.wrongHost, ReasonTLSHostname, []string{"127.0.0.1", "www.example.invalid"}},
		{"unknown CA", p.unknownCA, ReasonTLSUntrusted, []string{"unknown authority", "Unknown Test CA"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := lbStartTLS(t, tc.leaf)
			r := lbRun1(t, lbTLSCheck(srv.port, lbWriteCAFile(t, p.root)))
			lbExpect(t, r, false, tc.reason, PhaseTLS, tc.parts...)
			f := r.Facts.TLSFacts
			if f == nil {
				t.Fatal("no TLS facts for a presented certificate")
			}
			if !f.NotAfter.Equal(tc.leaf.cert.NotAfter) || f.Issuer != tc.leaf.cert.Issuer.CommonName {
				t.Errorf("facts %+v do not describe the presented leaf", f)
			}
		})
	}
}

func TestTLSServerNameOverride(t *testing.T) {
	p := lbPKI(t)
	srv := lbStartTLS(t, p.svc)
	caFile := lbWriteCAFile(t, p.root)

	c := lbTLSCheck(srv.port, caFile)
	r := lbRun1(t, c)
	lbExpect(t, r, false, ReasonTLSHostname, PhaseTLS, "svc.test")

	c = lbTLSCheck(srv.port, caFile)
	own(&c.TLS).ServerName = "svc.test"
	r = lbRun1(t, c)
	lbExpect(t, r, true, ReasonOK, PhaseTLS, "certificate for svc.test")
	if r.Facts.TLSFacts == nil || r.Facts.TLSFacts.ServerName != "svc.test" {
		t.Errorf("facts %+v, want server name svc.test", r.Facts.TLSFacts)
	}
	if r.Address != "127.0.0.1" {
		t.Errorf("address %q: the override must not change the address dialled", r.Address)
	}
	names := srv.names()
	if len(names) != 2 || names[0] != "" || names[1] != "svc.test" {
		t.Errorf("server saw SNI %q, want [\"\" \"svc.test\"] (no SNI for an IP, then the override)", names)
	}
}

func TestTLSIssuerPin(t *testing.T) {
	p := lbPKI(t)
	good := lbStartTLS(t, p.good)
	inspected := lbStartTLS(t, p.inspected)
	unknown := lbStartTLS(t, p.unknownCA)
	rootOnly := lbWriteCAFile(t, p.root)
	for _, tc := range []struct {
		name   string
		port   int
		caFile string
		expect []string
		up     bool
		reason Reason
		parts  []string
	}{
		{"matching CN", good.port, rootOnly, []string{"Test Root CA"}, true, ReasonOK, nil},
		{"matching O", good.port, rootOnly, []string{"Connprobe Test"}, true, ReasonOK, nil},
		{"verified chain, other issuer", good.port, rootOnly, []string{"Vendor CA"}, false, ReasonIntercepted,
			[]string{"a chain that verifies", `"Test Root CA"`, "Vendor CA"}},
		{"untrusted inspection CA", inspected.port, rootOnly, []string{"Test Root CA"}, false, ReasonIntercepted,
			[]string{"an untrusted chain", `"Corp Inspection CA"`, "Test Root CA"}},
		{"trusted inspection CA", inspected.port, lbWriteCAFile(t, p.root, p.inspection), []string{"Vendor CA"}, false, ReasonIntercepted,
			[]string{"a chain that verifies", `"Corp Inspection CA"`}},
		{"untrusted but pinned issuer", unknown.port, rootOnly, []string{"Unknown Test CA"}, false, ReasonTLSUntrusted,
			[]string{"unknown authority"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := lbTLSCheck(tc.port, tc.caFile)
			own(&c.TLS).ExpectIssuer = tc.expect
			r := lbRun1(t, c)
			lbExpect(t, r, tc.up, tc.reason, PhaseTLS, tc.parts...)
			if r.Facts.TLSFacts == nil || r.Facts.TLSFacts.Issuer == "" {
				t.Errorf("facts %+v lack the presented issuer", r.Facts.TLSFacts)
			}
		})
	}
}

func TestTLSSilentServer(t *testing.T) {
	port := lbRawServer(t, func(c net.Conn) {
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		_, _ = io.Copy(io.Discard, c) // never answers
	})
	c := lbTLSCheck(port, "")
	c.Timeout = 800 * time.Millisecond
	start := time.Now()
	r := lbRun1(t, c)
	lbExpect(t, r, false, ReasonTimeout, PhaseTLS, "phase tls")
	if el := time.Since(start); el > 5*time.Second {
		t.Errorf("an 800ms check took %v", el)
	}
	if r.Facts.TLSFacts != nil && r.Facts.TLSFacts.ClassicCurvesOnly {
		t.Error("classic_curves_only set for a server that never answered")
	}
}

func TestTLSPlainHTTPServer(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "plain\n")
	}))
	t.Cleanup(srv.Close)
	port := srv.Listener.Addr().(*net.TCPAddr).Port
	r := lbRun1(t, lbTLSCheck(port, ""))
	lbExpect(t, r, false, ReasonProtocol, PhaseTLS, "does not speak TLS", `"HTTP/`)
}

func TestTLSServerCloses(t *testing.T) {
	port := lbRawServer(t, func(c net.Conn) { c.Close() })
	r := lbRun1(t, lbTLSCheck(port, ""))
	lbExpect(t, r, false, ReasonTLSHandshake, PhaseTLS, "TLS handshake")
}

func TestTLSServerResets(t *testing.T) {
	port := lbRawServer(t, func(c net.Conn) {
		// Wait for the ClientHello so the reset answers it, then send RST.
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		var b [1]byte
		_, _ = c.Read(b[:])
		_ = c.(*net.TCPConn).SetLinger(0)
		c.Close()
	})
	r := lbRun1(t, lbTLSCheck(port, ""))
	lbExpect(t, r, false, ReasonTLSHandshake, PhaseTLS, "reset during the TLS handshake")
}

func TestTLSClosedPort(t *testing.T) {
	port := lbFreePort(t, "tcp4", "127.0.0.1:0")
	r := lbRun1(t, lbTLSCheck(port, ""))
	lbExpect(t, r, false, ReasonRefused, PhaseConnect, "refused")
	if r.Facts.TLSFacts != nil {
		t.Errorf("facts %+v for a refused connection", r.Facts.TLSFacts)
	}
}

func TestTLSBadCAFile(t *testing.T) {
	p := lbPKI(t)
	srv := lbStartTLS(t, p.good)
	r := lbRun1(t, lbTLSCheck(srv.port, t.TempDir()+"/missing.pem"))
	lbExpect(t, r, false, ReasonInternalError, PhaseTLS, "reading tls ca_file", "missing.pem", "no such file")

	notPEM := t.TempDir() + "/not.pem"
	if err := os.WriteFile(notPEM, []byte("not a certificate\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r = lbRun1(t, lbTLSCheck(srv.port, notPEM))
	lbExpect(t, r, false, ReasonInternalError, PhaseTLS, "holds no PEM certificate")
}

// lbHelloProxy forwards TCP to backend, except connections whose first TLS
// record (the ClientHello) is larger than limit: those it reads and never
// answers, like a middlebox that drops the second packet of a large hello.
type lbHelloProxy struct {
	port               int
	limit              int
	stalled, forwarded atomic.Int32
}

func lbStartHelloProxy(t testing.TB, backend, limit int) *lbHelloProxy {
	t.Helper()
	px := &lbHelloProxy{limit: limit}
	px.port = lbRawServer(t, func(c net.Conn) {
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		var hdr [5]byte
		if _, err := io.ReadFull(c, hdr[:]); err != nil {
			return
		}
		if n := int(binary.BigEndian.Uint16(hdr[3:5])); n > px.limit {
			px.stalled.Add(1)
			_, _ = io.Copy(io.Discard, c)
			return
		}
		px.forwarded.Add(1)
		up, err := net.DialTimeout("tcp4", net.JoinHostPort("127.0.0.1", strconv.Itoa(backend)), 2*time.Second)
		if err != nil {
			return
		}
		defer up.Close()
		_ = up.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := up.Write(hdr[:]); err != nil {
			return
		}
		done := make(chan struct{})
		go func() {
			_, _ = io.Copy(c, up)
			_ = c.(*net.TCPConn).CloseWrite()
			close(done)
		}()
		_, _ = io.Copy(up, c)
		_ = up.(*net.TCPConn).CloseWrite()
		<-done
	})
	return px
}

func TestTLSPostQuantumFallback(t *testing.T) {
	p := lbPKI(t)
	srv := lbStartTLS(t, p.good)
	px := lbStartHelloProxy(t, srv.port, 1200)
	c := lbTLSCheck(px.port, lbWriteCAFile(t, p.root))
	c.Timeout = 2 * time.Second
	r := lbRun1(t, c)
	lbExpect(t, r, true, ReasonOK, PhaseTLS, "classic curves")
	if r.Facts.TLSFacts == nil || !r.Facts.TLSFacts.ClassicCurvesOnly {
		t.Errorf("facts %+v, want classic_curves_only", r.Facts.TLSFacts)
	}
	if s, f := px.stalled.Load(), px.forwarded.Load(); s != 1 || f != 1 {
		t.Errorf("proxy stalled %d and forwarded %d hellos, want 1 and 1", s, f)
	}

	// The same proxy with a limit no hello exceeds: one handshake, no fallback.
	px2 := lbStartHelloProxy(t, srv.port, 1<<16)
	r = lbRun1(t, lbTLSCheck(px2.port, c.TLS.CAFile))
	lbExpect(t, r, true, ReasonOK, PhaseTLS)
	if r.Facts.TLSFacts == nil || r.Facts.TLSFacts.ClassicCurvesOnly || strings.Contains(r.Detail, "classic") {
		t.Errorf("fallback reported without a stall: %+v, %s", r.Facts.TLSFacts, r.Detail)
	}
	if s, f := px2.stalled.Load(), px2.forwarded.Load(); s != 0 || f != 1 {
		t.Errorf("proxy stalled %d and forwarded %d hellos, want 0 and 1", s, f)
	}
}

// TestTLSDetailAsSprintf holds the detail line written in one buffer to the
// fmt.Sprintf it replaced, with names that need quoting.
func TestTLSDetailAsSprintf(t *testing.T) {
	for _, f := range []TLSFacts{
		{Version: "TLS 1.3", Cipher: "TLS_AES_128_GCM_SHA256", Subject: "bench.connprobe.test", Issuer: "Bench Root CA",
			NotAfter: time.Date(2027, 1, 2, 23, 30, 0, 0, time.FixedZone("x", -3*3600))},
		{Version: "TLS 1.2", Cipher: "0x1301", Subject: "a,b", Issuer: "CN=\"odd\"\\,O=Ünïcode\x00\t",
			NotAfter: time.Date(1999, 12, 31, 0, 0, 0, 0, time.UTC)},
		{},
	} {
		want := fmt.Sprintf("%s %s, certificate for %s issued by %q, valid until %s",
			f.Version, f.Cipher, f.Subject, f.Issuer, f.NotAfter.UTC().Format("2006-01-02"))
		if got := tlsDetail(&f); got != want {
			t.Errorf("tlsDetail\n got %q\nwant %q", got, want)
		}
	}
}

// TestCipherSuiteName holds cipherSuiteName to tls.CipherSuiteName for
// every suite crypto/tls knows, and an unknown one.
func TestCipherSuiteName(t *testing.T) {
	ids := []uint16{0x1301, 0x1302, 0x1303, 0xfefe}
	for _, cs := range append(tls.CipherSuites(), tls.InsecureCipherSuites()...) {
		ids = append(ids, cs.ID)
	}
	for _, id := range ids {
		if got, want := cipherSuiteName(id), tls.CipherSuiteName(id); got != want {
			t.Errorf("cipherSuiteName(%#04x) = %q, want %q", id, got, want)
		}
	}
}

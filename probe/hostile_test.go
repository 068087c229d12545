package probe

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"fmt"
	"io"
	"math/big"
	"net"
	"strings"
	"testing"
	"time"
)

// The hostile-server suite: loopback servers that misbehave as an attacker
// or a broken device would, against the kinds that meet them. Every case
// must end in a classified result within the check's timeout + 10 % (plus a
// little slack for a loaded machine), allocating a bounded amount of memory
// whatever the server sends.

const (
	hsTimeout = time.Second
	// hsSlack is what a loaded 2-core machine may add to timeout + 10 %.
	hsSlack = 400 * time.Millisecond
	// hsMaxAlloc bounds the bytes allocated during one case (the whole
	// process, servers included): far below what the servers send.
	hsMaxAlloc = 48 << 20
)

// hsChunk is what streaming servers write, over and over.
var hsChunk = []byte(strings.Repeat("A", 64<<10))

// hsHold reads and discards until the client leaves (or 10 s pass).
func hsHold(c net.Conn) {
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	_, _ = io.Copy(io.Discard, c)
}

// hsSilent accepts and says nothing.
func hsSilent(c net.Conn) { defer c.Close(); hsHold(c) }

// hsDrip sends s one byte a second.
func hsDrip(s string) func(net.Conn) {
	return func(c net.Conn) {
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		gone := make(chan struct{})
		go func() { _, _ = io.Copy(io.Discard, c); close(gone) }()
		for i := 0; i < len(s); i++ {
			if _, err := c.Write([]byte{s[i]}); err != nil {
				return
			}
			select {
			case <-gone:
				return
			case <-time.After(time.Second):
			}
		}
	}
}

// hsEndless sends prefix, then line forever (bounded at 10 s).
func hsEndless(prefix, line string, readFirst bool) func(net.Conn) {
	return func(c net.Conn) {
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		if readFirst {
			_, _ = bufio.NewReader(c).ReadString('\n')
		}
		go func() { _, _ = io.Copy(io.Discard, c) }()
		b := []byte(prefix + strings.Repeat(line, 64<<10/len(line)))
		for end := time.Now().Add(10 * time.Second); time.Now().Before(end); b = []byte(strings.Repeat(line, 64<<10/len(line))) {
			if _, err := c.Write(b); err != nil {
				return
			}
		}
	}
}

// hsHuge sends prefix and then size bytes without a line end.
func hsHuge(prefix string, size int, readFirst bool) func(net.Conn) {
	return func(c net.Conn) {
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		if readFirst {
			_, _ = bufio.NewReader(c).ReadString('\n')
		}
		go func() { _, _ = io.Copy(io.Discard, c) }()
		if _, err := io.WriteString(c, prefix); err != nil {
			return
		}
		for sent := 0; sent < size; sent += len(hsChunk) {
			if _, err := c.Write(hsChunk); err != nil {
				return
			}
		}
	}
}

// hsStalledTLS reads the ClientHello and never answers it: to a TLS
// client, a silent server.
var hsStalledTLS = hsSilent

// hsBigChainServer serves TLS with the good leaf followed by three
// certificates of 100 KB each (a ~300 KB Certificate message).
func hsBigChainServer(t *testing.T) int {
	t.Helper()
	leaf := lbPKI(t).good.tls
	chain := append([][]byte(nil), leaf.Certificate...)
	for i := range 3 {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(int64(i + 1)), Subject: pkix.Name{CommonName: fmt.Sprintf("bloat %d", i)},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
			ExtraExtensions: []pkix.Extension{{Id: asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 99999, 1}, Value: make([]byte, 100<<10)}},
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
		if err != nil {
			t.Fatal(err)
		}
		chain = append(chain, der)
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{{Certificate: chain, PrivateKey: leaf.PrivateKey}}}
	return lbRawServer(t, func(c net.Conn) {
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		tc := tls.Server(c, cfg)
		_ = tc.Handshake()
	})
}

// hsOverTLS runs handle on the TLS side of each connection (the good leaf).
func hsOverTLS(t *testing.T, handle func(net.Conn)) int {
	cfg := &tls.Config{Certificates: []tls.Certificate{lbPKI(t).good.tls}}
	return lbRawServer(t, func(c net.Conn) {
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		tc := tls.Server(c, cfg)
		if tc.Handshake() != nil {
			return
		}
		handle(tc)
	})
}

// hsGigabyteBody answers with a 1 GB body, streamed.
func hsGigabyteBody(c net.Conn) {
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	_, _ = bufio.NewReader(c).ReadString('\n')
	if _, err := io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 1073741824\r\n\r\n"); err != nil {
		return
	}
	for sent := 0; sent < 1<<30; sent += len(hsChunk) {
		if _, err := c.Write(hsChunk); err != nil {
			return
		}
	}
}

// hsFlood answers every datagram with n that answer nothing.
func hsFlood(t *testing.T, n int) int {
	return udpServe(t, func(req []byte) [][]byte {
		out := make([][]byte, n)
		for i := range out {
			wrong := make([]byte, max(len(req), ntpHeaderLen))
			wrong[0] = 0x24
			wrong[1] = 2
			wrong[24] = byte(i + 1) // an origin timestamp that is not ours
			out[i] = wrong
		}
		return out
	}).port
}

// hsMailCheck is a mail check of kind trusting the test root.
func hsMailCheck(t *testing.T, kind string) func(int) *Check {
	return func(port int) *Check { return lbMailCheck(t, kind, port) }
}

func TestHostileServers(t *testing.T) {
	closed := lbFreePort(t, "tcp4", "127.0.0.1:0")
	tcp := func(h func(net.Conn)) func(*testing.T) int {
		return func(t *testing.T) int { return lbRawServer(t, h) }
	}
	mk := func(kind string) func(int) *Check {
		return func(port int) *Check {
			c := &Check{Name: "t", Kind: kind, Host: "127.0.0.1", Port: port, IPFamily: FamilyIPv4, Proxy: ProxyDirect}
			if kind == "sip" {
				c.Transport = "tcp"
			}
			return c
		}
	}
	cases := []struct {
		name   string
		server func(*testing.T) int
		check  func(int) *Check
		reason Reason
		phase  Phase
		detail string
	}{
		{"ssh silent", tcp(hsSilent), mk("ssh"), ReasonProtocol, PhaseBanner, "sent nothing in"},
		{"ssh drip", tcp(hsDrip("SSH-2.0-OpenSSH_9.6\r\n")), mk("ssh"), ReasonProtocol, PhaseBanner, "no end of line"},
		{"ssh endless lines", tcp(hsEndless("", "hello\r\n", false)), mk("ssh"), ReasonProtocol, PhaseBanner, "no SSH identification within"},
		{"ssh 10 MB banner", tcp(hsHuge("SSH-2.0-", 10<<20, false)), mk("ssh"), ReasonProtocol, PhaseBanner, "longer than 1024 bytes"},
		{"ftp silent", tcp(hsSilent), mk("ftp"), ReasonProtocol, PhaseBanner, "sent nothing in"},
		{"ftp drip", tcp(hsDrip("220 ftp ready\r\n")), mk("ftp"), ReasonProtocol, PhaseBanner, "no end of line"},
		{"ftp endless greeting", tcp(hsEndless("220-hi\r\n", "220-still here\r\n", false)), mk("ftp"), ReasonProtocol, PhaseBanner, "more than 200 lines"},
		{"ftp 10 MB banner", tcp(hsHuge("220 ", 10<<20, false)), mk("ftp"), ReasonProtocol, PhaseBanner, "longer than 8192 bytes"},
		{"ftp PASV to another host", func(t *testing.T) int {
			return (&lbFTP{noEPSV: true, pasvHost: "203.0.113.9", pasvPort: closed}).start(t).port
		}, mk("ftp"), ReasonRefused, PhaseData, fmt.Sprintf("data connection to 127.0.0.1:%d (PASV port) failed", closed)},
		{"smtp silent", tcp(hsSilent), mk("smtp"), ReasonProtocol, PhaseBanner, "sent nothing in"},
		{"smtp drip", tcp(hsDrip("220 mail ESMTP\r\n")), mk("smtp"), ReasonProtocol, PhaseBanner, "no end of line"},
		{"smtp endless greeting", tcp(hsEndless("", "220-more\r\n", false)), mk("smtp"), ReasonProtocol, PhaseBanner, "more than 64 lines"},
		{"smtp 10 MB banner", tcp(hsHuge("220 ", 10<<20, false)), mk("smtp"), ReasonProtocol, PhaseBanner, "longer than 4096 bytes"},
		{"http silent", tcp(hsSilent), mk("http"), ReasonTimeout, PhaseResponse, "no complete HTTP response"},
		{"http drip", tcp(hsDrip("HTTP/1.1 200 OK\r\n\r\n")), mk("http"), ReasonTimeout, PhaseResponse, "no complete HTTP response"},
		{"http endless headers", tcp(hsEndless("HTTP/1.1 200 OK\r\n", "X-A: b\r\n", true)), mk("http"), ReasonProtocol, PhaseResponse, "exceeded"},
		{"http 10 MB status line", tcp(hsHuge("HTTP/1.1 200 ", 10<<20, true)), mk("http"), ReasonProtocol, PhaseResponse, "exceeded"},
		{"http redirect loop", func(t *testing.T) int {
			port, _ := hpServer(t, nil, hpRedirects())
			return port
		}, func(port int) *Check { c := mk("http")(port); own(&c.HTTP).Path = "/loop"; return c }, ReasonProtocol, PhaseResponse, "more than 5 redirects"},
		{"http 1 GB body", tcp(hsGigabyteBody), mk("http"), ReasonOK, PhaseResponse, "HTTP 200 OK"},
		{"tls stalled handshake", tcp(hsStalledTLS), mk("tls"), ReasonTimeout, PhaseTLS, ""},
		{"https stalled handshake", tcp(hsStalledTLS), mk("https"), ReasonTimeout, PhaseTLS, ""},
		{"tls 300 KB chain", hsBigChainServer, mk("tls"), ReasonTLSHandshake, PhaseTLS, "exceeds maximum"},
		{"imaps 10 MB greeting", func(t *testing.T) int { return hsOverTLS(t, hsHuge("* OK ", 10<<20, false)) },
			hsMailCheck(t, "imaps"), ReasonProtocol, PhaseBanner, "longer than 4096 bytes"},
		{"pop3s silent after TLS", func(t *testing.T) int { return hsOverTLS(t, hsSilent) },
			hsMailCheck(t, "pop3s"), ReasonProtocol, PhaseBanner, "no greeting followed"},
		{"imaps endless untagged lines", func(t *testing.T) int { return hsOverTLS(t, hsEndless("* OK ready\r\n", "* 1 EXISTS\r\n", false)) },
			hsMailCheck(t, "imaps"), ReasonOK, PhaseBanner, `IMAP greeting "* OK ready"`},
		{"sip endless headers", tcp(hsEndless("SIP/2.0 200 OK\r\n", "X-A: b\r\n", true)), mk("sip"), ReasonProtocol, PhaseResponse, "longer than 64 KB"},
		{"ntp flood of wrong replies", func(t *testing.T) int { return hsFlood(t, 200) }, mk("ntp"), ReasonProtocol, PhaseResponse, "none matching the request"},
		{"udp stun flood of wrong replies", func(t *testing.T) int { return hsFlood(t, 200) },
			func(port int) *Check { c := mk("udp")(port); own(&c.UDP).Payload = "stun"; return c }, ReasonProtocol, PhaseResponse, "none matching the request"},
	}
	suite := time.Now()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := tc.check(tc.server(t))
			c.Timeout = hsTimeout
			var r Result
			var took time.Duration
			alloc := lbAllocDuring(func() {
				begin := time.Now()
				r = lbRun1(t, c)
				took = time.Since(begin)
			})
			lbExpect(t, r, tc.reason == ReasonOK, tc.reason, tc.phase, tc.detail)
			if bound := hsTimeout + hsTimeout/10 + hsSlack; took > bound {
				t.Errorf("took %s, more than the timeout %s + 10 %% (+%s slack)", took.Round(time.Millisecond), hsTimeout, hsSlack)
			}
			if alloc > hsMaxAlloc {
				t.Errorf("allocated %d MB during the case", alloc>>20)
			}
			if tc.name == "http 1 GB body" {
				if f := hpFacts(t, r); f.BodyBytes != httpMaxBody {
					t.Errorf("read %d body bytes, want the bound %d", f.BodyBytes, httpMaxBody)
				}
			}
		})
	}
	t.Logf("%d hostile cases in %s", len(cases), time.Since(suite).Round(time.Millisecond))
}

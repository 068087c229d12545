package dashtest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/binary"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// lab is the set of in-test peers on 127.0.0.1 the agent probes.
type lab struct {
	tcpOpen   int    // a TCP listener that accepts
	tcpClosed int    // a TCP port nothing listens on
	tls       int    // a TLS server with a certificate from caFile's CA
	caFile    string // PEM of the CA
	udpEcho   int    // a UDP echo server
	ntp       int    // a minimal NTP server (stratum 2)
	rangeLo   int    // first of three consecutive listening TCP ports; 0: none found
}

// startLab starts every peer; they stop when the test ends.
func startLab(t *testing.T, dir string) *lab {
	t.Helper()
	l := &lab{}
	l.tcpOpen = serveTCP(t, mustListen(t, "127.0.0.1:0"), nil)
	l.tcpClosed = freeTCPPort(t)

	caPEM, leaf := newCertificates(t)
	l.caFile = filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(l.caFile, caPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	l.tls = serveTCP(t, mustListen(t, "127.0.0.1:0"), &tls.Config{Certificates: []tls.Certificate{leaf}})

	l.udpEcho = serveUDP(t, func(req []byte) []byte { return req })
	l.ntp = serveUDP(t, ntpReply)

	if lo, ls := consecutiveListeners(t, 3); lo != 0 {
		l.rangeLo = lo
		for _, ln := range ls {
			serveTCP(t, ln, nil)
		}
	}
	return l
}

func mustListen(t *testing.T, addr string) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp4", addr)
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

// freeTCPPort is a loopback port that was free a moment ago.
func freeTCPPort(t *testing.T) int {
	t.Helper()
	ln := mustListen(t, "127.0.0.1:0")
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// consecutiveListeners listens on n consecutive loopback ports, trying a few
// starting points; it returns 0 and nothing when it finds none.
func consecutiveListeners(t *testing.T, n int) (int, []net.Listener) {
	t.Helper()
	for range 30 {
		first := mustListen(t, "127.0.0.1:0")
		lo := first.Addr().(*net.TCPAddr).Port
		ls := []net.Listener{first}
		for i := 1; i < n; i++ {
			ln, err := net.Listen("tcp4", fmt.Sprintf("127.0.0.1:%d", lo+i))
			if err != nil {
				break
			}
			ls = append(ls, ln)
		}
		if len(ls) == n {
			return lo, ls
		}
		for _, ln := range ls {
			ln.Close()
		}
	}
	return 0, nil
}

// serveTCP accepts on ln until the test ends: with cfg, completes a TLS
// handshake, then closes each connection. It returns the port.
func serveTCP(t *testing.T, ln net.Listener, cfg *tls.Config) int {
	t.Helper()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(5 * time.Second))
				if cfg != nil {
					_ = tls.Server(c, cfg).Handshake()
				}
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		waitGroupBounded(t, &wg, "TCP test server")
	})
	return ln.Addr().(*net.TCPAddr).Port
}

// serveUDP answers each datagram on a loopback port with handle's reply
// (nil: none) until the test ends. It returns the port.
func serveUDP(t *testing.T, handle func(req []byte) []byte) int {
	t.Helper()
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		buf := make([]byte, 2048)
		for {
			n, from, err := pc.ReadFrom(buf)
			if errors.Is(err, net.ErrClosed) {
				return
			}
			if err != nil {
				continue
			}
			if reply := handle(append([]byte(nil), buf[:n]...)); reply != nil {
				_, _ = pc.WriteTo(reply, from)
			}
		}
	}()
	t.Cleanup(func() {
		pc.Close()
		waitGroupBounded(t, &wg, "UDP test server")
	})
	return pc.LocalAddr().(*net.UDPAddr).Port
}

func waitGroupBounded(t *testing.T, wg *sync.WaitGroup, what string) {
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Errorf("%s did not stop within 10s", what)
	}
}

// ntpReply is a healthy stratum 2 server's 48-byte reply to req: version 4,
// mode 4, the client's transmit timestamp echoed as origin, this host's
// clock as receive and transmit time.
func ntpReply(req []byte) []byte {
	if len(req) < 48 {
		return nil
	}
	now := time.Now()
	b := make([]byte, 48)
	b[0] = 0<<6 | 4<<3 | 4 // leap 0, version 4, mode 4 (server)
	b[1] = 2               // stratum
	b[2] = 6               // poll 2^6 s
	b[3] = 0xec            // precision 2^-20 s
	binary.BigEndian.PutUint32(b[4:8], ntpShort(10*time.Millisecond))
	binary.BigEndian.PutUint32(b[8:12], ntpShort(20*time.Millisecond))
	copy(b[12:16], []byte{10, 0, 0, 1})
	binary.BigEndian.PutUint64(b[16:24], ntpTimestamp(now.Add(-30*time.Second)))
	copy(b[24:32], req[40:48])
	binary.BigEndian.PutUint64(b[32:40], ntpTimestamp(now))
	binary.BigEndian.PutUint64(b[40:48], ntpTimestamp(now))
	return b
}

func ntpTimestamp(t time.Time) uint64 {
	const unixToNTP = 2208988800
	sec := uint64(t.Unix() + unixToNTP)
	frac := uint64(t.Nanosecond()) << 32 / 1e9
	return sec<<32 | frac
}

func ntpShort(d time.Duration) uint32 {
	return uint32(d.Seconds() * 65536)
}

// newCertificates returns a CA's PEM and a leaf it signed for 127.0.0.1 and
// localhost, valid for a year.
func newCertificates(t *testing.T) ([]byte, tls.Certificate) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "connprobe dashtest CA", Organization: []string{"connprobe tests"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(365 * 24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	leafKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	leafTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "localhost"},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(90 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leafTmpl, ca, &leafKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
		tls.Certificate{Certificate: [][]byte{leafDER}, PrivateKey: leafKey}
}

package probe

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// Certificates for the loopback TLS tests, generated once per test binary.
// Names carry an "lb" prefix so that they cannot collide with other test
// helpers of this package.

// lbCA is a certificate authority (root or intermediate).
type lbCA struct {
	cert   *x509.Certificate
	key    *ecdsa.PrivateKey
	parent *lbCA // nil for a root
}

// lbLeaf is a server certificate with its chain as served.
type lbLeaf struct {
	cert *x509.Certificate
	tls  tls.Certificate
}

// lbPKISet holds every certificate the tests use.
type lbPKISet struct {
	root         *lbCA // "Test Root CA", trusted through CAFile
	intermediate *lbCA // "Test Intermediate CA", signed by root
	unknown      *lbCA // "Unknown Test CA", never trusted
	inspection   *lbCA // "Corp Inspection CA" (O "Corp Security"), a TLS inspection box

	good             *lbLeaf // 127.0.0.1, ::1, localhost; signed by root
	goodIntermediate *lbLeaf // same names, signed by intermediate, served with it
	expired          *lbLeaf // expired a day ago
	notYetValid      *lbLeaf // valid from tomorrow
	wrongHost        *lbLeaf // only www.example.invalid
	svc              *lbLeaf // only svc.test (for the ServerName override)
	unknownCA        *lbLeaf // good names, signed by unknown
	inspected        *lbLeaf // good names, signed by inspection
}

var (
	lbPKIOnce sync.Once
	lbPKIVal  *lbPKISet
	lbPKIErr  error
)

// lbPKI returns the shared test PKI.
func lbPKI(t testing.TB) *lbPKISet {
	t.Helper()
	lbPKIOnce.Do(func() { lbPKIVal, lbPKIErr = lbNewPKI() })
	if lbPKIErr != nil {
		t.Fatalf("generating test certificates: %v", lbPKIErr)
	}
	return lbPKIVal
}

func lbSerial() (*big.Int, error) {
	return rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
}

func lbNewCA(cn, org string, parent *lbCA) (*lbCA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	serial, err := lbSerial()
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: cn, Organization: []string{org}},
		NotBefore:             now.Add(-48 * time.Hour),
		NotAfter:              now.Add(10 * 365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	signer, signerKey := tmpl, key
	if parent != nil {
		signer, signerKey = parent.cert, parent.key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, signer, &key.PublicKey, signerKey)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &lbCA{cert: cert, key: key, parent: parent}, nil
}

func (ca *lbCA) issue(cn string, dns []string, ips []net.IP, notBefore, notAfter time.Time) (*lbLeaf, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	serial, err := lbSerial()
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    notBefore,
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     dns,
		IPAddresses:  ips,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	chain := [][]byte{der}
	for p := ca; p != nil && p.parent != nil; p = p.parent {
		chain = append(chain, p.cert.Raw) // intermediates, never the root
	}
	return &lbLeaf{cert: cert, tls: tls.Certificate{Certificate: chain, PrivateKey: key, Leaf: cert}}, nil
}

func lbNewPKI() (*lbPKISet, error) {
	var p lbPKISet
	var err error
	if p.root, err = lbNewCA("Test Root CA", "Connprobe Test", nil); err != nil {
		return nil, err
	}
	if p.intermediate, err = lbNewCA("Test Intermediate CA", "Connprobe Test", p.root); err != nil {
		return nil, err
	}
	if p.unknown, err = lbNewCA("Unknown Test CA", "Nobody Trusts Me", nil); err != nil {
		return nil, err
	}
	if p.inspection, err = lbNewCA("Corp Inspection CA", "Corp Security", nil); err != nil {
		return nil, err
	}
	// Whole seconds: x509 times have no sub-second part.
	now := time.Now().Truncate(time.Second)
	from, until := now.Add(-time.Hour), now.Add(30*24*time.Hour)
	names := []string{"localhost"}
	ips := []net.IP{net.ParseIP("127.0.0.1"), net.IPv6loopback}
	type spec struct {
		dst         **lbLeaf
		ca          *lbCA
		cn          string
		dns         []string
		ips         []net.IP
		from, until time.Time
	}
	for _, s := range []spec{
		{&p.good, p.root, "localhost", names, ips, from, until},
		{&p.goodIntermediate, p.intermediate, "localhost", names, ips, from, until},
		{&p.expired, p.root, "localhost", names, ips, now.Add(-30 * 24 * time.Hour), now.Add(-24 * time.Hour)},
		{&p.notYetValid, p.root, "localhost", names, ips, now.Add(24 * time.Hour), now.Add(30 * 24 * time.Hour)},
		{&p.wrongHost, p.root, "www.example.invalid", []string{"www.example.invalid"}, nil, from, until},
		{&p.svc, p.root, "svc.test", []string{"svc.test"}, nil, from, until},
		{&p.unknownCA, p.unknown, "localhost", names, ips, from, until},
		{&p.inspected, p.inspection, "localhost", names, ips, from, until},
	} {
		if *s.dst, err = s.ca.issue(s.cn, s.dns, s.ips, s.from, s.until); err != nil {
			return nil, err
		}
	}
	return &p, nil
}

// lbWriteCAFile writes the CA certificates as one PEM bundle into a temporary
// file and returns its path.
func lbWriteCAFile(t testing.TB, cas ...*lbCA) string {
	t.Helper()
	var b []byte
	for _, ca := range cas {
		b = append(b, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.cert.Raw})...)
	}
	path := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestTLSTestCertificates(t *testing.T) {
	p := lbPKI(t)
	roots := x509.NewCertPool()
	roots.AddCert(p.root.cert)
	inter := x509.NewCertPool()
	inter.AddCert(p.intermediate.cert)
	verify := func(l *lbLeaf, name string) error {
		_, err := l.cert.Verify(x509.VerifyOptions{DNSName: name, Roots: roots, Intermediates: inter})
		return err
	}
	if err := verify(p.good, "localhost"); err != nil {
		t.Errorf("good leaf: %v", err)
	}
	if err := verify(p.goodIntermediate, "127.0.0.1"); err != nil {
		t.Errorf("intermediate leaf: %v", err)
	}
	if len(p.goodIntermediate.tls.Certificate) != 2 {
		t.Errorf("intermediate leaf is served with %d certificates, want 2", len(p.goodIntermediate.tls.Certificate))
	}
	if err := verify(p.expired, "localhost"); err == nil {
		t.Error("expired leaf verifies")
	}
	if err := verify(p.notYetValid, "localhost"); err == nil {
		t.Error("not-yet-valid leaf verifies")
	}
	if err := verify(p.wrongHost, "localhost"); err == nil {
		t.Error("wrong-host leaf verifies for localhost")
	}
	if err := verify(p.unknownCA, "localhost"); err == nil {
		t.Error("leaf of the unknown CA verifies")
	}
	if got := p.inspected.cert.Issuer.CommonName; got != "Corp Inspection CA" {
		t.Errorf("inspected leaf issuer = %q", got)
	}
}

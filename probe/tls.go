package probe

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"slices"
	"strconv"
	"time"
)

// classicCurves leaves out the hybrid post-quantum key exchange whose large
// ClientHello (about 1.5 KB, two packets) some old middleboxes drop.
var classicCurves = []tls.CurveID{tls.X25519, tls.CurveP256, tls.CurveP384}

// firstHandshakeShare is the share of the remaining time the first (default)
// handshake may use, leaving room for a retry with classic curves.
const firstHandshakeShare = 0.6

// probeTLS connects and completes a verified TLS handshake with SNI.
func probeTLS(ctx context.Context, t Target) Result {
	r := newResult(t)
	facts, err := dialTLS(ctx, t, &r)
	if facts != nil {
		r.Facts.TLSFacts = facts
	}
	if err != nil {
		phase := PhaseTLS
		var de *dialError
		if errors.As(err, &de) {
			phase = PhaseConnect
		}
		return fail(&r, phase, err, t.Addr)
	}
	r.Up, r.Reason, r.Phase = true, ReasonOK, PhaseTLS
	r.Detail = tlsDetail(facts)
	if facts.ClassicCurvesOnly {
		r.Detail += "; the default post-quantum ClientHello timed out and only a retry with classic curves completed " +
			"(a middlebox drops large ClientHellos; the vendor's own client may or may not be affected)"
	}
	return r
}

// tlsDetail is a verified handshake's detail line, "VERSION CIPHER,
// certificate for SUBJECT issued by "ISSUER", valid until DATE", written in
// one buffer (fmt.Sprintf boxed each of its five values).
func tlsDetail(f *TLSFacts) string {
	b := make([]byte, 0, 64+len(f.Version)+len(f.Cipher)+len(f.Subject)+len(f.Issuer))
	b = append(b, f.Version...)
	b = append(b, ' ')
	b = append(b, f.Cipher...)
	b = append(b, ", certificate for "...)
	b = append(b, f.Subject...)
	b = append(b, " issued by "...)
	b = strconv.AppendQuote(b, f.Issuer)
	b = append(b, ", valid until "...)
	b = f.NotAfter.UTC().AppendFormat(b, "2006-01-02")
	return string(b)
}

// cipherSuiteName is tls.CipherSuiteName without its allocations for the
// suites TLS 1.3 and most TLS 1.2 servers choose (tls.CipherSuiteName
// builds the list of all suites on every call).
func cipherSuiteName(id uint16) string {
	switch id {
	case tls.TLS_AES_128_GCM_SHA256:
		return "TLS_AES_128_GCM_SHA256"
	case tls.TLS_AES_256_GCM_SHA384:
		return "TLS_AES_256_GCM_SHA384"
	case tls.TLS_CHACHA20_POLY1305_SHA256:
		return "TLS_CHACHA20_POLY1305_SHA256"
	case tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256:
		return "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"
	case tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384:
		return "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384"
	case tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256:
		return "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256"
	case tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256:
		return "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"
	case tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384:
		return "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384"
	case tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256:
		return "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256"
	}
	return tls.CipherSuiteName(id)
}

// dialTLS connects to t and completes a handshake, retrying once with classic
// curves when the first handshake times out. It closes the connection.
func dialTLS(ctx context.Context, t Target, r *Result) (*TLSFacts, error) {
	facts, err := connectAndHandshake(ctx, t, r, nil, firstHandshakeShare)
	if err == nil || !isTimeout(err) || ctx.Err() != nil {
		return facts, err
	}
	var de *dialError
	if errors.As(err, &de) {
		return facts, err // the connect itself timed out: no handshake to retry
	}
	facts2, err2 := connectAndHandshake(ctx, t, r, classicCurves, 1)
	if err2 != nil {
		return facts, err // the first failure is the one that matters
	}
	facts2.ClassicCurvesOnly = true
	return facts2, nil
}

func connectAndHandshake(ctx context.Context, t Target, r *Result, curves []tls.CurveID, share float64) (*TLSFacts, error) {
	begin := time.Now()
	conn, err := dialTCP(ctx, t)
	connectTime := time.Since(begin)
	r.addTiming(PhaseConnect, connectTime)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	hsBegin := time.Now()
	tc, facts, err := handshakeTLSUntil(ctx, shareOfDeadline(ctx, share, hsBegin), conn, t, curves)
	hsTime := time.Since(hsBegin)
	r.addTiming(PhaseTLS, hsTime)
	if facts != nil {
		facts.ConnectSeconds = connectTime.Seconds()
		facts.HandshakeSeconds = hsTime.Seconds()
	}
	if tc != nil {
		_ = tc.Close()
	}
	return facts, err
}

// shareOfDeadline is the deadline share of the time ctx has left after
// now; zero (none) when ctx has no deadline. The handshake's own deadline is
// its connection's, not a context's: a context with a timeout of its own
// would cost a timer and two more cancellation hooks per probe, and it
// ended the handshake at the same instant (as a timeout too).
func shareOfDeadline(ctx context.Context, share float64, now time.Time) time.Time {
	d, ok := ctx.Deadline()
	if !ok {
		return time.Time{}
	}
	if share >= 1 {
		return d
	}
	return now.Add(time.Duration(float64(d.Sub(now)) * share))
}

// handshakeTLS runs a client handshake over conn for t, verifies the chain
// and the issuer pin, and returns the facts it saw (also on failure, as far as
// a certificate was presented). Application kinds (smtps, imaps, STARTTLS,
// https) reuse it.
func handshakeTLS(ctx context.Context, conn net.Conn, t Target, curves []tls.CurveID) (*tls.Conn, *TLSFacts, error) {
	d, _ := ctx.Deadline()
	return handshakeTLSUntil(ctx, d, conn, t, curves)
}

// handshakeTLSUntil is handshakeTLS ending at deadline (none when zero),
// or at once when ctx is cancelled.
func handshakeTLSUntil(ctx context.Context, deadline time.Time, conn net.Conn, t Target, curves []tls.CurveID) (*tls.Conn, *TLSFacts, error) {
	cfg, err := tlsClientConfig(ctx, t.Check)
	if err != nil {
		return nil, nil, &configError{Err: err}
	}
	cfg.CurvePreferences = curves
	if !deadline.IsZero() {
		_ = conn.SetDeadline(deadline)
	}
	defer func() { _ = conn.SetDeadline(time.Time{}) }()
	return handshakeWithConfig(ctx, conn, t, cfg)
}

// handshakeWithConfig is handshakeTLS with a caller-built config (FTPS shares
// one session cache between its control and data channels) and with the
// caller's own deadlines on conn, which it leaves alone.
func handshakeWithConfig(ctx context.Context, conn net.Conn, t Target, cfg *tls.Config) (*tls.Conn, *TLSFacts, error) {
	tc := tls.Client(conn, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		facts := factsFromFailure(err, cfg.ServerName)
		if pinErr := pinCheckUnverified(err, t.Check.GetTLS().ExpectIssuer); pinErr != nil {
			return nil, facts, pinErr
		}
		return nil, facts, err
	}
	cs := tc.ConnectionState()
	facts := factsFromState(cs, cfg.ServerName)
	// A resumed session was verified and pinned when it was established.
	if exp := t.Check.GetTLS().ExpectIssuer; len(exp) > 0 && !cs.DidResume && !chainsMatchIssuer(cs.VerifiedChains, exp) {
		_ = tc.Close()
		return nil, facts, &interceptedError{Presented: facts.Issuer, Expected: exp, Verified: true}
	}
	return tc, facts, nil
}

func tlsClientConfig(ctx context.Context, c *Check) (*tls.Config, error) {
	roots, err := rootPool(ctx, c.GetTLS().CAFile)
	if err != nil {
		return nil, err
	}
	name := c.GetTLS().ServerName
	if name == "" {
		name = c.Host
	}
	return &tls.Config{ServerName: name, RootCAs: roots, MinVersion: tls.VersionTLS10}, nil
}

func factsFromState(cs tls.ConnectionState, serverName string) *TLSFacts {
	f := &TLSFacts{
		Version:    tls.VersionName(cs.Version),
		Cipher:     cipherSuiteName(cs.CipherSuite),
		ServerName: serverName,
	}
	if len(cs.PeerCertificates) > 0 {
		leaf := cs.PeerCertificates[0]
		f.Issuer = issuerName(leaf)
		f.Subject = certName(leaf.Subject.CommonName, leaf.DNSNames)
		f.NotAfter = leaf.NotAfter
	}
	return f
}

func factsFromFailure(err error, serverName string) *TLSFacts {
	var cve *tls.CertificateVerificationError
	if !errors.As(err, &cve) || len(cve.UnverifiedCertificates) == 0 {
		return nil
	}
	leaf := cve.UnverifiedCertificates[0]
	return &TLSFacts{
		Issuer:     issuerName(leaf),
		Subject:    certName(leaf.Subject.CommonName, leaf.DNSNames),
		NotAfter:   leaf.NotAfter,
		ServerName: serverName,
	}
}

func issuerName(c *x509.Certificate) string {
	if c.Issuer.CommonName != "" {
		return c.Issuer.CommonName
	}
	return c.Issuer.String()
}

// chainsMatchIssuer reports whether a CA certificate of any verified chain has
// a subject CN or O among expect.
func chainsMatchIssuer(chains [][]*x509.Certificate, expect []string) bool {
	for _, chain := range chains {
		for i, c := range chain {
			if i == 0 && len(chain) > 1 {
				continue // the leaf is not an issuer
			}
			if subjectMatches(c, expect) {
				return true
			}
		}
	}
	return false
}

func subjectMatches(c *x509.Certificate, expect []string) bool {
	if slices.Contains(expect, c.Subject.CommonName) {
		return true
	}
	for _, o := range c.Subject.Organization {
		if slices.Contains(expect, o) {
			return true
		}
	}
	return false
}

// pinCheckUnverified turns an unknown-authority failure into "intercepted"
// when an issuer pin is set and the presented chain does not match it: an
// inspection CA that is not (yet) trusted on this host.
func pinCheckUnverified(err error, expect []string) error {
	if len(expect) == 0 {
		return nil
	}
	var uae x509.UnknownAuthorityError
	var cve *tls.CertificateVerificationError
	if !errors.As(err, &uae) || !errors.As(err, &cve) || len(cve.UnverifiedCertificates) == 0 {
		return nil
	}
	certs := cve.UnverifiedCertificates
	leaf := certs[0]
	if slices.Contains(expect, leaf.Issuer.CommonName) {
		return nil
	}
	for _, o := range leaf.Issuer.Organization {
		if slices.Contains(expect, o) {
			return nil
		}
	}
	for _, c := range certs[1:] {
		if subjectMatches(c, expect) {
			return nil
		}
	}
	return &interceptedError{Presented: issuerName(leaf), Expected: expect, Verified: false}
}

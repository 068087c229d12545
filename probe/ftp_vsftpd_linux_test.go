//go:build linux

package probe_test

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/connprobe/connprobe/internal/netlab"
	"github.com/connprobe/connprobe/probe"
)

// These tests run the real vsftpd in a lab's server namespace and probe it
// from the client namespace, with the router's firewall passing the control
// port and dropping or rejecting the passive range: the breakage the ftp kind
// exists to find.

const (
	vsftpdBin = "/usr/sbin/vsftpd"
	// The passive range vsftpd is confined to, as a firewall rule names it.
	vsftpdPasvMin = 30000
	vsftpdPasvMax = 30009
	vsftpdFile    = "hello.txt"
	vsftpdContent = "hello from vsftpd in a namespace\n"
)

// vsftpdAvailable skips (or, in CI, fails) when vsftpd is missing.
func vsftpdAvailable(t *testing.T) {
	t.Helper()
	if err := netlab.Available(); err != nil {
		t.Skipf("netlab: %v", err)
	}
	if _, err := os.Stat(vsftpdBin); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is missing: CI must install vsftpd (add it to .ci/run's apt-get install list)", vsftpdBin)
		}
		t.Skipf("%s is missing (apt-get install vsftpd) - skipping the real-FTP-server tests", vsftpdBin)
	}
}

// vsftpdUser is the unprivileged user vsftpd maps anonymous logins to: the
// package's "ftp" user, or nobody where the package did not create it.
func vsftpdUser() string {
	if _, err := user.Lookup("ftp"); err == nil {
		return "ftp"
	}
	return "nobody"
}

// startVsftpd runs vsftpd in the foreground in the lab's server namespace,
// with its own configuration, listening on the server's IPv4 address port
// 21, and waits (bounded) until it greets. With tlsFiles ([cert, key]) it
// offers FTPS, keeping vsftpd's default require_ssl_reuse=YES: a data
// connection that does not resume the control channel's session is refused.
func startVsftpd(t *testing.T, lab *netlab.Lab, tlsFiles []string) {
	t.Helper()
	dir := t.TempDir()
	root := filepath.Join(dir, "anon")
	empty := filepath.Join(dir, "empty")
	for _, d := range []string{root, empty} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(root, vsftpdFile), []byte(vsftpdContent), 0o644); err != nil {
		t.Fatal(err)
	}
	// vsftpd refuses a chroot root or secure_chroot_dir that anyone but root
	// could write to; the anonymous user must still read and list it.
	for _, d := range []string{root, empty} {
		if err := os.Chmod(d, 0o555); err != nil {
			t.Fatal(err)
		}
	}
	conf := []string{
		"listen=YES",
		"listen_ipv6=NO",
		"listen_address=" + lab.ServerIP().String(),
		"listen_port=21",
		"background=NO",
		"anonymous_enable=YES",
		"no_anon_password=YES",
		"anon_root=" + root,
		"ftp_username=" + vsftpdUser(),
		"nopriv_user=" + vsftpdUser(),
		"local_enable=NO",
		"write_enable=NO",
		"pasv_enable=YES",
		fmt.Sprintf("pasv_min_port=%d", vsftpdPasvMin),
		fmt.Sprintf("pasv_max_port=%d", vsftpdPasvMax),
		"port_enable=NO",
		"connect_from_port_20=NO",
		"secure_chroot_dir=" + empty,
		// The sandbox's syscall filter trips over some kernels and libcs;
		// it protects nothing a throw-away test server needs.
		"seccomp_sandbox=NO",
		"xferlog_enable=NO",
		"syslog_enable=NO",
		"vsftpd_log_file=/dev/null",
		"hide_ids=YES",
		"use_localtime=NO",
	}
	if tlsFiles != nil {
		conf = append(conf,
			"ssl_enable=YES",
			"allow_anon_ssl=YES",
			"force_anon_logins_ssl=NO",
			"force_anon_data_ssl=NO",
			"rsa_cert_file="+tlsFiles[0],
			"rsa_private_key_file="+tlsFiles[1],
			"require_ssl_reuse=YES",
			"ssl_ciphers=HIGH",
		)
	}
	confFile := filepath.Join(dir, "vsftpd.conf")
	if err := os.WriteFile(confFile, []byte(strings.Join(conf, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// A configuration vsftpd rejects makes it exit at once ("500 OOPS");
	// the wait below then fails and Start logs its output.
	lab.Start(lab.Server(), vsftpdBin, confFile)
	addr := net.JoinHostPort(lab.ServerIP().String(), "21")
	deadline := time.Now().Add(5 * time.Second)
	for {
		err := lab.Do(lab.Server(), func() error {
			c, err := net.DialTimeout("tcp", addr, 500*time.Millisecond)
			if err != nil {
				return err
			}
			// Read the greeting so vsftpd's session ends cleanly.
			_ = c.SetReadDeadline(time.Now().Add(time.Second))
			buf := make([]byte, 512)
			n, _ := c.Read(buf)
			c.Close()
			if !strings.HasPrefix(string(buf[:n]), "220") {
				return fmt.Errorf("greeting %q", buf[:n])
			}
			return nil
		})
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("vsftpd did not accept connections on %s within 5s: %v", addr, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// vsftpdCert writes an RSA certificate for the lab server's address signed
// by a fresh CA; it returns the cert and key files and the CA file.
func vsftpdCert(t *testing.T, lab *netlab.Lab) (certFile, keyFile, caFile string) {
	t.Helper()
	now := time.Now()
	caKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "vsftpd Test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	leafTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "vsftpd netlab server"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses: []net.IP{lab.ServerIP()},
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leafTmpl, caCert, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile, caFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem"), filepath.Join(dir, "ca.pem")
	write := func(path, typ string, der []byte) {
		if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(certFile, "CERTIFICATE", leafDER)
	write(keyFile, "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(key))
	write(caFile, "CERTIFICATE", caDER)
	return certFile, keyFile, caFile
}

type vsftpdCase struct {
	name    string
	timeout time.Duration // 3s unless set
	ftps    bool          // the probe asks for FTPS and vsftpd offers it
	// plainServer keeps FTPS off in vsftpd while the probe asks for it.
	plainServer bool
	path        string
	// rules installs firewall rules in the lab.
	rules  func(lab *netlab.Lab)
	reason probe.Reason
	phase  probe.Phase
	detail func(lab *netlab.Lab) []string
	// atLeast/atMost bound the attempt's duration.
	atLeast, atMost time.Duration
}

func vsftpdPasvRange() string { return fmt.Sprintf("%d:%d", vsftpdPasvMin, vsftpdPasvMax) }

func vsftpdCases() []vsftpdCase {
	return []vsftpdCase{
		{
			name:   "ok",
			reason: probe.ReasonOK, phase: probe.PhaseData,
			detail: func(*netlab.Lab) []string {
				return []string{`greeting "(vsFTPd 3.`, "logged in as anonymous", "EPSV port 3000", "listing of "}
			},
			atMost: 2 * time.Second,
		},
		{
			name:   "ok_retr",
			path:   vsftpdFile,
			reason: probe.ReasonOK, phase: probe.PhaseData,
			detail: func(*netlab.Lab) []string {
				return []string{fmt.Sprintf("file of %d bytes", len(vsftpdContent))}
			},
			atMost: 2 * time.Second,
		},
		{
			name:    "router_drop_passive_range",
			timeout: 2 * time.Second,
			rules: func(lab *netlab.Lab) {
				lab.IPTables(lab.Router(), "-A", "FORWARD", "-p", "tcp", "--dport", vsftpdPasvRange(), "-j", "DROP")
			},
			reason: probe.ReasonTimeout, phase: probe.PhaseData,
			detail: func(lab *netlab.Lab) []string {
				return []string{"control channel fine (logged in as anonymous); data connection to " + lab.ServerIP().String() + ":300",
					"(EPSV port) failed: no answer to the connection attempt (packets dropped)"}
			},
			atLeast: 1900 * time.Millisecond, atMost: 3500 * time.Millisecond,
		},
		{
			name: "router_reject_passive_range",
			rules: func(lab *netlab.Lab) {
				lab.IPTables(lab.Router(), "-A", "FORWARD", "-p", "tcp", "--dport", vsftpdPasvRange(), "-j", "REJECT",
					"--reject-with", "icmp-port-unreachable")
			},
			reason: probe.ReasonRejected, phase: probe.PhaseData,
			detail: func(lab *netlab.Lab) []string {
				return []string{"control channel fine", "data connection to " + lab.ServerIP().String() + ":300",
					"(port unreachable) from " + lab.RouterClientSideIP().String() + ", a device on the path"}
			},
			atMost: 2 * time.Second,
		},
		{
			name:    "router_drop_control_port",
			timeout: 1500 * time.Millisecond,
			rules: func(lab *netlab.Lab) {
				lab.IPTables(lab.Router(), "-A", "FORWARD", "-p", "tcp", "--dport", "21", "-j", "DROP")
			},
			reason: probe.ReasonTimeout, phase: probe.PhaseConnect,
			detail:  func(*netlab.Lab) []string { return []string{"no answer"} },
			atLeast: 1400 * time.Millisecond, atMost: 3 * time.Second,
		},
		{
			name:   "ftps_ok",
			ftps:   true,
			reason: probe.ReasonOK, phase: probe.PhaseData,
			detail: func(*netlab.Lab) []string {
				return []string{"FTPS (AUTH TLS, TLS 1.", `issued by "vsftpd Test CA"`, "over a protected data channel (TLS session resumed)"}
			},
			atMost: 2 * time.Second,
		},
		{
			// vsftpd without ssl_enable answers AUTH TLS with 530.
			name: "ftps_not_offered",
			ftps: true, plainServer: true,
			reason: probe.ReasonProtocol, phase: probe.PhaseStartTLS,
			detail: func(*netlab.Lab) []string { return []string{"does not offer FTPS (AUTH TLS answered 5"} },
			atMost: 2 * time.Second,
		},
	}
}

func TestFTPVsftpd(t *testing.T) {
	vsftpdAvailable(t)
	var cases []fwCase
	for _, vc := range vsftpdCases() {
		timeout := vc.timeout
		if timeout == 0 {
			timeout = 3 * time.Second
		}
		cases = append(cases, fwCase{
			name:    vc.name,
			timeout: timeout,
			setup: func(t *testing.T, lab *netlab.Lab) *probe.Check {
				c := &probe.Check{Name: "vsftpd", Kind: "ftp", Host: lab.ServerIP().String(), Port: 21,
					FTP: &probe.FTPOptions{Path: vc.path}}
				var tlsFiles []string
				if vc.ftps {
					cert, key, ca := vsftpdCert(t, lab)
					if !vc.plainServer {
						tlsFiles = []string{cert, key}
					}
					own(&c.FTP).ExplicitTLS = true
					own(&c.TLS).CAFile = ca
				}
				startVsftpd(t, lab, tlsFiles)
				if vc.rules != nil {
					vc.rules(lab)
				}
				return c
			},
			reason: vc.reason, phase: vc.phase, detail: vc.detail,
			atLeast: vc.atLeast, atMost: vc.atMost,
			check: func(t *testing.T, _ *netlab.Lab, r probe.Result) {
				if vc.reason != probe.ReasonOK {
					return
				}
				f := r.Facts.FTPFacts
				if f == nil || f.PassivePort < vsftpdPasvMin || f.PassivePort > vsftpdPasvMax || f.DataBytes <= 0 {
					t.Errorf("facts %+v: want a passive port in %s and bytes received", f, vsftpdPasvRange())
				}
			},
		})
	}
	runFwCases(t, cases)
}

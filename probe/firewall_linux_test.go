//go:build linux

package probe_test

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
	"strconv"
	"testing"
	"time"

	"github.com/connprobe/connprobe/internal/netlab"
	"github.com/connprobe/connprobe/probe"
)

// These tests check the reason table against real packets: each case builds
// its own netlab (client, router and server namespaces), installs the
// firewall rule under test, and runs probe.Run in a helper process inside the
// client namespace. Cases run in parallel; each one is bounded by its check
// timeout plus the helper's slack.
//
// They need root; without it (or without ip/iptables/nft, or without the
// right to create network namespaces) they skip.

// fwListen opens a TCP listener on the server (IPv4 or IPv6) and returns its port.
func fwListen(t *testing.T, lab *netlab.Lab, ip net.IP) int {
	t.Helper()
	ln := lab.ListenTCP(lab.Server(), net.JoinHostPort(ip.String(), "0"))
	return ln.Addr().(*net.TCPAddr).Port
}

// fwOpenV4 is a check against a listening IPv4 port on the server, so that any
// failure comes from the rule the case installs and nothing else.
func fwOpenV4(t *testing.T, lab *netlab.Lab) (*probe.Check, string) {
	port := fwListen(t, lab, lab.ServerIP())
	return &probe.Check{Name: "fw", Host: lab.ServerIP().String(), Port: port}, strconv.Itoa(port)
}

func fwOpenV6(t *testing.T, lab *netlab.Lab) (*probe.Check, string) {
	port := fwListen(t, lab, lab.ServerIP6())
	return &probe.Check{Name: "fw", Host: lab.ServerIP6().String(), Port: port}, strconv.Itoa(port)
}

// fwRouterReject is a case where the router's FORWARD chain rejects the SYN
// with the given ICMP type: a device on the path, so "rejected".
func fwRouterReject(rejectWith, icmpText string) fwCase {
	return fwCase{
		name: "router_reject_" + rejectWith,
		setup: func(t *testing.T, lab *netlab.Lab) *probe.Check {
			c, port := fwOpenV4(t, lab)
			lab.IPTables(lab.Router(), "-A", "FORWARD", "-p", "tcp", "--dport", port, "-j", "REJECT", "--reject-with", rejectWith)
			return c
		},
		reason: probe.ReasonRejected, phase: probe.PhaseConnect,
		detail: func(lab *netlab.Lab) []string {
			return []string{icmpText, "from " + lab.RouterClientSideIP().String() + ", a device on the path"}
		},
		atMost: time.Second,
	}
}

func fwCases() []fwCase {
	return []fwCase{
		{
			name: "open_port",
			setup: func(t *testing.T, lab *netlab.Lab) *probe.Check {
				c, _ := fwOpenV4(t, lab)
				return c
			},
			reason: probe.ReasonOK, phase: probe.PhaseConnect,
			detail: func(lab *netlab.Lab) []string { return []string{"connected to " + lab.ServerIP().String()} },
			atMost: time.Second,
		},
		{
			name: "closed_port",
			setup: func(t *testing.T, lab *netlab.Lab) *probe.Check {
				// Nothing listens in a fresh namespace: the server's stack resets.
				return &probe.Check{Name: "fw", Host: lab.ServerIP().String(), Port: 9}
			},
			reason: probe.ReasonRefused, phase: probe.PhaseConnect,
			detail: func(*netlab.Lab) []string { return []string{"TCP reset"} },
			atMost: time.Second,
		},
		{
			name:    "router_drop",
			timeout: 1500 * time.Millisecond,
			setup: func(t *testing.T, lab *netlab.Lab) *probe.Check {
				c, port := fwOpenV4(t, lab)
				lab.IPTables(lab.Router(), "-A", "FORWARD", "-p", "tcp", "--dport", port, "-j", "DROP")
				return c
			},
			reason: probe.ReasonTimeout, phase: probe.PhaseConnect,
			detail:  func(*netlab.Lab) []string { return []string{"no answer"} },
			atLeast: 1400 * time.Millisecond, atMost: 3 * time.Second,
		},
		fwRouterReject("icmp-port-unreachable", "(port unreachable)"),
		fwRouterReject("icmp-admin-prohibited", "(communication administratively prohibited)"),
		fwRouterReject("icmp-host-unreachable", "(host unreachable)"),
		fwRouterReject("icmp-net-unreachable", "(net unreachable)"),
		{
			name: "server_input_reject_tcp_reset",
			setup: func(t *testing.T, lab *netlab.Lab) *probe.Check {
				c, port := fwOpenV4(t, lab)
				lab.IPTables(lab.Server(), "-A", "INPUT", "-p", "tcp", "--dport", port, "-j", "REJECT", "--reject-with", "tcp-reset")
				return c
			},
			reason: probe.ReasonRefused, phase: probe.PhaseConnect,
			detail: func(*netlab.Lab) []string { return []string{"TCP reset"} },
			atMost: time.Second,
		},
		{
			// A router that rejects with a forged TCP reset is indistinguishable
			// on the wire from the target's own stack refusing: the RST carries
			// the target's address and no trace of the router. So it is
			// "refused", exactly like the case above; only ICMP names an offender.
			name: "router_reject_tcp_reset",
			setup: func(t *testing.T, lab *netlab.Lab) *probe.Check {
				c, port := fwOpenV4(t, lab)
				lab.IPTables(lab.Router(), "-A", "FORWARD", "-p", "tcp", "--dport", port, "-j", "REJECT", "--reject-with", "tcp-reset")
				return c
			},
			reason: probe.ReasonRefused, phase: probe.PhaseConnect,
			detail: func(*netlab.Lab) []string { return []string{"TCP reset"} },
			atMost: time.Second,
		},
		{
			// Port unreachable from the target itself reads as "nothing
			// listens": what a closed port says over ICMP.
			name: "server_input_reject_port_unreachable",
			setup: func(t *testing.T, lab *netlab.Lab) *probe.Check {
				c, port := fwOpenV4(t, lab)
				lab.IPTables(lab.Server(), "-A", "INPUT", "-p", "tcp", "--dport", port, "-j", "REJECT", "--reject-with", "icmp-port-unreachable")
				return c
			},
			reason: probe.ReasonRefused, phase: probe.PhaseConnect,
			detail: func(lab *netlab.Lab) []string {
				return []string{"(port unreachable) from the target " + lab.ServerIP().String()}
			},
			atMost: time.Second,
		},
		{
			name: "server_input_reject_admin_prohibited",
			setup: func(t *testing.T, lab *netlab.Lab) *probe.Check {
				c, port := fwOpenV4(t, lab)
				lab.IPTables(lab.Server(), "-A", "INPUT", "-p", "tcp", "--dport", port, "-j", "REJECT", "--reject-with", "icmp-admin-prohibited")
				return c
			},
			reason: probe.ReasonRejected, phase: probe.PhaseConnect,
			detail: func(lab *netlab.Lab) []string {
				return []string{"administratively prohibited", "from the target " + lab.ServerIP().String() + " itself (its own firewall)"}
			},
			atMost: time.Second,
		},
		{
			name: "client_output_reject_admin_prohibited",
			setup: func(t *testing.T, lab *netlab.Lab) *probe.Check {
				c, port := fwOpenV4(t, lab)
				lab.IPTables(lab.Client(), "-A", "OUTPUT", "-p", "tcp", "--dport", port, "-j", "REJECT", "--reject-with", "icmp-admin-prohibited")
				return c
			},
			reason: probe.ReasonLocal, phase: probe.PhaseConnect,
			detail: func(lab *netlab.Lab) []string {
				return []string{"administratively prohibited", "this host's own address " + lab.ClientIP().String()}
			},
			atMost: time.Second,
		},
		{
			// A local DROP in OUTPUT makes the SYN's transmission fail with
			// EPERM, but TCP ignores that error and keeps retransmitting
			// silently until the deadline: the probe can only see a timeout.
			name:    "client_output_drop",
			timeout: 1500 * time.Millisecond,
			setup: func(t *testing.T, lab *netlab.Lab) *probe.Check {
				c, port := fwOpenV4(t, lab)
				lab.IPTables(lab.Client(), "-A", "OUTPUT", "-p", "tcp", "--dport", port, "-j", "DROP")
				return c
			},
			reason: probe.ReasonTimeout, phase: probe.PhaseConnect,
			atLeast: 1400 * time.Millisecond, atMost: 3 * time.Second,
		},
		{
			// Nobody holds the address: the router's ARP fails (about 3s) and
			// it answers ICMP host unreachable from its own address. On the
			// wire that is the very message of router_reject_icmp-host-unreachable
			// (same type, code and offender), so the probe reports it the same
			// way: "rejected" by a device on the path, the detail saying "host
			// unreachable" and naming the router. Only the delay differs, and
			// the detail says what it points at.
			name:    "server_subnet_no_host",
			timeout: 5 * time.Second,
			setup: func(t *testing.T, lab *netlab.Lab) *probe.Check {
				return &probe.Check{Name: "fw", Host: lab.UnusedServerSubnetIP().String(), Port: 80}
			},
			reason: probe.ReasonRejected, phase: probe.PhaseConnect,
			detail: func(lab *netlab.Lab) []string {
				return []string{"(host unreachable) from " + lab.RouterClientSideIP().String(), "neighbour (ARP/NDP) lookup"}
			},
			atLeast: 2 * time.Second, atMost: 4900 * time.Millisecond,
		},
		{
			// Nobody holds the address on the client's own subnet: the
			// client's ARP fails and its own stack reports host unreachable.
			name:    "client_subnet_no_host",
			timeout: 5 * time.Second,
			setup: func(t *testing.T, lab *netlab.Lab) *probe.Check {
				return &probe.Check{Name: "fw", Host: lab.UnusedClientSubnetIP().String(), Port: 80}
			},
			reason: probe.ReasonUnreachable, phase: probe.PhaseConnect,
			detail: func(lab *netlab.Lab) []string {
				return []string{"(host unreachable) reported by this host (" + lab.ClientIP().String() + ")"}
			},
			atLeast: 2 * time.Second, atMost: 4900 * time.Millisecond,
		},
		{
			name: "client_no_route",
			setup: func(t *testing.T, lab *netlab.Lab) *probe.Check {
				lab.Exec(lab.Client(), "ip", "route", "del", "default")
				return &probe.Check{Name: "fw", Host: "10.250.0.1", Port: 80}
			},
			reason: probe.ReasonUnreachable, phase: probe.PhaseConnect,
			detail: func(*netlab.Lab) []string { return []string{"network is unreachable"} },
			atMost: time.Second,
		},
		{
			// The router itself has no route to the destination (only its two
			// subnets): it answers net unreachable, a device on the path.
			name: "router_no_route",
			setup: func(t *testing.T, lab *netlab.Lab) *probe.Check {
				return &probe.Check{Name: "fw", Host: "10.250.0.1", Port: 80}
			},
			reason: probe.ReasonRejected, phase: probe.PhaseConnect,
			detail: func(lab *netlab.Lab) []string {
				return []string{"(net unreachable) from " + lab.RouterClientSideIP().String()}
			},
			atMost: time.Second,
		},
		{
			name: "router_nft_reject_admin_prohibited",
			setup: func(t *testing.T, lab *netlab.Lab) *probe.Check {
				c, port := fwOpenV4(t, lab)
				lab.NFT(lab.Router(), `table ip fw {
	chain forward_filter {
		type filter hook forward priority 0; policy accept;
		tcp dport `+port+` reject with icmp type admin-prohibited
	}
}
`)
				return c
			},
			reason: probe.ReasonRejected, phase: probe.PhaseConnect,
			detail: func(lab *netlab.Lab) []string {
				return []string{"(communication administratively prohibited) from " + lab.RouterClientSideIP().String()}
			},
			atMost: time.Second,
		},
		{
			name: "tls_ok",
			kind: "tls",
			setup: func(t *testing.T, lab *netlab.Lab) *probe.Check {
				return fwTLSServer(t, lab)
			},
			reason: probe.ReasonOK, phase: probe.PhaseTLS,
			detail: func(*netlab.Lab) []string { return []string{"issued by \"Netlab Test CA\""} },
			atMost: time.Second,
		},
		{
			name:    "tls_router_drop",
			kind:    "tls",
			timeout: 1500 * time.Millisecond,
			setup: func(t *testing.T, lab *netlab.Lab) *probe.Check {
				c := fwTLSServer(t, lab)
				lab.IPTables(lab.Router(), "-A", "FORWARD", "-p", "tcp", "--dport", strconv.Itoa(c.Port), "-j", "DROP")
				return c
			},
			reason: probe.ReasonTimeout, phase: probe.PhaseConnect,
			detail:  func(*netlab.Lab) []string { return []string{"no answer"} },
			atLeast: 1400 * time.Millisecond, atMost: 3 * time.Second,
		},
		{
			name: "ipv6_closed_port",
			setup: func(t *testing.T, lab *netlab.Lab) *probe.Check {
				return &probe.Check{Name: "fw", Host: lab.ServerIP6().String(), Port: 9}
			},
			reason: probe.ReasonRefused, phase: probe.PhaseConnect,
			detail: func(*netlab.Lab) []string { return []string{"TCP reset"} },
			atMost: time.Second,
		},
		{
			name: "ipv6_server_input_reject_port_unreachable",
			setup: func(t *testing.T, lab *netlab.Lab) *probe.Check {
				c, port := fwOpenV6(t, lab)
				lab.IP6Tables(lab.Server(), "-A", "INPUT", "-p", "tcp", "--dport", port, "-j", "REJECT", "--reject-with", "icmp6-port-unreachable")
				return c
			},
			reason: probe.ReasonRefused, phase: probe.PhaseConnect,
			detail: func(lab *netlab.Lab) []string {
				return []string{"ICMPv6 destination unreachable (port unreachable) from the target " + lab.ServerIP6().String()}
			},
			atMost: time.Second,
		},
		{
			name: "ipv6_router_reject_admin_prohibited",
			setup: func(t *testing.T, lab *netlab.Lab) *probe.Check {
				c, port := fwOpenV6(t, lab)
				lab.IP6Tables(lab.Router(), "-A", "FORWARD", "-p", "tcp", "--dport", port, "-j", "REJECT", "--reject-with", "icmp6-adm-prohibited")
				return c
			},
			reason: probe.ReasonRejected, phase: probe.PhaseConnect,
			detail: func(lab *netlab.Lab) []string {
				return []string{"ICMPv6 destination unreachable (communication administratively prohibited) from " +
					lab.RouterClientSideIP6().String() + ", a device on the path"}
			},
			atMost: time.Second,
		},
		{
			name:    "ipv6_router_drop",
			timeout: 1500 * time.Millisecond,
			setup: func(t *testing.T, lab *netlab.Lab) *probe.Check {
				c, port := fwOpenV6(t, lab)
				lab.IP6Tables(lab.Router(), "-A", "FORWARD", "-p", "tcp", "--dport", port, "-j", "DROP")
				return c
			},
			reason: probe.ReasonTimeout, phase: probe.PhaseConnect,
			atLeast: 1400 * time.Millisecond, atMost: 3 * time.Second,
		},
	}
}

func TestFirewallReasons(t *testing.T) {
	runFwCases(t, fwCases())
}

// fwTLSServer serves TLS on the server with a certificate for its IPv4
// address, issued by a fresh CA written to a file, and returns a tls check
// trusting that CA.
func fwTLSServer(t *testing.T, lab *netlab.Lab) *probe.Check {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "Netlab Test CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	leafKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	leafTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "netlab server"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:  []net.IP{lab.ServerIP()},
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leafTmpl, caCert, &leafKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), 0o644); err != nil {
		t.Fatal(err)
	}

	ln := lab.ListenTCP(lab.Server(), net.JoinHostPort(lab.ServerIP().String(), "0"))
	cfg := &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{leafDER}, PrivateKey: leafKey}}}
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return // closed on cleanup
			}
			go func() {
				defer conn.Close()
				_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
				_ = tls.Server(conn, cfg).Handshake()
			}()
		}
	}()
	return &probe.Check{
		Name: "fw",
		Host: lab.ServerIP().String(),
		Port: ln.Addr().(*net.TCPAddr).Port,
		TLS:  &probe.TLSOptions{CAFile: caFile},
	}
}

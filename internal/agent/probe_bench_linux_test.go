package agent

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/connprobe/connprobe/internal/memlimit"
	"github.com/connprobe/connprobe/probe"
)

// BenchmarkAgentProbe is the agent's CPU per probe as it runs in
// production: the scheduler, probe.Run, the results store and the metrics
// as New wires them, with n checks at a 1s interval against TCP (accept,
// close) and TLS 1.3 listeners (ECDSA P-256, verified against a CA file,
// server name checked) on n loopback addresses (127.0.1.x), and one
// /metrics scrape per 10 runs of every check (the side-by-side benchmark's
// two scrapes in its 20s window), with cmd/probe's default memory limit
// (--runtime.memory-limit auto). The listeners run in a child process (this
// test binary again), so that the figure holds the agent's CPU alone.
//
// After a warm-up in which every check runs twice, it counts b.N probes and
// reports cpu-us/probe (getrusage user+system of the whole process over
// them) and gc/1000probes (garbage collections: a figure that load on the
// machine does not blur); allocs/op is per probe too, ns/op is wall time per
// probe, set by the interval.
// Every probe must be up.
//
//	go test ./internal/agent/ -run '^$' -bench BenchmarkAgentProbe -benchtime 4000x
func BenchmarkAgentProbe(b *testing.B) {
	const hosts = 200
	srv := startBenchListeners(b, hosts)
	for _, kind := range []string{"tcp", "tls"} {
		b.Run("kind="+kind, func(b *testing.B) { benchAgentProbe(b, srv, kind) })
	}
}

// benchListenersEnv makes the test binary serve the benchmark's listeners
// (see TestMain): its value is the directory for the CA file and the number
// of addresses.
const benchListenersEnv = "CONNPROBE_BENCH_LISTENERS"

func TestMain(m *testing.M) {
	if v := os.Getenv(benchListenersEnv); v != "" {
		if err := serveBenchListeners(v); err != nil {
			fmt.Fprintln(os.Stderr, "bench listeners:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// benchListeners is the child process's listeners: one TCP and one TLS
// port per address, and the CA file that verifies the TLS certificate.
type benchListeners struct {
	caFile string
	addrs  []string
	tcp    []int
	tls    []int
}

const benchServerName = "bench.connprobe.test"

// startBenchListeners starts the child and reads its addresses. The child
// ends when its stdin closes (at cleanup, or when this process dies).
func startBenchListeners(b *testing.B, n int) *benchListeners {
	dir := b.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%s:%d", benchListenersEnv, dir, n))
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		stdin.Close()
		_ = cmd.Wait()
	})
	l := &benchListeners{caFile: filepath.Join(dir, "ca.pem")}
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 1 && f[0] == "ready" {
			return l
		}
		if len(f) != 3 {
			b.Fatalf("bench listeners said %q", sc.Text())
		}
		tcpPort, err1 := strconv.Atoi(f[1])
		tlsPort, err2 := strconv.Atoi(f[2])
		if err1 != nil || err2 != nil {
			b.Fatalf("bench listeners said %q", sc.Text())
		}
		l.addrs, l.tcp, l.tls = append(l.addrs, f[0]), append(l.tcp, tcpPort), append(l.tls, tlsPort)
	}
	b.Fatalf("bench listeners ended before they were ready: %v", sc.Err())
	return nil
}

// serveBenchListeners runs in the child: spec is "dir:n".
func serveBenchListeners(spec string) error {
	i := strings.LastIndexByte(spec, ':')
	n, err := strconv.Atoi(spec[i+1:])
	if i < 0 || err != nil || n < 1 || n > 250 {
		return fmt.Errorf("bad %s %q", benchListenersEnv, spec)
	}
	cert, err := benchPKI(filepath.Join(spec[:i], "ca.pem"))
	if err != nil {
		return err
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS13}
	serve := func(ln net.Listener, h func(net.Conn)) {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go h(c)
		}
	}
	out := bufio.NewWriter(os.Stdout)
	for i := 1; i <= n; i++ {
		addr := fmt.Sprintf("127.0.1.%d", i)
		tcpLn, err := net.Listen("tcp4", addr+":0")
		if err != nil {
			return err
		}
		tlsLn, err := net.Listen("tcp4", addr+":0")
		if err != nil {
			return err
		}
		go serve(tcpLn, func(c net.Conn) { c.Close() })
		go serve(tlsLn, func(c net.Conn) {
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(5 * time.Second))
			tc := tls.Server(c, cfg)
			if tc.Handshake() == nil {
				_, _ = io.Copy(io.Discard, tc)
			}
		})
		fmt.Fprintln(out, addr, tcpLn.Addr().(*net.TCPAddr).Port, tlsLn.Addr().(*net.TCPAddr).Port)
	}
	fmt.Fprintln(out, "ready")
	if err := out.Flush(); err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, os.Stdin) // until the benchmark closes it
	return nil
}

// benchPKI writes a CA certificate to caFile and returns a leaf for
// benchServerName signed by it, ECDSA P-256 throughout.
func benchPKI(caFile string) (tls.Certificate, error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Bench Root CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true, IsCA: true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return tls.Certificate{}, err
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		return tls.Certificate{}, err
	}
	leafKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	leafTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: benchServerName}, DNSNames: []string{benchServerName},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leafTmpl, caCert, &leafKey.PublicKey, caKey)
	if err != nil {
		return tls.Certificate{}, err
	}
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), 0o600); err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{leafDER}, PrivateKey: leafKey}, nil
}

func benchAgentProbe(b *testing.B, srv *benchListeners, kind string) {
	n := len(srv.addrs)
	var cfg strings.Builder
	cfg.WriteString("defaults: {interval: 1s, timeout: 900ms, ip_family: ipv4}\nchecks:\n")
	for i, addr := range srv.addrs {
		if kind == "tls" {
			fmt.Fprintf(&cfg, "  - {name: tls-%d, kind: tls, host: %s, port: %d, tls: {ca_file: %s, server_name: %s}}\n",
				i, addr, srv.tls[i], srv.caFile, benchServerName)
		} else {
			fmt.Fprintf(&cfg, "  - {name: tcp-%d, kind: tcp, host: %s, port: %d}\n", i, addr, srv.tcp[i])
		}
	}
	file := filepath.Join(b.TempDir(), "connprobe.yml")
	if err := os.WriteFile(file, []byte(cfg.String()), 0o600); err != nil {
		b.Fatal(err)
	}
	// As cmd/probe runs the agent by default: the automatic memory limit
	// (it decides how often the GC runs) and text logs at info, so that
	// what is not logged costs what it costs there.
	limit, err := memlimit.Parse("auto")
	if err != nil {
		b.Fatal(err)
	}
	policy, err := memlimit.Apply(limit, os.Getenv)
	if err != nil {
		b.Logf("memory limit: %v", err) // GOGC or GOMEMLIMIT set: the environment decides, as in production
	}
	defer policy.Stop()
	a, err := New(Options{ConfigFile: file, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		b.Fatal(err)
	}
	warm, total := int64(2*n), int64(2*n+b.N)
	scrapeEvery := int64(10 * n)
	var runs, down atomic.Int64
	warmed, done := make(chan struct{}), make(chan struct{})
	scrape := make(chan struct{}, 1)
	a.recorded = func(_ *probe.Check, rs []probe.Result) {
		for _, r := range rs {
			if !r.Up {
				down.Add(1)
			}
		}
		switch k := runs.Add(1); {
		case k == warm:
			close(warmed)
		case k == total:
			close(done)
		case k > warm && (k-warm)%scrapeEvery == 0:
			select {
			case scrape <- struct{}{}:
			default:
			}
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stopScrapes := make(chan struct{})
	scraped := make(chan struct{})
	go func() {
		defer close(scraped)
		for {
			select {
			case <-scrape:
				scrapeOnce(b, a.Handler())
			case <-stopScrapes:
				return
			}
		}
	}()
	a.sched.Start(ctx)
	wait := func(ch chan struct{}, what string, within time.Duration) {
		select {
		case <-ch:
		case <-time.After(within):
			b.Fatalf("%s: %d runs after %s", what, runs.Load(), within)
		}
	}
	wait(warmed, "warm-up", 30*time.Second)
	b.ReportAllocs()
	b.ResetTimer()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	cpu0, gc0 := cpuTime(b), ms.NumGC
	wait(done, "probes", time.Duration(b.N)*time.Second/time.Duration(n)*4+30*time.Second)
	cpu := cpuTime(b) - cpu0
	runtime.ReadMemStats(&ms)
	b.StopTimer()
	close(stopScrapes)
	<-scraped
	a.sched.Stop()
	if d := down.Load(); d > 0 {
		b.Fatalf("%d results down: the benchmark measures working probes", d)
	}
	b.ReportMetric(float64(cpu.Nanoseconds())/1000/float64(b.N), "cpu-us/probe")
	b.ReportMetric(float64(ms.NumGC-gc0)*1000/float64(b.N), "gc/1000probes")
}

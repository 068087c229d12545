//go:build linux

// Command sidebyside measures connprobe against Prometheus blackbox_exporter
// on the same targets: TCP and TLS listeners on many addresses inside a
// network namespace it creates (no packet leaves it), 16 probes in flight,
// the CPU seconds of each process from /proc/PID/stat over the same probes,
// peak RSS (VmHWM), series per check and scrape time, and the ratios. With
// -scale N it also loads N TCP checks at the default interval and cap and
// reports load time, RSS, overruns and scrape time. -phases picks some of
// the phases (tcp, tls, classic, idle, scale) to measure one lever at a
// time without the other minutes; -blackbox none leaves blackbox_exporter out.
//
// It needs root and the ip command; blackbox_exporter is optional (Debian:
// prometheus-blackbox-exporter). Run it with bench/sidebyside.sh, which
// builds the agent first. Every phase is bounded in time, and the namespace
// and every process are removed on exit, on an error and on SIGINT/SIGTERM.
package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// serverName is the name in the benchmark's certificate; both tools verify it.
const serverName = "bench.connprobe.test"

const (
	tcpPort   = 7000
	tlsPort   = 7443
	agentAddr = "127.0.0.1:19469"
	bbAddr    = "127.0.0.1:19115"
	inflight  = 16 // probes in flight: connprobe's default cap, and the driver's workers for blackbox
	clkTck    = 100
	// promPerTarget is the series Prometheus adds to every scrape target
	// (up, scrape_duration_seconds, scrape_samples_scraped,
	// scrape_samples_post_metric_relabeling, scrape_series_added): one
	// target per check with blackbox_exporter, one per site with connprobe.
	promPerTarget = 5
)

type options struct {
	agent, blackbox string
	hosts           int
	interval        time.Duration
	window          time.Duration
	scale           int
	scaleWait       time.Duration
	jsonOut         bool
	// phases are the phases to run, a subset of allPhases.
	phases map[string]bool
}

// allPhases are the phases in the order they run: connprobe's TCP, TLS
// and tls/classic phases (the first two with blackbox_exporter's beside
// them), the idle agent with every built-in profile, and the scale phase.
var allPhases = []string{"tcp", "tls", "classic", "idle", "scale"}

func main() {
	var o options
	flag.StringVar(&o.agent, "agent", "", "connprobe binary (required)")
	flag.StringVar(&o.blackbox, "blackbox", "", "blackbox_exporter binary; empty: looked up in PATH, skipped when absent; none: skipped")
	flag.IntVar(&o.hosts, "hosts", 200, "target addresses (each gets a TCP and a TLS check)")
	flag.DurationVar(&o.interval, "interval", time.Second, "interval of every check; the blackbox driver probes at the same rate")
	flag.DurationVar(&o.window, "window", 20*time.Second, "measuring window of each phase")
	flag.IntVar(&o.scale, "scale", 0, "also load this many TCP checks at the default interval (0: skip)")
	flag.DurationVar(&o.scaleWait, "scale.wait", 75*time.Second, "how long the scale phase runs before it is measured (at least the 60s default interval)")
	flag.BoolVar(&o.jsonOut, "json", false, "print the report as JSON")
	phases := flag.String("phases", strings.Join(allPhases, ","), "comma-separated phases to run: "+strings.Join(allPhases, ", ")+" (scale only with -scale N)")
	inside := flag.Bool("inside", false, "internal: run the phases (in the namespace)")
	flag.Parse()
	explicit := false
	flag.Visit(func(f *flag.Flag) { explicit = explicit || f.Name == "phases" })
	if err := o.check(*phases, explicit); err != nil {
		fmt.Fprintln(os.Stderr, "sidebyside:", err)
		os.Exit(2)
	}
	var err error
	if *inside {
		err = runInside(o)
	} else {
		err = runOutside(o)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "sidebyside:", err)
		os.Exit(1)
	}
}

// check validates o and sets o.phases from the -phases value; explicit
// says -phases was given (its default names scale, which then runs only
// with -scale N).
func (o *options) check(phases string, explicit bool) error {
	if o.agent == "" {
		return errors.New("-agent is required")
	}
	o.phases = map[string]bool{}
	for p := range strings.SplitSeq(phases, ",") {
		p = strings.TrimSpace(p)
		if !slices.Contains(allPhases, p) {
			return fmt.Errorf("-phases: unknown phase %q (want some of %s)", p, strings.Join(allPhases, ","))
		}
		o.phases[p] = true
	}
	if o.phases["scale"] && o.scale == 0 && explicit {
		return errors.New("-phases scale needs -scale N")
	}
	if o.hosts < 1 || o.hosts > 60000 || o.scale < 0 || o.scale > 200000 {
		return errors.New("-hosts must be 1..60000 and -scale 0..200000")
	}
	if o.interval < time.Second || o.window < 5*time.Second || o.window > 10*time.Minute {
		return errors.New("-interval must be at least 1s and -window 5s..10m")
	}
	switch o.blackbox {
	case "none":
		o.blackbox = ""
	case "":
		for _, name := range []string{"blackbox_exporter", "prometheus-blackbox-exporter"} {
			if p, err := exec.LookPath(name); err == nil {
				o.blackbox = p
				break
			}
		}
	}
	return nil
}

// addrs are the target addresses: 10.201.0.0/16 upwards.
func addrs(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("10.%d.%d.%d", 201+(i+1)/65536, ((i+1)/256)%256, (i+1)%256)
	}
	return out
}

// runOutside creates the namespace, reruns this program inside it and
// removes the namespace again, whatever happens.
func runOutside(o options) error {
	if os.Geteuid() != 0 {
		return errors.New("needs root (network namespaces)")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		return errors.New("needs the ip command (iproute2)")
	}
	ns := fmt.Sprintf("cpbench-%d", os.Getpid())
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	defer func() {
		if out, err := exec.Command("ip", "netns", "del", ns).CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "sidebyside: removing namespace %s: %v %s\n", ns, err, out)
		}
	}()
	if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
		return fmt.Errorf("ip netns add: %v %s", err, out)
	}
	n := max(o.hosts, (o.scale+3)/4)
	var batch strings.Builder
	batch.WriteString("link set lo up\n")
	for _, a := range addrs(n) {
		fmt.Fprintf(&batch, "addr add %s/32 dev lo\n", a)
	}
	cmd := exec.CommandContext(ctx, "ip", "-n", ns, "-batch", "-")
	cmd.Stdin = strings.NewReader(batch.String())
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("setting up addresses: %v %s", err, out)
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	args := append([]string{"netns", "exec", ns, self, "-inside"}, os.Args[1:]...)
	// Bound the whole run: phases, warm-ups and the scale wait, with margin.
	limit := 4*(o.window+40*time.Second) + 3*time.Minute + idleWait
	if o.scale > 0 {
		limit += o.scaleWait + 2*time.Minute
	}
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	in := exec.CommandContext(ctx, "ip", args...)
	in.Stdout, in.Stderr = os.Stdout, os.Stderr
	in.Cancel = func() error { return in.Process.Signal(syscall.SIGTERM) }
	in.WaitDelay = 20 * time.Second
	return in.Run()
}

// report is what one run measured.
type report struct {
	Hosts    int           `json:"hosts"`
	Interval time.Duration `json:"interval_ns"`
	Window   time.Duration `json:"window_ns"`
	Phases   []phase       `json:"phases"`
	Scale    *scaleReport  `json:"scale,omitempty"`
	Idle     *idleReport   `json:"idle,omitempty"`
}

// idleReport is the agent with every built-in profile enabled (required
// params pointing into the namespace, where nothing answers).
type idleReport struct {
	Profiles   int     `json:"profiles"`
	Checks     int     `json:"checks"`
	RSSMiB     float64 `json:"rss_mib"`
	PeakRSSMiB float64 `json:"peak_rss_mib"`
	Series     int     `json:"series"`
	// The RSS split: the process's own memory (heap, stacks) and the
	// mapped pages of its binary and libraries.
	RSSAnonMiB float64 `json:"rss_anon_mib"`
	RSSFileMiB float64 `json:"rss_file_mib"`
}

type phase struct {
	Tool          string  `json:"tool"` // connprobe or blackbox_exporter
	Kind          string  `json:"kind"` // tcp, tls or tls/classic (connprobe only)
	Probes        int     `json:"probes"`
	CPUSeconds    float64 `json:"cpu_seconds"`
	CPUPerProbeMs float64 `json:"cpu_per_probe_ms"`
	PeakRSSMiB    float64 `json:"peak_rss_mib"` // VmHWM over the window: while probing
	// StartPeakRSSMiB is VmHWM from the start to the window: loading,
	// warming up (connprobe's warm-up polls /metrics every 20 ms, far more
	// often than any Prometheus) and the first probes.
	StartPeakRSSMiB float64 `json:"peak_rss_since_start_mib"`
	SeriesPerCheck  float64 `json:"series_per_check"`
	ScrapeSeconds   float64 `json:"scrape_seconds"` // connprobe: one /metrics; blackbox: mean /probe request
	ScrapeBytes     int     `json:"scrape_bytes"`
	Failed          int     `json:"failed"`
	ProbesPerSecond float64 `json:"probes_per_second"`
	// KeyExchange is the TLS key exchange the listeners negotiated with
	// most handshakes of the window (and its share), as the server saw it.
	KeyExchange string `json:"key_exchange,omitempty"`
}

type scaleReport struct {
	Checks         int     `json:"checks"`
	LoadSeconds    float64 `json:"load_seconds"`
	Runs           int     `json:"runs"`
	Overruns       int     `json:"overruns"`
	Down           int     `json:"down"`
	ScrapeSeconds  float64 `json:"scrape_seconds"`
	ScrapeBytes    int     `json:"scrape_bytes"`
	Series         int     `json:"series"`
	RSSMiB         float64 `json:"rss_mib"`
	PeakRSSMiB     float64 `json:"peak_rss_mib"`
	IdleRSSMiB     float64 `json:"idle_rss_mib"` // right after loading, before the first runs
	CPUSeconds     float64 `json:"cpu_seconds"`
	WaitedSeconds  float64 `json:"waited_seconds"`
	SeriesPerCheck float64 `json:"series_per_check"`
	RSSAnonMiB     float64 `json:"rss_anon_mib"` // of RSSMiB
	RSSFileMiB     float64 `json:"rss_file_mib"`
}

func runInside(o options) error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	dir, err := os.MkdirTemp("", "sidebyside")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	caFile, cert, err := makePKI(dir)
	if err != nil {
		return err
	}
	kex := &keyExchanges{}
	if err := serve(ctx, cert, kex); err != nil {
		return err
	}
	rep := report{Hosts: o.hosts, Interval: o.interval, Window: o.window}
	for _, kind := range []string{"tcp", "tls", tlsClassic} {
		if !o.phases[strings.TrimPrefix(kind, "tls/")] {
			continue
		}
		p, err := measureAgent(ctx, o, dir, caFile, kind, kex)
		if err != nil {
			return fmt.Errorf("connprobe %s: %w", kind, err)
		}
		rep.Phases = append(rep.Phases, p)
		if o.blackbox == "" || kind == tlsClassic {
			continue
		}
		p, err = measureBlackbox(ctx, o, dir, caFile, kind, kex)
		if err != nil {
			return fmt.Errorf("blackbox_exporter %s: %w", kind, err)
		}
		rep.Phases = append(rep.Phases, p)
	}
	if o.phases["idle"] {
		idle, err := measureIdle(ctx, o, dir)
		if err != nil {
			return fmt.Errorf("idle: %w", err)
		}
		rep.Idle = idle
	}
	if o.phases["scale"] && o.scale > 0 {
		s, err := measureScale(ctx, o, dir)
		if err != nil {
			return fmt.Errorf("scale: %w", err)
		}
		rep.Scale = s
	}
	if o.jsonOut {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	printReport(os.Stdout, o, rep)
	return nil
}

// makePKI writes a CA file and returns a leaf for serverName signed by it:
// ECDSA P-256 throughout, as the TLS figure specifies.
func makePKI(dir string) (string, tls.Certificate, error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", tls.Certificate{}, err
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Bench Root CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true, IsCA: true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return "", tls.Certificate{}, err
	}
	leafKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", tls.Certificate{}, err
	}
	leafTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: serverName}, DNSNames: []string{serverName},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		return "", tls.Certificate{}, err
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leafTmpl, caCert, &leafKey.PublicKey, caKey)
	if err != nil {
		return "", tls.Certificate{}, err
	}
	caFile := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), 0o644); err != nil {
		return "", tls.Certificate{}, err
	}
	return caFile, tls.Certificate{Certificate: [][]byte{leafDER}, PrivateKey: leafKey}, nil
}

// serve listens on every address of the namespace (wildcard) on the TCP
// port (accept and close), the TLS port (handshake, then close) and, for the
// scale phase, three more TCP ports. Listeners live until ctx ends.
func serve(ctx context.Context, cert tls.Certificate, kex *keyExchanges) error {
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS13}
	handlers := map[int]func(net.Conn){
		tlsPort: func(c net.Conn) {
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(5 * time.Second))
			tc := tls.Server(c, cfg)
			if tc.Handshake() == nil {
				kex.add(tc.ConnectionState().CurveID)
				_, _ = io.Copy(io.Discard, tc)
			}
		},
	}
	for p := tcpPort; p < tcpPort+4; p++ {
		handlers[p] = func(c net.Conn) { c.Close() }
	}
	for port, h := range handlers {
		ln, err := net.Listen("tcp4", "0.0.0.0:"+strconv.Itoa(port))
		if err != nil {
			return err
		}
		go func() {
			<-ctx.Done()
			ln.Close()
		}()
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					if ctx.Err() != nil {
						return
					}
					continue
				}
				go h(c)
			}
		}()
	}
	return nil
}

// keyExchanges counts the TLS listeners' handshakes by key exchange, so
// the report says which one each tool's probes made instead of assuming it.
type keyExchanges struct {
	mu sync.Mutex
	n  map[tls.CurveID]int
}

func (k *keyExchanges) add(id tls.CurveID) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.n == nil {
		k.n = map[tls.CurveID]int{}
	}
	k.n[id]++
}

func (k *keyExchanges) snapshot() map[tls.CurveID]int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return maps.Clone(k.n)
}

// since names the key exchange of most handshakes after before was taken,
// with its share: "X25519MLKEM768 (100%)"; empty when there were none.
func (k *keyExchanges) since(before map[tls.CurveID]int) string {
	var top tls.CurveID
	topN, all := 0, 0
	for id, n := range k.snapshot() {
		n -= before[id]
		all += n
		if n > topN {
			top, topN = id, n
		}
	}
	if all == 0 {
		return ""
	}
	return fmt.Sprintf("%s (%.0f%%)", top, 100*float64(topN)/float64(all))
}

func portOf(kind string) int {
	if kind == "tls" {
		return tlsPort
	}
	return tcpPort
}

// proc is a started process whose output goes to a log file.
type proc struct {
	cmd  *exec.Cmd
	done chan error
	log  string
}

func start(dir, name string, args ...string) (*proc, error) {
	return startWith(dir, nil, name, args...)
}

// startWith is start with env added to this process's environment.
func startWith(dir string, env []string, name string, args ...string) (*proc, error) {
	logPath := filepath.Join(dir, filepath.Base(name)+".log")
	f, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(name, args...)
	if env != nil {
		cmd.Env = append(os.Environ(), env...)
	}
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, err
	}
	p := &proc{cmd: cmd, done: make(chan error, 1), log: logPath}
	go func() {
		p.done <- cmd.Wait()
		f.Close()
	}()
	return p, nil
}

// stop ends the process: SIGTERM, then SIGKILL after 10s.
func (p *proc) stop() {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

func (p *proc) tail() string {
	b, _ := os.ReadFile(p.log)
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(b)
}

// cpuSeconds is user plus system time of pid, from /proc/PID/stat.
func cpuSeconds(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// Fields after the command name, which is in parentheses and may hold spaces.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, errors.New("unexpected /proc stat format")
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return 0, errors.New("unexpected /proc stat format")
	}
	utime, err1 := strconv.ParseFloat(f[11], 64) // field 14
	stime, err2 := strconv.ParseFloat(f[12], 64) // field 15
	if err1 != nil || err2 != nil {
		return 0, errors.New("unexpected /proc stat values")
	}
	return (utime + stime) / clkTck, nil
}

// windowPeak returns the process's peak RSS so far (VmHWM) and starts a new
// one: the kernel resets VmHWM to the current RSS when 5 is written to
// clear_refs (proc(5)), so the next VmHWM is the peak of what follows.
func windowPeak(pid int) (float64, error) {
	peak, err := statusMiB(pid, "VmHWM")
	if err != nil {
		return 0, err
	}
	return peak, os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0)
}

// statusMiB reads a kB field (VmHWM, VmRSS, RssAnon, RssFile) of /proc/PID/status in MiB.
func statusMiB(pid int, field string) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for line := range strings.Lines(string(b)) {
		if rest, ok := strings.CutPrefix(line, field+":"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
			return kb / 1024, err
		}
	}
	return 0, fmt.Errorf("no %s in /proc/%d/status", field, pid)
}

var client = &http.Client{Timeout: 30 * time.Second}

// get fetches url and returns its body and how long it took.
func get(ctx context.Context, url string) (string, time.Duration, error) {
	var buf bytes.Buffer
	return getInto(ctx, url, &buf)
}

// getInto is get reading into buf, emptied first: a buffer kept from the
// previous scrape of the same size means the time is the agent's answer
// and the decompression (as Prometheus does it), not the client growing a
// 15 MB buffer by doubling, which cost this client up to 120 ms of page
// faults per 10,000-check scrape.
func getInto(ctx context.Context, url string, buf *bytes.Buffer) (string, time.Duration, error) {
	buf.Reset()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", 0, err
	}
	begin := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		return "", 0, err
	}
	defer resp.Body.Close()
	_, err = buf.ReadFrom(io.LimitReader(resp.Body, 1<<30))
	took := time.Since(begin)
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("%s: %s", url, resp.Status)
	}
	return buf.String(), took, err
}

// exposition is a parsed text-format scrape: values summed by metric name
// (with label filter), and the number of series.
type exposition struct{ lines []string }

func (e exposition) series(prefix string) int {
	n := 0
	for _, l := range e.lines {
		if strings.HasPrefix(l, prefix) {
			n++
		}
	}
	return n
}

// sum adds the values of the series of name whose labels contain every part.
func (e exposition) sum(name string, parts ...string) float64 {
	var total float64
	for _, l := range e.lines {
		if !strings.HasPrefix(l, name+"{") && !strings.HasPrefix(l, name+" ") {
			continue
		}
		if !allIn(l, parts) {
			continue
		}
		if v, err := strconv.ParseFloat(l[strings.LastIndexByte(l, ' ')+1:], 64); err == nil {
			total += v
		}
	}
	return total
}

func allIn(s string, parts []string) bool {
	for _, p := range parts {
		if !strings.Contains(s, p) {
			return false
		}
	}
	return true
}

func parse(body string) exposition {
	var e exposition
	for l := range strings.Lines(body) {
		l = strings.TrimSpace(l)
		if l != "" && !strings.HasPrefix(l, "#") {
			e.lines = append(e.lines, l)
		}
	}
	return e
}

// scrapeAgent fetches the agent's /metrics into buf (see getInto).
func scrapeAgent(ctx context.Context, buf *bytes.Buffer) (exposition, time.Duration, int, error) {
	body, took, err := getInto(ctx, "http://"+agentAddr+"/metrics", buf)
	return parse(body), took, len(body), err
}

func writeAgentConfig(dir string, checks []string, defaults string) (string, error) {
	var b strings.Builder
	b.WriteString("defaults:\n" + defaults + "checks:\n")
	for _, c := range checks {
		b.WriteString(c)
	}
	path := filepath.Join(dir, "connprobe.yml")
	return path, os.WriteFile(path, []byte(b.String()), 0o644)
}

// waitFor polls cond every 20ms until it holds, ctx ends or limit passes.
func waitFor(ctx context.Context, limit time.Duration, what string, cond func() bool) error {
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out after %s waiting for %s", limit, what)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	return nil
}

// tlsClassic is the agent's TLS phase again with the key exchanges of Go
// before 1.24 (GODEBUG tlsmlkem=0, tlssecpmlkem=0: no post-quantum hybrid),
// the handshake blackbox_exporter 0.23 (Go 1.19) makes: like for like.
const tlsClassic = "tls/classic"

func measureAgent(ctx context.Context, o options, dir, caFile, variant string, kex *keyExchanges) (phase, error) {
	var buf bytes.Buffer
	p := phase{Tool: "connprobe", Kind: variant}
	kind, env := variant, []string(nil)
	if variant == tlsClassic {
		kind, env = "tls", []string{"GODEBUG=tlsmlkem=0,tlssecpmlkem=0"}
	}
	var checks []string
	for i, a := range addrs(o.hosts) {
		c := fmt.Sprintf("  - {name: %s-%d, kind: %s, host: %s, port: %d", kind, i, kind, a, portOf(kind))
		if kind == "tls" {
			c += fmt.Sprintf(", tls: {ca_file: %s, server_name: %s}", caFile, serverName)
		}
		checks = append(checks, c+"}\n")
	}
	timeout := min(2*time.Second, o.interval-o.interval/10)
	cfg, err := writeAgentConfig(dir, checks, fmt.Sprintf("  interval: %s\n  timeout: %s\n  ip_family: ipv4\n", o.interval, timeout))
	if err != nil {
		return p, err
	}
	ag, err := startWith(dir, env, o.agent, "--config.file", cfg, "--web.listen-address", agentAddr)
	if err != nil {
		return p, err
	}
	defer ag.stop()
	pid := ag.cmd.Process.Pid
	want := float64(o.hosts)
	// Warm up: every check has run at least twice, so every series exists.
	var e exposition
	err = waitFor(ctx, 2*o.interval+30*time.Second, "every check to run twice", func() bool {
		e, _, _, err = scrapeAgent(ctx, &buf)
		return err == nil && e.sum("connprobe_check_runs_total") >= 2*want
	})
	if err != nil {
		return p, fmt.Errorf("%w\n%s", err, ag.tail())
	}
	if p.StartPeakRSSMiB, err = windowPeak(pid); err != nil {
		return p, err
	}
	kex0 := kex.snapshot()
	cpu0, err := cpuSeconds(pid)
	if err != nil {
		return p, err
	}
	e0, _, _, err := scrapeAgent(ctx, &buf)
	if err != nil {
		return p, err
	}
	if err := sleep(ctx, o.window); err != nil {
		return p, err
	}
	e1, took, size, err := scrapeAgent(ctx, &buf)
	if err != nil {
		return p, err
	}
	cpu1, err := cpuSeconds(pid)
	if err != nil {
		return p, err
	}
	p.Probes = int(e1.sum("connprobe_check_runs_total") - e0.sum("connprobe_check_runs_total"))
	p.Failed = int(want - e1.sum("connprobe_check_up"))
	p.CPUSeconds = cpu1 - cpu0
	p.KeyExchange = kex.since(kex0)
	if p.Probes > 0 {
		p.CPUPerProbeMs = 1000 * p.CPUSeconds / float64(p.Probes)
	}
	p.ProbesPerSecond = float64(p.Probes) / o.window.Seconds()
	p.ScrapeSeconds, p.ScrapeBytes = took.Seconds(), size
	p.SeriesPerCheck = float64(e1.series("connprobe_check_")+e1.series("connprobe_tls_")) / want
	p.PeakRSSMiB, err = statusMiB(pid, "VmHWM")
	if p.Failed != 0 {
		return p, fmt.Errorf("%d of %d checks down: the benchmark measures working probes\n%s", p.Failed, o.hosts, ag.tail())
	}
	return p, err
}

func sleep(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}

func measureBlackbox(ctx context.Context, o options, dir, caFile, kind string, kex *keyExchanges) (phase, error) {
	p := phase{Tool: "blackbox_exporter", Kind: kind}
	conf := fmt.Sprintf(`modules:
  tcp:
    prober: tcp
    timeout: 2s
    tcp: {preferred_ip_protocol: ip4}
  tls:
    prober: tcp
    timeout: 2s
    tcp:
      preferred_ip_protocol: ip4
      tls: true
      tls_config: {ca_file: %s, server_name: %s}
`, caFile, serverName)
	cfg := filepath.Join(dir, "blackbox.yml")
	if err := os.WriteFile(cfg, []byte(conf), 0o644); err != nil {
		return p, err
	}
	bb, err := start(dir, o.blackbox, "--config.file", cfg, "--web.listen-address", bbAddr)
	if err != nil {
		return p, err
	}
	defer bb.stop()
	pid := bb.cmd.Process.Pid
	err = waitFor(ctx, 30*time.Second, "blackbox_exporter to listen", func() bool {
		_, _, err := get(ctx, "http://"+bbAddr+"/-/healthy")
		return err == nil
	})
	if err != nil {
		return p, fmt.Errorf("%w\n%s", err, bb.tail())
	}
	targets := addrs(o.hosts)
	url := func(a string) string {
		return fmt.Sprintf("http://%s/probe?module=%s&target=%s:%d", bbAddr, kind, a, portOf(kind))
	}
	// Warm up: every target twice, as connprobe's warm-up.
	var last string
	for range 2 {
		for _, a := range targets {
			if last, _, err = get(ctx, url(a)); err != nil {
				return p, err
			}
		}
	}
	e := parse(last)
	if e.sum("probe_success") != 1 {
		return p, fmt.Errorf("blackbox probe failed:\n%s", last)
	}
	p.SeriesPerCheck = float64(len(e.lines))
	if p.StartPeakRSSMiB, err = windowPeak(pid); err != nil {
		return p, err
	}
	kex0 := kex.snapshot()
	cpu0, err := cpuSeconds(pid)
	if err != nil {
		return p, err
	}
	probes, failed, took := drive(ctx, o, targets, url)
	cpu1, err := cpuSeconds(pid)
	if err != nil {
		return p, err
	}
	p.Probes, p.Failed = probes, failed
	p.CPUSeconds = cpu1 - cpu0
	p.KeyExchange = kex.since(kex0)
	if probes > 0 {
		p.CPUPerProbeMs = 1000 * p.CPUSeconds / float64(probes)
		p.ScrapeSeconds = took.Seconds() / float64(probes)
	}
	p.ProbesPerSecond = float64(probes) / o.window.Seconds()
	p.ScrapeBytes = len(last)
	p.PeakRSSMiB, err = statusMiB(pid, "VmHWM")
	if failed != 0 {
		return p, fmt.Errorf("%d of %d blackbox probes failed", failed, probes)
	}
	return p, err
}

// drive asks blackbox_exporter for one probe per target per interval, as a
// Prometheus scraping each target at that interval would, with at most
// inflight requests at once, for the window. It returns the probes done,
// those that failed and the summed request time.
func drive(ctx context.Context, o options, targets []string, url func(string) string) (probes, failed int, took time.Duration) {
	ctx, cancel := context.WithTimeout(ctx, o.window)
	defer cancel()
	jobs := make(chan string)
	var (
		nProbes, nFailed atomic.Int64
		total            atomic.Int64
		wg               sync.WaitGroup
	)
	for range inflight {
		wg.Go(func() {
			for a := range jobs {
				body, d, err := get(context.Background(), url(a))
				nProbes.Add(1)
				total.Add(int64(d))
				if err != nil || !strings.Contains(body, "\nprobe_success 1") {
					nFailed.Add(1)
				}
			}
		})
	}
	gap := o.interval / time.Duration(len(targets))
	next := time.Now()
feed:
	for i := 0; ; i++ {
		next = next.Add(gap)
		select {
		case <-ctx.Done():
			break feed
		case <-time.After(time.Until(next)):
		}
		select {
		case jobs <- targets[i%len(targets)]:
		case <-ctx.Done():
			break feed
		}
	}
	close(jobs)
	wg.Wait()
	return int(nProbes.Load()), int(nFailed.Load()), time.Duration(total.Load())
}

// measureScale loads o.scale TCP checks (four ports per address) at the
// default interval and cap, and measures load time, memory, overruns and a
// scrape after every check had time to run once.
func measureScale(ctx context.Context, o options, dir string) (*scaleReport, error) {
	var buf bytes.Buffer
	s := &scaleReport{Checks: o.scale}
	hosts := addrs((o.scale + 3) / 4)
	checks := make([]string, 0, o.scale)
	for i := range o.scale {
		checks = append(checks, fmt.Sprintf("  - {name: s%d, kind: tcp, host: %s, port: %d}\n", i, hosts[i/4], tcpPort+i%4))
	}
	cfg, err := writeAgentConfig(dir, checks, "  ip_family: ipv4\n")
	if err != nil {
		return nil, err
	}
	begin := time.Now()
	ag, err := start(dir, o.agent, "--config.file", cfg, "--web.listen-address", agentAddr)
	if err != nil {
		return nil, err
	}
	defer ag.stop()
	pid := ag.cmd.Process.Pid
	err = waitFor(ctx, 60*time.Second, "the agent to load and serve", func() bool {
		_, _, err := get(ctx, "http://"+agentAddr+"/-/healthy")
		return err == nil
	})
	if err != nil {
		return nil, fmt.Errorf("%w\n%s", err, ag.tail())
	}
	s.LoadSeconds = time.Since(begin).Seconds()
	s.IdleRSSMiB, _ = statusMiB(pid, "VmRSS")
	if err := sleep(ctx, o.scaleWait-time.Since(begin)); err != nil {
		return nil, err
	}
	s.WaitedSeconds = time.Since(begin).Seconds()
	var times []time.Duration
	var e exposition
	// One scrape first, so the three measured read into a buffer of their
	// size, as a Prometheus reuses its buffers from scrape to scrape.
	if _, _, _, err := scrapeAgent(ctx, &buf); err != nil {
		return nil, err
	}
	for range 3 {
		var took time.Duration
		e, took, s.ScrapeBytes, err = scrapeAgent(ctx, &buf)
		if err != nil {
			return nil, err
		}
		times = append(times, took)
	}
	slices.Sort(times)
	s.ScrapeSeconds = times[1].Seconds()
	s.Series = len(e.lines)
	s.SeriesPerCheck = float64(e.series("connprobe_check_")) / float64(o.scale)
	s.Runs = int(e.sum("connprobe_check_runs_total"))
	s.Overruns = int(e.sum("connprobe_check_overruns_total"))
	s.Down = int(float64(o.scale) - e.sum("connprobe_check_up"))
	s.RSSMiB, _ = statusMiB(pid, "VmRSS")
	s.RSSAnonMiB, _ = statusMiB(pid, "RssAnon")
	s.RSSFileMiB, _ = statusMiB(pid, "RssFile")
	s.PeakRSSMiB, _ = statusMiB(pid, "VmHWM")
	s.CPUSeconds, _ = cpuSeconds(pid)
	return s, nil
}

// measureIdle runs the agent with every built-in profile, each required param
// set to the namespace's first address, for idleWait, and reads its memory.
func measureIdle(ctx context.Context, o options, dir string) (*idleReport, error) {
	var buf bytes.Buffer
	out, err := exec.CommandContext(ctx, o.agent, "profiles", "-o", "json").Output()
	if err != nil {
		return nil, fmt.Errorf("connprobe profiles: %w", err)
	}
	var cat struct {
		Profiles []struct {
			Name     string   `json:"name"`
			Required []string `json:"required_params"`
		} `json:"profiles"`
	}
	if err := json.Unmarshal(out, &cat); err != nil {
		return nil, err
	}
	args := []string{"--web.listen-address", agentAddr}
	for _, p := range cat.Profiles {
		args = append(args, "--profile", p.Name)
		for _, r := range p.Required {
			args = append(args, "--param", p.Name+"."+r+"="+addrs(1)[0])
		}
	}
	ag, err := start(dir, o.agent, args...)
	if err != nil {
		return nil, err
	}
	defer ag.stop()
	pid := ag.cmd.Process.Pid
	err = waitFor(ctx, 30*time.Second, "the agent to serve", func() bool {
		_, _, err := get(ctx, "http://"+agentAddr+"/-/healthy")
		return err == nil
	})
	if err != nil {
		return nil, fmt.Errorf("%w\n%s", err, ag.tail())
	}
	if err := sleep(ctx, idleWait); err != nil {
		return nil, err
	}
	e, _, _, err := scrapeAgent(ctx, &buf)
	if err != nil {
		return nil, err
	}
	r := &idleReport{Profiles: len(cat.Profiles), Checks: int(e.sum("connprobe_checks_configured")), Series: len(e.lines)}
	r.RSSMiB, _ = statusMiB(pid, "VmRSS")
	r.RSSAnonMiB, _ = statusMiB(pid, "RssAnon")
	r.RSSFileMiB, _ = statusMiB(pid, "RssFile")
	r.PeakRSSMiB, _ = statusMiB(pid, "VmHWM")
	return r, nil
}

// idleWait is how long the idle agent runs before its memory is read.
const idleWait = 30 * time.Second

func printReport(w io.Writer, o options, rep report) {
	fmt.Fprintf(w, "%d addresses, one check each per kind, interval %s, window %s, %d probes in flight\n\n",
		rep.Hosts, o.interval, o.window, inflight)
	fmt.Fprintf(w, "%-18s %-11s %8s %9s %10s %10s %9s %9s %12s %10s  %s\n",
		"tool", "kind", "probes", "probes/s", "cpu s", "cpu/probe", "peak RSS", "(start)", "series/check", "scrape", "key exchange")
	by := map[string]phase{}
	for _, p := range rep.Phases {
		by[p.Tool+"/"+p.Kind] = p
		fmt.Fprintf(w, "%-18s %-11s %8d %9.1f %10.2f %8.3fms %6.1fMiB %6.1fMiB %12.1f %8.1fms  %s\n",
			p.Tool, p.Kind, p.Probes, p.ProbesPerSecond, p.CPUSeconds, p.CPUPerProbeMs, p.PeakRSSMiB, p.StartPeakRSSMiB, p.SeriesPerCheck, 1000*p.ScrapeSeconds, p.KeyExchange)
	}
	fmt.Fprintln(w, "(peak RSS: VmHWM over the window, while probing; (start): from the start to the window, warm-up included.")
	fmt.Fprintln(w, " scrape: connprobe one /metrics of all checks of the kind; blackbox_exporter the mean /probe request.")
	fmt.Fprintf(w, " series: blackbox_exporter's /probe lines; Prometheus stores %d more per target: up, scrape_*.\n", promPerTarget)
	fmt.Fprintln(w, " tls/classic: connprobe with GODEBUG=tlsmlkem=0,tlssecpmlkem=0, the key exchange blackbox_exporter's Go 1.19 makes)")
	for _, pair := range [][2]string{{"tcp", "tcp"}, {"tls", "tls"}, {tlsClassic, "tls"}} {
		c, okC := by["connprobe/"+pair[0]]
		b, okB := by["blackbox_exporter/"+pair[1]]
		if !okC || !okB || b.CPUPerProbeMs == 0 || b.PeakRSSMiB == 0 {
			continue
		}
		fmt.Fprintf(w, "ratio connprobe/blackbox %s: cpu per probe %.2fx, peak RSS %.2fx, series per check %.2fx (stored: %.2fx)\n",
			pair[0], c.CPUPerProbeMs/b.CPUPerProbeMs, c.PeakRSSMiB/b.PeakRSSMiB, c.SeriesPerCheck/b.SeriesPerCheck,
			c.SeriesPerCheck/(b.SeriesPerCheck+promPerTarget))
	}
	if i := rep.Idle; i != nil {
		fmt.Fprintf(w, "\nidle: all %d built-in profiles (%d checks), after %s: RSS %.1fMiB (anon %.1f, file %.1f; peak %.1fMiB), %d series\n",
			i.Profiles, i.Checks, idleWait, i.RSSMiB, i.RSSAnonMiB, i.RSSFileMiB, i.PeakRSSMiB, i.Series)
	}
	if s := rep.Scale; s != nil {
		fmt.Fprintf(w, "\nscale: %d TCP checks, default interval and cap: serving after %.2fs, RSS %.1fMiB after load, "+
			"after %.0fs: %d runs, %d overruns, %d down, RSS %.1fMiB (anon %.1f, file %.1f; peak %.1fMiB), one scrape %.0fms (%d bytes, %d series, %.1f per check), cpu %.1fs\n",
			s.Checks, s.LoadSeconds, s.IdleRSSMiB, s.WaitedSeconds, s.Runs, s.Overruns, s.Down, s.RSSMiB, s.RSSAnonMiB, s.RSSFileMiB, s.PeakRSSMiB,
			1000*s.ScrapeSeconds, s.ScrapeBytes, s.Series, s.SeriesPerCheck, s.CPUSeconds)
	}
}

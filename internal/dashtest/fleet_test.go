//go:build linux

package dashtest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/connprobe/connprobe/internal/netlab"
)

// The fleet test's timing. The shipped rules wait minutes (`for: 5m`); the
// test shortens every `for:` to fleetFor and the central Prometheus'
// lookback to fleetLookback, so that a silent site is noticed in seconds.
const (
	fleetScrape   = "2s" // substituted for the shipped 30s scrape interval
	fleetInterval = 2 * time.Second
	fleetFor      = "4s"
	fleetLookback = "20s"
	// fleetWait bounds each wait for the central side to see something.
	fleetWait = 75 * time.Second
)

// fleetSites are the sites' names (the site label), one namespace each.
var fleetSites = []string{"site-a", "site-b", "site-c"}

// fleetChecks are the checks every site runs, by profile: two vendor
// addresses (so that the uplink verdict has two destinations) and NTP.
var fleetChecks = map[string][]string{"pos-vendor": {"api-1", "api-2"}, "time-sync": {"ntp"}}

// TestFleetEndToEnd proves the many-sites path on real components: per site
// a connprobe agent and a Prometheus in agent mode with the shipped
// prometheus-agent.yml, behind a NAT router; centrally a Prometheus with the
// remote-write receiver and the shipped rules. See README, "Many sites".
func TestFleetEndToEnd(t *testing.T) {
	testFleet(t, storePrometheus)
}

// TestFleetEndToEndVictoriaMetrics is TestFleetEndToEnd with
// VictoriaMetrics (single node, Debian's victoria-metrics) as the central
// store and vmalert running the shipped rules against it, writing the
// recording rules' results and the ALERTS series back into it.
func TestFleetEndToEndVictoriaMetrics(t *testing.T) {
	testFleet(t, storeVictoriaMetrics)
}

// The central stores the fleet test runs against.
const (
	storePrometheus      = "prometheus"
	storeVictoriaMetrics = "victoria-metrics"
)

func testFleet(t *testing.T, store string) {
	if testing.Short() {
		t.Skip("starts a fleet of agents and Prometheus servers in network namespaces")
	}
	if err := netlab.Available(); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("netlab: %v (CI must run the fleet lab)", err)
		}
		t.Skipf("netlab: %v", err)
	}
	promBin := lookTool(t, "prometheus")
	var vmBin, vmalertBin string
	if store == storeVictoriaMetrics {
		vmBin, vmalertBin = lookVMTool(t, "victoria-metrics"), lookVMTool(t, "vmalert")
	}
	if _, err := netlab.ChronydPath(); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%v, and CI is set", err)
		}
		t.Skip(err)
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("no go tool to build the agent: %v", err)
	}
	start := time.Now()
	dir := t.TempDir()
	bin := buildProbe(t, dir, goBin)

	lab := netlab.NewFleet(t, len(fleetSites))
	centre := lab.Centre()
	// The "internet": a vendor's two addresses answering TCP 443, and NTP.
	ln := lab.ListenTCP(centre, "0.0.0.0:443")
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	lab.StartChronyd(centre, 2)

	ruleFile := fleetRules(t, dir)
	var central *promServer
	if store == storeVictoriaMetrics {
		central = startCentralVictoriaMetrics(t, lab, dir, vmBin, vmalertBin, ruleFile)
	} else {
		central = startCentralPrometheus(t, lab, dir, promBin, ruleFile)
	}
	for i, site := range fleetSites {
		startSite(t, lab, i, site, dir, bin, promBin)
	}
	t.Logf("fleet up after %v", time.Since(start).Round(time.Second))

	// 1. Every site's checks arrive, with its site label, distinct.
	perSite := 0
	for _, cs := range fleetChecks {
		perSite += len(cs)
	}
	waitFor(t, "every site's checks up centrally", func() error {
		res, err := central.query(`connprobe_check_up == 1`)
		if err != nil {
			return err
		}
		got := map[string]map[string]bool{}
		for _, s := range res.samples {
			if got[s.labels["site"]] == nil {
				got[s.labels["site"]] = map[string]bool{}
			}
			key := s.labels["profile"] + "/" + s.labels["check"]
			if got[s.labels["site"]][key] {
				return fmt.Errorf("site %s: check %s twice: %v", s.labels["site"], key, res.samples)
			}
			got[s.labels["site"]][key] = true
		}
		for _, site := range fleetSites {
			if len(got[site]) != perSite {
				return fmt.Errorf("site %s: %d checks up, want %d (all: %v)", site, len(got[site]), perSite, got)
			}
		}
		if len(got) != len(fleetSites) {
			return fmt.Errorf("sites %v, want %v", keys(got), fleetSites)
		}
		return nil
	})
	// Every site scrapes the same localhost:9469: only the site label tells them apart.
	if res, err := central.query(`count by (instance, job) (connprobe_build_info)`); err != nil || len(res.samples) != 1 ||
		res.samples[0].value != float64(len(fleetSites)) {
		t.Errorf("connprobe_build_info by instance and job: %v %v; want one instance with %d sites", res.samples, err, len(fleetSites))
	}

	sizeFrom := readAgentCounters(t, lab, 2)

	// 2. site-a's router drops NTP; site-b's router drops everything (its
	// line is cut: no check and no remote write gets through).
	lab.IPTables(lab.SiteRouter(0), "-A", "FORWARD", "-p", "udp", "--dport", "123", "-j", "DROP")
	cutStart := time.Now()
	lab.IPTables(lab.SiteRouter(1), "-P", "FORWARD", "DROP")
	waitAlert(t, central, "ConnprobeNTPBlocked", "site-a")
	waitAlert(t, central, "ConnprobeAgentSilent", "site-b")
	// The agent at site-b must have seen its uplink down before the line
	// comes back: traces take a few seconds after the first failures.
	if d := 30*time.Second - time.Since(cutStart); d > 0 {
		time.Sleep(d)
	}
	lab.IPTables(lab.SiteRouter(1), "-P", "FORWARD", "ACCEPT")
	cutEnd := time.Now()
	t.Logf("site-b cut for %v", cutEnd.Sub(cutStart).Round(time.Second))

	// 3. After the cut, site-b's buffered samples arrive: no gap in its
	// connprobe_check_up over the outage, and its agent's uplink verdict
	// of the time (down) is among them.
	waitFor(t, "site-b's samples over the outage", func() error {
		for _, cs := range [][2]string{{"pos-vendor", "api-1"}, {"time-sync", "ntp"}} {
			sel := fmt.Sprintf(`connprobe_check_up{site="site-b",profile=%q,check=%q}`, cs[0], cs[1])
			if err := central.noGap(sel, cutStart.Add(-5*time.Second), cutEnd.Add(5*time.Second), 3*fleetInterval); err != nil {
				return err
			}
		}
		return central.sawValue(`connprobe_uplink_up{site="site-b"}`, cutStart, cutEnd.Add(5*time.Second), 0)
	})
	waitNoAlert(t, central, "ConnprobeAgentSilent")

	sizeTo := readAgentCounters(t, lab, 2)

	// 4. site-c's internet line goes down while its path to the central
	// store (a VPN or a separate line) still works: its uplink verdict
	// arrives and ConnprobeUplinkDown fires for it alone.
	lab.IPTables(lab.SiteRouter(2), "-A", "FORWARD", "-d", lab.CentreIP(0).String(), "-j", "DROP")
	lab.IPTables(lab.SiteRouter(2), "-A", "FORWARD", "-d", lab.CentreIP(1).String(), "-j", "DROP")
	waitAlert(t, central, "ConnprobeUplinkDown", "site-c")

	checkFleetDashboard(t, central, lab)
	logFleetSizing(t, central, sizeFrom, sizeTo)
	t.Logf("fleet test done in %v", time.Since(start).Round(time.Second))
}

// fleetRules writes the shipped rules with every `for:` shortened to
// fleetFor, and returns the file's path.
func fleetRules(t *testing.T, dir string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, "deploy", "prometheus", "connprobe-rules.yml"))
	if err != nil {
		t.Fatal(err)
	}
	forRE := regexp.MustCompile(`(?m)^(\s+for:) \d+[smh]\s*$`)
	if len(forRE.FindAll(b, -1)) == 0 {
		t.Fatal("connprobe-rules.yml has no `for:` to shorten")
	}
	out := forRE.ReplaceAll(b, []byte("$1 "+fleetFor))
	path := filepath.Join(dir, "connprobe-rules.yml")
	if err := os.WriteFile(path, out, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// nsClient is an HTTP client whose connections are made inside namespace ns.
func nsClient(lab *netlab.Fleet, ns string) *http.Client {
	dialer := &net.Dialer{Timeout: 5 * time.Second}
	return &http.Client{
		Timeout: 10 * time.Second,
		Transport: &http.Transport{
			DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				var c net.Conn
				err := lab.Do(ns, func() error {
					var err error
					c, err = dialer.DialContext(ctx, network, addr)
					return err
				})
				return c, err
			},
		},
	}
}

// startCentralPrometheus runs the central store: a Prometheus with the
// remote-write receiver and the rules, listening on every address of the
// centre.
func startCentralPrometheus(t *testing.T, lab *netlab.Fleet, dir, promBin, ruleFile string) *promServer {
	t.Helper()
	cdir := filepath.Join(dir, "central")
	if err := os.Mkdir(cdir, 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := fmt.Sprintf("global: {evaluation_interval: 1s}\nrule_files: [%q]\n", ruleFile)
	cfgFile := filepath.Join(cdir, "prometheus.yml")
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	logs := startProcess(t, "central prometheus", "ip", "netns", "exec", lab.Centre(), promBin,
		"--config.file="+cfgFile,
		"--web.enable-remote-write-receiver",
		"--enable-feature=native-histograms",
		"--query.lookback-delta="+fleetLookback,
		"--storage.tsdb.path="+filepath.Join(cdir, "data"),
		"--web.listen-address=0.0.0.0:"+centralPort)
	p := &promServer{base: "http://" + net.JoinHostPort(lab.CentreIP(0).String(), centralPort), logs: logs, client: nsClient(lab, lab.Centre())}
	waitHTTPVia(t, p.client, 60*time.Second, "central prometheus", p.base+"/-/ready", logs)
	return p
}

// centralPort is the central store's port on every address of the centre.
const centralPort = "9090"

// lookVMTool finds a binary of Debian's victoria-metrics package: skip
// without it, except in CI.
func lookVMTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s not installed (apt-get install victoria-metrics), and CI is set: %v", name, err)
		}
		t.Skipf("%s not installed (apt-get install victoria-metrics): %v", name, err)
	}
	return p
}

// startCentralVictoriaMetrics runs the central store as VictoriaMetrics
// (receiving remote writes on /api/v1/write, answering the Prometheus query
// API) with vmalert evaluating the rules against it. vmalert writes the
// recording rules' results and ALERTS back into VictoriaMetrics, and sends
// its notifications to a receiver of the test's in the centre. The
// staleness and the latency offset are shortened like the Prometheus
// lookback, and the result cache is off: the test asks about data that
// arrives late (the WAL's backlog).
func startCentralVictoriaMetrics(t *testing.T, lab *netlab.Fleet, dir, vmBin, vmalertBin, ruleFile string) *promServer {
	t.Helper()
	cdir := filepath.Join(dir, "central")
	if err := os.Mkdir(cdir, 0o755); err != nil {
		t.Fatal(err)
	}
	client := nsClient(lab, lab.Centre())
	logs := startProcess(t, "victoria-metrics", "ip", "netns", "exec", lab.Centre(), vmBin,
		"-storageDataPath="+filepath.Join(cdir, "data"),
		"-httpListenAddr=0.0.0.0:"+centralPort,
		"-search.latencyOffset=1s",
		"-search.maxStalenessInterval="+fleetLookback,
		"-search.disableCache")
	base := "http://" + net.JoinHostPort(lab.CentreIP(0).String(), centralPort)
	waitHTTPVia(t, client, 60*time.Second, "victoria-metrics", base+"/health", logs)

	// vmalert wants somewhere to send notifications: a receiver that
	// accepts them.
	ln := lab.ListenTCP(lab.Centre(), "127.0.0.1:0")
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, io.LimitReader(r.Body, 1<<20))
		w.WriteHeader(http.StatusOK)
	}), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })

	vmURL := "http://127.0.0.1:" + centralPort
	vlogs := startProcess(t, "vmalert", "ip", "netns", "exec", lab.Centre(), vmalertBin,
		"-rule="+ruleFile,
		"-datasource.url="+vmURL,
		"-datasource.queryStep="+fleetLookback,
		"-remoteWrite.url="+vmURL,
		"-notifier.url=http://"+ln.Addr().String(),
		"-evaluationInterval=1s",
		"-httpListenAddr=127.0.0.1:8880")
	waitHTTPVia(t, client, 60*time.Second, "vmalert", "http://127.0.0.1:8880/health", vlogs)
	return &promServer{base: base, logs: logs, client: client}
}

// startSite runs site i's agent and its Prometheus agent inside the site's
// namespace. The agent's checks go to the centre's two service addresses;
// the Prometheus agent remote-writes to the centre's address on the site's
// own link (its line to the central store), on /api/v1/write: the path of
// both Prometheus' receiver and VictoriaMetrics.
func startSite(t *testing.T, lab *netlab.Fleet, i int, site, dir, bin, promBin string) {
	t.Helper()
	sdir := filepath.Join(dir, site)
	profiles := filepath.Join(sdir, "profiles")
	if err := os.MkdirAll(profiles, 0o755); err != nil {
		t.Fatal(err)
	}
	v0, v1 := lab.CentreIP(0).String(), lab.CentreIP(1).String()
	files := map[string]string{
		"pos-vendor.yml": fmt.Sprintf(`name: pos-vendor
description: the fleet lab's card terminal vendor
checks:
  - {name: api-1, kind: tcp, host: %s, port: "443", direction: out, level: essential,
     purpose: the vendor's first address answers, source: {note: the fleet test's lab}}
  - {name: api-2, kind: tcp, host: %s, port: "443", direction: out, level: essential,
     purpose: the vendor's second address answers, source: {note: the fleet test's lab}}
`, v0, v1),
		"time-sync.yml": fmt.Sprintf(`name: time-sync
description: the fleet lab's time server
checks:
  - {name: ntp, kind: ntp, host: %s, port: "123", direction: out, level: essential,
     purpose: the time server answers, source: {note: the fleet test's lab}}
`, v0),
	}
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(profiles, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cfg := "defaults: {interval: 2s, timeout: 1s, ip_family: ipv4}\nprofiles:\n  - {name: pos-vendor}\n  - {name: time-sync}\n"
	cfgFile := filepath.Join(sdir, "connprobe.yml")
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	ns := lab.Site(i)
	client := nsClient(lab, ns)
	logs := startProcess(t, site+" agent", "ip", "netns", "exec", ns, bin,
		"--config.file", cfgFile, "--profiles.dir", profiles, "--web.listen-address", "localhost:9469")
	waitHTTPVia(t, client, 60*time.Second, site+" agent", "http://127.0.0.1:9469/-/healthy", logs)

	// The shipped agent configuration, with only the URL, the site, the
	// scrape interval and the password file's path substituted: at the
	// last site the .deb's pair (connprobe-prometheus-agent.service's
	// command line and the configuration it reads), at the others the
	// example for a Prometheus of one's own.
	password := filepath.Join(sdir, "remote-write.password")
	if err := os.WriteFile(password, []byte("fleet-test\n"), 0o400); err != nil {
		t.Fatal(err)
	}
	cfgName, passwordPath := "prometheus-agent.yml", "/etc/prometheus/remote-write.password"
	packaged := i == len(fleetSites)-1
	if packaged {
		cfgName, passwordPath = "connprobe-prometheus-agent.yml", "/run/credentials/connprobe-prometheus-agent.service/remote-write.password"
	}
	shipped, err := os.ReadFile(filepath.Join(repoRoot, "deploy", "prometheus", cfgName))
	if err != nil {
		t.Fatal(err)
	}
	text := string(shipped)
	for _, r := range [][2]string{
		{"scrape_interval: 30s", "scrape_interval: " + fleetScrape},
		{"site: shop-berlin", "site: " + site},
		{"username: shop-berlin", "username: " + site},
		{"url: https://metrics.example.net/api/v1/push", fmt.Sprintf("url: http://10.%s.1:%s/api/v1/write", siteLinkPrefix(lab, i), centralPort)},
		{"password_file: " + passwordPath, "password_file: " + password},
	} {
		if n := strings.Count(text, r[0]); n != 1 {
			t.Fatalf("deploy/prometheus/%s: %q occurs %d times, the test substitutes it once", cfgName, r[0], n)
		}
		text = strings.Replace(text, r[0], r[1], 1)
	}
	agentCfg := filepath.Join(sdir, "prometheus-agent.yml")
	if err := os.WriteFile(agentCfg, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	args := []string{"--enable-feature=agent,native-histograms", "--config.file=" + agentCfg,
		"--storage.agent.path=" + filepath.Join(sdir, "agent-data"), "--web.listen-address=" + siteAgentAddr}
	if packaged {
		args = unitPrometheusArgs(t, map[string]string{
			"/etc/connprobe/prometheus-agent.yml": agentCfg,
			"/var/lib/connprobe-prometheus-agent": filepath.Join(sdir, "agent-data"),
			"127.0.0.1:9091":                      siteAgentAddr,
		})
	}
	plogs := startProcess(t, site+" prometheus agent", "ip", append([]string{"netns", "exec", ns, promBin}, args...)...)
	waitHTTPVia(t, client, 60*time.Second, site+" prometheus agent", "http://"+siteAgentAddr+"/-/ready", plogs)
}

// siteAgentAddr is where a site's Prometheus agent listens, inside the site.
const siteAgentAddr = "127.0.0.1:9090"

// unitPrometheusArgs returns the flags of ExecStart in
// connprobe-prometheus-agent.service with the paths replaced; every one of
// them must occur.
func unitPrometheusArgs(t *testing.T, replace map[string]string) []string {
	t.Helper()
	const unit = "deploy/systemd/connprobe-prometheus-agent.service"
	b, err := os.ReadFile(filepath.Join(repoRoot, unit))
	if err != nil {
		t.Fatal(err)
	}
	var fields []string
	for line := range strings.SplitSeq(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "ExecStart=/usr/bin/prometheus "); ok {
			fields = strings.Fields(rest)
		}
	}
	if len(fields) == 0 {
		t.Fatalf("%s: no ExecStart=/usr/bin/prometheus ...", unit)
	}
	for from, to := range replace {
		n := 0
		for i, f := range fields {
			if strings.Contains(f, from) {
				fields[i] = strings.Replace(f, from, to, 1)
				n++
			}
		}
		if n != 1 {
			t.Fatalf("%s: ExecStart has %q %d times, the test replaces it once", unit, from, n)
		}
	}
	return fields
}

// siteLinkPrefix is "N.(100+i)" of the centre's address on site i's link.
func siteLinkPrefix(lab *netlab.Fleet, i int) string {
	ip := lab.SiteWANIP(i)
	return fmt.Sprintf("%d.%d", ip[1], ip[2])
}

// waitFor retries cond (bounded by fleetWait) until it returns nil.
func waitFor(t *testing.T, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(fleetWait)
	started := time.Now()
	for {
		err := cond()
		if err == nil {
			t.Logf("%s: after %v", what, time.Since(started).Round(100*time.Millisecond))
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v: %v", what, fleetWait, err)
		}
		time.Sleep(time.Second)
	}
}

// firingSites returns the sites for which alert is firing.
func firingSites(p *promServer, alert string) ([]string, error) {
	res, err := p.query(fmt.Sprintf(`ALERTS{alertname=%q, alertstate="firing"}`, alert))
	if err != nil {
		return nil, err
	}
	var sites []string
	for _, s := range res.samples {
		if !slices.Contains(sites, s.labels["site"]) {
			sites = append(sites, s.labels["site"])
		}
	}
	sort.Strings(sites)
	return sites, nil
}

// waitAlert waits until alert fires for site, and fails when it fires for
// any other site then.
func waitAlert(t *testing.T, p *promServer, alert, site string) {
	t.Helper()
	waitFor(t, alert+" for "+site, func() error {
		sites, err := firingSites(p, alert)
		if err != nil {
			return err
		}
		if !slices.Contains(sites, site) {
			return fmt.Errorf("firing for %v", sites)
		}
		if len(sites) != 1 {
			t.Errorf("%s fires for %v, want %s only", alert, sites, site)
		}
		return nil
	})
}

// waitNoAlert waits until alert fires for no site.
func waitNoAlert(t *testing.T, p *promServer, alert string) {
	t.Helper()
	waitFor(t, alert+" resolved", func() error {
		sites, err := firingSites(p, alert)
		if err != nil {
			return err
		}
		if len(sites) > 0 {
			return fmt.Errorf("still firing for %v", sites)
		}
		return nil
	})
}

// samplesBetween returns the raw samples of the one series sel selects
// between from and to (a range-vector query at to).
func (p *promServer) samplesBetween(sel string, from, to time.Time) ([][2]float64, error) {
	span := int(math.Ceil(to.Sub(from).Seconds()))
	r, err := p.api("/api/v1/query", url.Values{
		"query": {fmt.Sprintf("%s[%ds]", sel, span)},
		"time":  {strconv.FormatFloat(float64(to.UnixMilli())/1000, 'f', 3, 64)},
	})
	if err != nil {
		return nil, err
	}
	var m []struct {
		Metric map[string]string `json:"metric"`
		Values [][2]any          `json:"values"`
	}
	if err := json.Unmarshal(r.Data.Result, &m); err != nil {
		return nil, err
	}
	if len(m) != 1 {
		return nil, fmt.Errorf("%s: %d series, want 1", sel, len(m))
	}
	var out [][2]float64
	for _, v := range m[0].Values {
		ts, _ := v[0].(float64)
		s, _ := v[1].(string)
		f, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return nil, fmt.Errorf("%s: value %v", sel, v[1])
		}
		out = append(out, [2]float64{ts, f})
	}
	return out, nil
}

// noGap checks that the series has samples from from to to, none further
// apart than maxGap.
func (p *promServer) noGap(sel string, from, to time.Time, maxGap time.Duration) error {
	vals, err := p.samplesBetween(sel, from, to)
	if err != nil {
		return err
	}
	if len(vals) == 0 {
		return fmt.Errorf("%s: no samples between %s and %s", sel, from.Format(time.TimeOnly), to.Format(time.TimeOnly))
	}
	prev := float64(from.UnixMilli()) / 1000
	for _, v := range append(vals, [2]float64{float64(to.UnixMilli()) / 1000}) {
		if gap := v[0] - prev; gap > maxGap.Seconds() {
			return fmt.Errorf("%s: no sample for %.1fs after %s", sel, gap, time.UnixMilli(int64(prev*1000)).Format(time.TimeOnly))
		}
		prev = v[0]
	}
	return nil
}

// sawValue checks that the series had value want at some sample between
// from and to.
func (p *promServer) sawValue(sel string, from, to time.Time, want float64) error {
	vals, err := p.samplesBetween(sel, from, to)
	if err != nil {
		return err
	}
	for _, v := range vals {
		if v[1] == want {
			return nil
		}
	}
	return fmt.Errorf("%s: %d samples between %s and %s, none %v", sel, len(vals), from.Format(time.TimeOnly), to.Format(time.TimeOnly), want)
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// metricValue reads one unlabelled sample (or the sum over labels) of name
// from a Prometheus text exposition.
func metricValue(text, name string) (float64, bool) {
	sum, found := 0.0, false
	for line := range strings.SplitSeq(text, "\n") {
		if !strings.HasPrefix(line, name+" ") && !strings.HasPrefix(line, name+"{") {
			continue
		}
		fields := strings.Fields(line)
		f, err := strconv.ParseFloat(fields[len(fields)-1], 64)
		if err != nil {
			continue
		}
		sum += f
		found = true
	}
	return sum, found
}

// agentCounters are a site's Prometheus agent's remote-write counters at a time.
type agentCounters struct {
	at                     time.Time
	samples, bytes, series float64
}

// readAgentCounters reads site i's Prometheus agent's counters.
func readAgentCounters(t *testing.T, lab *netlab.Fleet, i int) agentCounters {
	t.Helper()
	resp, err := nsClient(lab, lab.Site(i)).Get("http://" + siteAgentAddr + "/metrics")
	if err != nil {
		t.Fatalf("site %d prometheus agent metrics: %v", i, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		t.Fatal(err)
	}
	c := agentCounters{at: time.Now()}
	for _, m := range []struct {
		name string
		v    *float64
	}{
		{"prometheus_remote_storage_samples_total", &c.samples},
		{"prometheus_remote_storage_bytes_total", &c.bytes},
		{"prometheus_agent_active_series", &c.series},
	} {
		v, ok := metricValue(string(b), m.name)
		if !ok {
			t.Fatalf("site %d prometheus agent: no %s", i, m.name)
		}
		*m.v = v
	}
	return c
}

// logFleetSizing logs what one site costs the central store, measured at
// the test's scrape interval and scaled to the default 30 s (README, "Many
// sites", Sizing).
func logFleetSizing(t *testing.T, central *promServer, from, to agentCounters) {
	t.Helper()
	res, err := central.query(`count by (site) ({site!="", __name__!~"ALERTS.*|connprobe:.*"})`)
	if err != nil {
		t.Errorf("series per site: %v", err)
		return
	}
	for _, s := range res.samples {
		t.Logf("sizing: %s: %v series centrally (3 checks, 2 profiles)", s.labels["site"], s.value)
	}
	secs := to.at.Sub(from.at).Seconds()
	samples, bytes := (to.samples-from.samples)/secs, (to.bytes-from.bytes)/secs
	scale := fleetInterval.Seconds() / 30
	t.Logf("sizing: site-c over %.0fs at a %s scrape: %.1f samples/s, %.0f bytes/s remote write (%.1f bytes/sample), %v active series;"+
		" at 30s: %.2f samples/s, %.0f bytes/s", secs, fleetScrape, samples, bytes, bytes/samples, to.series, samples*scale, bytes*scale)
}

// checkFleetDashboard runs every query of the fleet dashboard on the
// central Prometheus and compares it with the fleet's known state: site-a
// cannot reach NTP, site-b is well, site-c's uplink is down.
func checkFleetDashboard(t *testing.T, p *promServer, lab *netlab.Fleet) {
	t.Helper()
	const file = "dashboards/connprobe-fleet.json"
	d, _ := loadDashboard(t, file)
	vars := map[string]string{
		"datasource": "prometheus", "__rate_interval": "1m", "__interval": "15s",
		"job": "connprobe", "site": ".*", "instance": ".*", "profile": ".*", "host": ".*",
	}
	v0, v1 := lab.CentreIP(0).String(), lab.CentreIP(1).String()
	byLabels := func(want map[string]float64, names ...string) func([]sample) error {
		return func(ss []sample) error {
			got := map[string]float64{}
			for _, s := range ss {
				var k []string
				for _, n := range names {
					k = append(k, s.labels[n])
				}
				got[strings.Join(k, "|")] = s.value
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				return fmt.Errorf("got %v, want %v", got, want)
			}
			return nil
		}
	}
	scalar := func(v float64) func([]sample) error { return byLabels(map[string]float64{"": v}) }
	want := map[string]func([]sample) error{
		"Sites reporting|A":                scalar(3),
		"Sites with the uplink down|A":     scalar(1),
		"Sites with a profile not ready|A": scalar(1),
		"Readiness: sites by profile|A": byLabels(map[string]float64{
			"site-a|pos-vendor": 1, "site-a|time-sync": 0,
			"site-b|pos-vendor": 1, "site-b|time-sync": 1,
			"site-c|pos-vendor": -1, "site-c|time-sync": -1,
		}, "site", "profile"),
		"Sites|A": byLabels(map[string]float64{"site-a": 1, "site-b": 0, "site-c": 2}, "site"),
		"Which sites cannot reach it|A": func(ss []sample) error {
			got := map[string]bool{}
			for _, s := range ss {
				got[s.labels["site"]+"|"+s.labels["host"]+"|"+s.labels["port"]] = true
			}
			w := map[string]bool{
				"site-a|" + v0 + "|123": true,
				"site-c|" + v0 + "|443": true, "site-c|" + v1 + "|443": true, "site-c|" + v0 + "|123": true,
			}
			if fmt.Sprint(got) != fmt.Sprint(w) {
				return fmt.Errorf("got %v, want %v", keys(got), keys(w))
			}
			return nil
		},
		"variable job":      byLabels(map[string]float64{"connprobe": 1}, "job"),
		"variable site":     byLabels(map[string]float64{"site-a": 1, "site-b": 1, "site-c": 1}, "site"),
		"variable instance": byLabels(map[string]float64{"localhost:9469": 1}, "instance"),
		"variable profile":  byLabels(map[string]float64{"pos-vendor": 1, "time-sync": 1}, "profile"),
		"variable host":     byLabels(map[string]float64{v0: 1, v1: 1}, "host"),
	}
	type query struct{ key, expr string }
	var queries []query
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		q, err := variablePromQL(variableQuery(v))
		if err == nil {
			q, err = expandVariables(q, vars)
		}
		if err != nil {
			t.Fatalf("%s variable %s: %v", file, v.Name, err)
		}
		queries = append(queries, query{"variable " + v.Name, q})
	}
	for _, pn := range allPanels(d) {
		for _, tg := range pn.Targets {
			e, err := expandVariables(tg.Expr, vars)
			if err != nil {
				t.Fatal(err)
			}
			queries = append(queries, query{pn.Title + "|" + tg.RefID, e})
		}
	}
	for _, q := range queries {
		check := want[q.key]
		if check == nil {
			t.Errorf("%s %s: the fleet test has no known answer for it", file, q.key)
			continue
		}
		delete(want, q.key)
		waitFor(t, "fleet dashboard "+q.key, func() error {
			res, err := p.query(q.expr)
			if err != nil {
				return err
			}
			if err := check(res.samples); err != nil {
				return fmt.Errorf("%v\n%s", err, q.expr)
			}
			return nil
		})
	}
	for k := range want {
		t.Errorf("%s: known answer for %q, which is no query of the dashboard", file, k)
	}
}

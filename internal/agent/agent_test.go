package agent

import (
	"context"
	"fmt"
	"html/template"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/connprobe/connprobe/internal/gateway"
	"github.com/connprobe/connprobe/internal/uplink"
	"github.com/connprobe/connprobe/probe"
	"github.com/connprobe/connprobe/targets"
)

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := l.Addr().(*net.TCPAddr).Port
	l.Close()
	return p
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	return resp.StatusCode, string(b)
}

func post(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Post(url, "text/plain", nil)
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, string(b)
}

// waitFor polls cond every 50ms for at most d.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("timed out after %s waiting for %s", d, what)
}

// TestAgentEndToEnd runs the whole agent on loopback: real probes of a real
// listener and a closed port, /metrics, readiness, and reloads good and bad.
func TestAgentEndToEnd(t *testing.T) {
	open, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer open.Close()
	openPort := open.Addr().(*net.TCPAddr).Port
	closedPort := freePort(t)

	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "connprobe.yml")
	writeConfig := func(body string) {
		if err := os.WriteFile(cfgPath, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	writeConfig(fmt.Sprintf(`
defaults: {interval: 1s, timeout: 500ms}
checks:
  - {name: open, kind: tcp, host: 127.0.0.1, port: %d}
  - {name: closed, kind: tcp, host: 127.0.0.1, port: %d}
`, openPort, closedPort))

	webPort := freePort(t)
	base := fmt.Sprintf("http://127.0.0.1:%d", webPort)
	a, err := New(Options{ConfigFile: cfgPath, ListenAddrs: []string{fmt.Sprintf("127.0.0.1:%d", webPort)}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	defer func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run returned %v", err)
			}
		case <-time.After(15 * time.Second):
			t.Error("Run did not return after cancel")
		}
	}()

	waitFor(t, 10*time.Second, "/-/ready", func() bool {
		resp, err := http.Get(base + "/-/ready")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})

	_, metrics := get(t, base+"/metrics")
	for _, want := range []string{
		fmt.Sprintf(`connprobe_check_up{check="open",host="127.0.0.1",ip_family="ipv4",kind="tcp",port="%d",profile="",protocol="tcp"} 1`, openPort),
		fmt.Sprintf(`connprobe_check_up{check="closed",host="127.0.0.1",ip_family="ipv4",kind="tcp",port="%d",profile="",protocol="tcp"} 0`, closedPort),
		fmt.Sprintf(`connprobe_check_reason{check="closed",host="127.0.0.1",ip_family="ipv4",kind="tcp",port="%d",profile="",protocol="tcp",reason="refused"} 1`, closedPort),
		"connprobe_config_last_reload_successful 1",
		"connprobe_build_info{",
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	// Only the current reason is exported by default (--metrics.all-reasons
	// adds the others at 0).
	if notWant := fmt.Sprintf(`connprobe_check_reason{check="closed",host="127.0.0.1",ip_family="ipv4",kind="tcp",port="%d",profile="",protocol="tcp",reason="ok"}`, closedPort); strings.Contains(metrics, notWant) {
		t.Errorf("/metrics has %s, a reason that is not current", notWant)
	}
	lintWithPromtool(t, metrics)

	_, page := get(t, base+"/")
	if !strings.Contains(page, "closed") || !strings.Contains(page, "refused") {
		t.Errorf("landing page does not show the closed check's verdict")
	}

	// A broken config keeps the old one running.
	writeConfig("checks:\n  - {name: x, kind: nosuchkind, host: 127.0.0.1, port: 1}\n")
	code, body := post(t, base+"/-/reload")
	if code != http.StatusInternalServerError || !strings.Contains(body, "nosuchkind") {
		t.Errorf("reload of a broken config: %d %q", code, body)
	}
	_, metrics = get(t, base+"/metrics")
	if !strings.Contains(metrics, "connprobe_config_last_reload_successful 0") {
		t.Error("reload failure not reported by connprobe_config_last_reload_successful")
	}
	if !strings.Contains(metrics, `check="closed"`) {
		t.Error("the old configuration should still run after a failed reload")
	}
	if _, page := get(t, base+"/"); !strings.Contains(page, `id="reload-failed"`) || !strings.Contains(page, "nosuchkind") {
		t.Error("the status page does not show the failed reload and its error")
	}

	// A good config replaces it: the removed check's series vanish.
	writeConfig(fmt.Sprintf("defaults: {interval: 1s, timeout: 500ms}\nchecks:\n  - {name: open, kind: tcp, host: 127.0.0.1, port: %d}\n", openPort))
	if code, body := post(t, base+"/-/reload"); code != http.StatusOK {
		t.Fatalf("reload of a good config: %d %q", code, body)
	}
	_, metrics = get(t, base+"/metrics")
	if strings.Contains(metrics, `check="closed"`) {
		t.Error("a check removed by reload still has series")
	}
	if !strings.Contains(metrics, "connprobe_config_last_reload_successful 1") {
		t.Error("successful reload not reported")
	}
	if _, page := get(t, base+"/"); strings.Contains(page, `id="reload-failed"`) {
		t.Error("the status page still shows a reload failure after a good reload")
	}
}

// lintWithPromtool runs `promtool check metrics` on a scrape. CI installs
// promtool; elsewhere the test says it skipped the lint.
func lintWithPromtool(t *testing.T, metrics string) {
	t.Helper()
	path, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("promtool is not installed, but CI must lint the metrics with it")
		}
		t.Log("promtool not installed: metric lint by promtool skipped (the metrics package lints with promlint)")
		return
	}
	cmd := exec.Command(path, "check", "metrics")
	cmd.Stdin = strings.NewReader(metrics)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}
}

func TestNewRejectsInvalidConfig(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bad.yml")
	if err := os.WriteFile(path, []byte("defaults: {interval: soon}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := New(Options{ConfigFile: path})
	if err == nil || !strings.Contains(err.Error(), "bad.yml:1") {
		t.Fatalf("New with a bad config: %v, want an error naming bad.yml:1", err)
	}
}

// Profile checks skipped for want of a param are logged and counted; the
// agent starts with the rest.
func TestSkippedChecksLoggedAndCounted(t *testing.T) {
	var logs strings.Builder
	a, err := New(Options{
		Targets: targets.Options{ProfilesDir: "../../targets/testdata/profiles", Profiles: []string{"switches"}},
		Logger:  slog.New(slog.NewTextHandler(&logs, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	a.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if body := rec.Body.String(); !strings.Contains(body, "\nconnprobe_checks_skipped 1\n") {
		t.Errorf("/metrics lacks connprobe_checks_skipped 1:\n%s", body)
	}
	rec = httptest.NewRecorder()
	a.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
	if page := rec.Body.String(); !strings.Contains(page, "SKIPPED") || !strings.Contains(page, "set --param switches.emv_host=...") {
		t.Errorf("the status page does not list the skipped check with its hint:\n%s", page)
	}
	want := `level=WARN msg="profile check skipped: a required param is not set" profile=switches check=emv missing=emv_host hint="set --param switches.emv_host=... (the EMV endpoint)"`
	if !strings.Contains(logs.String(), want) {
		t.Errorf("log lacks %s:\n%s", want, logs.String())
	}
}

// The status page shows the agent's uplink verdict: a banner while it is
// down, none while it is up. Results are put into the store directly (the
// scheduler never starts), so nothing is sent.
func TestStatusPageShowsUplinkDown(t *testing.T) {
	path := filepath.Join(t.TempDir(), "connprobe.yml")
	cfg := "checks:\n  - {name: vendor-a, kind: tcp, host: 192.0.2.10, port: 443}\n  - {name: vendor-b, kind: tcp, host: 198.51.100.20, port: 443}\n"
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	a, err := New(Options{ConfigFile: path})
	if err != nil {
		t.Fatal(err)
	}
	const gw = "192.168.1.1"
	a.uplink.Host = func() gateway.Host {
		return gateway.Host{Gateways: []gateway.Gateway{{Family: gateway.FamilyIPv4, Address: gw, Interface: "eth0"}}}
	}
	put := func(up bool) {
		for _, e := range a.store.Snapshot() {
			r := probe.Result{Check: e.Check, Address: e.Check.Host, IPFamily: probe.FamilyIPv4, Up: up, Reason: probe.ReasonOK}
			if !up {
				r.Reason = probe.ReasonRejected
				r.Detail = "ICMP destination unreachable (net unreachable) from " + gw + ", a device on the path"
				r.Path = &probe.Path{Location: probe.PathGateway, Hop: 1, Address: gw,
					Hops: []probe.PathHop{{Hop: 1, Address: gw, RTTSeconds: 0.001, ICMP: "net unreachable"}}}
			}
			a.store.Put(e.Check, []probe.Result{r})
		}
	}
	page := func() string {
		rec := httptest.NewRecorder()
		a.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
		return rec.Body.String()
	}

	put(false)
	if v := a.Uplink(); v.State != uplink.StateDown {
		t.Fatalf("uplink verdict %+v, want down", v)
	}
	body := page()
	for _, want := range []string{`id="uplink-down"`, "The internet connection is down at your gateway " + gw, template.HTMLEscapeString(a.Uplink().Detail)} {
		if !strings.Contains(body, want) {
			t.Errorf("the status page lacks %q while the uplink is down", want)
		}
	}
	put(true)
	if body := page(); strings.Contains(body, `id="uplink-down"`) {
		t.Error("the status page shows the uplink down after outbound checks succeeded")
	}
}

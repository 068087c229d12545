package rulestest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

// TestAlertmanagerInhibitsPortAlertsWhileUplinkDown runs a real Alertmanager
// on loopback with the example configuration (its receivers replaced by a
// webhook on loopback, so nothing is sent anywhere) and checks which alerts
// its inhibit rules hold back: the port alerts of a site whose uplink is
// down, and nothing else.
func TestAlertmanagerInhibitsPortAlertsWhileUplinkDown(t *testing.T) {
	bin, err := exec.LookPath("prometheus-alertmanager")
	if err != nil {
		if bin, err = exec.LookPath("alertmanager"); err != nil {
			msg := "alertmanager not found (apt-get install prometheus-alertmanager): " + err.Error()
			if os.Getenv("CI") != "" {
				t.Fatal(msg)
			}
			t.Skip(msg)
		}
	}
	var cfg map[string]any
	readYAML(t, amFile, &cfg)
	dir := t.TempDir()
	cfg["receivers"] = []any{map[string]any{
		"name":            "it-contractor",
		"webhook_configs": []any{map[string]any{"url": "http://127.0.0.1:9/"}},
	}}
	out, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(dir, "alertmanager.yml")
	if err := os.WriteFile(cfgPath, out, 0o600); err != nil {
		t.Fatal(err)
	}
	port := freeLoopbackPort(t)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	cmd := exec.CommandContext(t.Context(), bin, "--config.file="+cfgPath, "--storage.path="+filepath.Join(dir, "data"),
		fmt.Sprintf("--web.listen-address=127.0.0.1:%d", port), "--cluster.listen-address=")
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("alertmanager output:\n%s", logs.String())
		}
	})
	client := &http.Client{Timeout: 5 * time.Second}
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := client.Get(base + "/-/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("alertmanager not ready after 30s: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}

	site := func(name string, extra map[string]string) map[string]string {
		ls := map[string]string{"job": "connprobe", "site": name, "severity": "critical"}
		for k, v := range extra {
			ls[k] = v
		}
		return ls
	}
	check := map[string]string{"instance": "pos-backoffice.lan:9469", "profile": "clover", "check": "clover-api-https",
		"kind": "tls", "host": "api.clover.com", "port": "443", "protocol": "tcp", "ip_family": "ipv4"}
	alerts := map[string]map[string]string{
		"uplink berlin":     site("shop-berlin", map[string]string{"alertname": "ConnprobeUplinkDown"}),
		"essential berlin":  site("shop-berlin", merge(check, "alertname", "ConnprobeEssentialCheckFailing")),
		"https berlin":      site("shop-berlin", merge(check, "alertname", "ConnprobeHTTPSBlocked")),
		"ntp berlin":        site("shop-berlin", map[string]string{"alertname": "ConnprobeNTPBlocked", "instance": "pos-backoffice.lan:9469", "check": "ntp", "kind": "ntp", "host": "pool.ntp.org", "port": "123", "protocol": "udp", "ip_family": "ipv4"}),
		"range berlin":      site("shop-berlin", map[string]string{"alertname": "ConnprobeRangeBlocked", "instance": "pos-backoffice.lan:9469", "check": "media", "kind": "udp", "host": "media.clover.com", "range": "3478-3577", "protocol": "udp"}),
		"profile berlin":    site("shop-berlin", map[string]string{"alertname": "ConnprobeProfileNotReady", "instance": "pos-backoffice.lan:9469", "profile": "clover"}),
		"tls berlin":        site("shop-berlin", merge(check, "alertname", "ConnprobeTLSInterceptionSuspected")),
		"essential hamburg": site("shop-hamburg", merge(check, "alertname", "ConnprobeEssentialCheckFailing")),
	}
	var post []map[string]any
	for _, ls := range alerts {
		post = append(post, map[string]any{"labels": ls, "startsAt": time.Now().Add(-10 * time.Minute).Format(time.RFC3339)})
	}
	body, _ := json.Marshal(post)
	resp, err := client.Post(base+"/api/v2/alerts", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("posting alerts: %s", resp.Status)
	}

	want := map[string]bool{ // inhibited?
		"uplink berlin": false, "essential berlin": true, "https berlin": true, "ntp berlin": true,
		"range berlin": true, "profile berlin": true, "tls berlin": false, "essential hamburg": false,
	}
	deadline = time.Now().Add(30 * time.Second)
	for {
		got, err := inhibited(client, base)
		if err != nil {
			t.Fatal(err)
		}
		var wrong []string
		for name, ls := range alerts {
			st, ok := got[key(ls)]
			if !ok || st != want[name] {
				wrong = append(wrong, fmt.Sprintf("%s: inhibited=%v (listed %v), want %v", name, st, ok, want[name]))
			}
		}
		if len(wrong) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 30s:\n%s", strings.Join(wrong, "\n"))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func merge(m map[string]string, k, v string) map[string]string {
	out := map[string]string{k: v}
	for kk, vv := range m {
		out[kk] = vv
	}
	return out
}

// key identifies an alert by its sorted labels.
func key(ls map[string]string) string {
	var parts []string
	for k, v := range ls {
		parts = append(parts, k+"="+v)
	}
	slices.Sort(parts)
	return strings.Join(parts, ",")
}

// inhibited lists every alert Alertmanager holds, by key: whether an
// inhibit rule holds it back.
func inhibited(client *http.Client, base string) (map[string]bool, error) {
	resp, err := client.Get(base + "/api/v2/alerts")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var list []struct {
		Labels map[string]string `json:"labels"`
		Status struct {
			InhibitedBy []string `json:"inhibitedBy"`
		} `json:"status"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&list); err != nil {
		return nil, err
	}
	out := map[string]bool{}
	for _, a := range list {
		out[key(a.Labels)] = len(a.Status.InhibitedBy) > 0
	}
	return out, nil
}

func freeLoopbackPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

package agent

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"testing"
	"time"
)

// TestReloadTransportChangeLeavesNoStaleSeries is issue 11's stale-series
// defect through the real agent: a sip check whose protocol: changes from
// udp to tcp, then is removed, by reloads of its config file. Its counters
// of the old transport must go at the change, and all of them at the
// removal. The sip port is closed on loopback, so each run is a quick
// refusal; the verdict does not matter, only which series exist.
func TestReloadTransportChangeLeavesNoStaleSeries(t *testing.T) {
	sipPort, otherPort := freePort(t), freePort(t)
	path := filepath.Join(t.TempDir(), "connprobe.yml")
	write := func(sip string) {
		body := fmt.Sprintf("defaults: {interval: 1s, timeout: 500ms}\nchecks:\n"+
			"  - {name: other, kind: tcp, host: 127.0.0.1, port: %d}\n%s", otherPort, sip)
		if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	sipWith := func(protocol string) string {
		return fmt.Sprintf("  - {name: trunk, kind: sip, protocol: %s, host: 127.0.0.1, port: %d}\n", protocol, sipPort)
	}

	write(sipWith("udp"))
	a, err := New(Options{ConfigFile: path})
	if err != nil {
		t.Fatal(err)
	}
	a.sched.Start(context.Background())
	defer a.sched.Stop()

	// series lists the protocols of the sip check's series in name.
	series := func(name string) []string {
		rec := httptest.NewRecorder()
		a.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
		re := regexp.MustCompile(`(?m)^` + name + `\{[^}]*check="trunk"[^}]*protocol="(\w+)"`)
		seen := map[string]bool{}
		for _, m := range re.FindAllStringSubmatch(rec.Body.String(), -1) {
			seen[m[1]] = true
		}
		var out []string
		for p := range seen {
			out = append(out, p)
		}
		sort.Strings(out)
		return out
	}
	const runs, latency = "connprobe_check_runs_total", "connprobe_check_latency_seconds_count"
	has := func(protocol string) func() bool {
		return func() bool {
			return slices.Contains(series(runs), protocol) && slices.Contains(series(latency), protocol)
		}
	}

	waitFor(t, 15*time.Second, "a run over udp", has("udp"))

	write(sipWith("tcp"))
	if err := a.Reload(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 15*time.Second, "a run over tcp", has("tcp"))
	for _, name := range []string{runs, latency} {
		if got := series(name); len(got) != 1 || got[0] != "tcp" {
			t.Errorf("after the change to tcp, %s has series of protocols %v, want [tcp]", name, got)
		}
	}

	write("")
	if err := a.Reload(); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{runs, latency} {
		if got := series(name); len(got) != 0 {
			t.Errorf("after the removal, %s still has series of protocols %v", name, got)
		}
	}
}

package agent

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/connprobe/connprobe/targets"
)

// TestReloadOfHugeConfigIsRefused: a reload of a giant configuration (a
// 50 MB file; a small file that expands into too many checks) is refused
// quickly and cheaply through the agent's own reload path, and the running
// configuration keeps probing. Before the limits, a 50 MB file took about a
// minute and 5 GB to load.
func TestReloadOfHugeConfigIsRefused(t *testing.T) {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	port := ln.Addr().(*net.TCPAddr).Port
	good := fmt.Sprintf("defaults: {interval: 1s, timeout: 500ms}\nchecks:\n  - {name: open, kind: tcp, host: 127.0.0.1, port: %d}\n", port)

	cfgPath := filepath.Join(t.TempDir(), "connprobe.yml")
	write := func(body string) {
		t.Helper()
		if err := os.WriteFile(cfgPath, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(good)
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
		case <-done:
		case <-time.After(15 * time.Second):
			t.Error("Run did not return after cancel")
		}
	}()
	waitFor(t, 15*time.Second, "/-/ready", func() bool {
		resp, err := http.Get(base + "/-/ready")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})

	// 50 MB of valid-looking checks, written in a stream.
	f, err := os.Create(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	w := bufio.NewWriter(f)
	w.WriteString("checks:\n")
	for i, n := 0, 0; n < 50<<20; i++ {
		k, _ := fmt.Fprintf(w, "  - name: c%07d\n    kind: tcp\n    host: 127.0.0.1\n    port: %d\n", i, port)
		n += k
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	f.Close()

	// A small file that expands into more than MaxChecks checks.
	var many strings.Builder
	many.WriteString("checks:\n")
	for i := 0; i*1000 <= targets.MaxChecks; i++ {
		fmt.Fprintf(&many, "  - {name: r%d, kind: tcp, host: 127.0.0.1, ip_family: ipv4, ports: \"10000-10999\"}\n", i)
	}

	for _, c := range []struct {
		name, want string
		write      func()
	}{
		{"50 MB file", "too large", func() {}},
		{"too many checks", fmt.Sprintf("more than %d checks", targets.MaxChecks), func() { write(many.String()) }},
	} {
		c.write()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		start := time.Now()
		code, body := post(t, base+"/-/reload")
		took := time.Since(start)
		runtime.ReadMemStats(&after)
		allocated := after.TotalAlloc - before.TotalAlloc
		t.Logf("%s: refused in %v, %d MB allocated", c.name, took.Round(time.Millisecond), allocated>>20)
		if code != http.StatusInternalServerError || !strings.Contains(body, c.want) {
			t.Errorf("%s: reload answered %d %q; want 500 with %q", c.name, code, body, c.want)
		}
		// Margins for a loaded machine; without the limits the 50 MB file
		// took a minute and allocated gigabytes.
		if took > 10*time.Second {
			t.Errorf("%s: refused after %v", c.name, took)
		}
		if allocated > 256<<20 {
			t.Errorf("%s: the refused reload allocated %d MB", c.name, allocated>>20)
		}
	}

	// The first configuration still runs: its check keeps being probed.
	_, m1 := get(t, base+"/metrics")
	runs := func(metrics string) string {
		for _, l := range strings.Split(metrics, "\n") {
			if strings.HasPrefix(l, "connprobe_check_runs_total{") && strings.Contains(l, `check="open"`) {
				return l
			}
		}
		return ""
	}
	if runs(m1) == "" || !strings.Contains(m1, "connprobe_config_last_reload_successful 0") {
		t.Fatalf("after the refused reloads: want the old check's runs and a failed reload in /metrics")
	}
	waitFor(t, 15*time.Second, "another run of the old check", func() bool {
		_, m := get(t, base+"/metrics")
		return runs(m) != runs(m1)
	})
	write(good)
	if code, body := post(t, base+"/-/reload"); code != http.StatusOK {
		t.Errorf("reload of the good configuration again: %d %q", code, body)
	}
}

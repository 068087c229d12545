package agent

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/connprobe/connprobe/internal/oneshot"
	"github.com/connprobe/connprobe/targets"
)

// plantedSecret is the password of TestPasswordNeverInAnyOutput; no run of 4
// of its bytes may reach any output.
const plantedSecret = "Zq7kP9vX2mL4wR8tY6nB"

// hostileFTP answers PASS with a reply longer than the probe's line cap,
// echoing the password 20 bytes in: before the fix the detail quoted the
// reply's first 32 bytes, and with them 12 bytes of the password.
func hostileFTP(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(10 * time.Second))
				br := bufio.NewReader(c)
				_, _ = io.WriteString(c, "220 ftp ready\r\n")
				for {
					line, err := br.ReadString('\n')
					if err != nil {
						return
					}
					switch verb, arg, _ := strings.Cut(strings.TrimSpace(line), " "); verb {
					case "USER":
						_, _ = io.WriteString(c, "331 password please\r\n")
					case "PASS":
						_, _ = io.WriteString(c, "530 "+strings.Repeat("-", 16)+arg+strings.Repeat("y", 9000)+"\r\n")
					default:
						_, _ = io.WriteString(c, "500 no\r\n")
					}
				}
			}()
		}
	}()
	return ln.Addr().(*net.TCPAddr).Port
}

// secretRunIn returns a run of 4 bytes of the secret found in out, or "".
func secretRunIn(out, secret string) string {
	for i := 0; i+4 <= len(secret); i++ {
		if strings.Contains(out, secret[i:i+4]) {
			return secret[i : i+4]
		}
	}
	return ""
}

// TestPasswordNeverInAnyOutput plants a password that a hostile FTP server
// echoes across the detail's cut and greps every output for any 4 bytes of
// it: the debug log and the status page of the agent, and the table and
// JSON of `probe check`.
func TestPasswordNeverInAnyOutput(t *testing.T) {
	port := hostileFTP(t)
	t.Setenv("CONNPROBE_TEST_FTP_PW", plantedSecret)
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "connprobe.yml")
	cfg := fmt.Sprintf(`
defaults: {interval: 3s, timeout: 2s}
checks:
  - {name: files, kind: ftp, host: 127.0.0.1, port: %d, user: alice, password_env: CONNPROBE_TEST_FTP_PW}
`, port)
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}

	// probe check: table and JSON.
	plan, err := targets.BuildPlan(cfgPath, targets.Options{})
	if err != nil {
		t.Fatal(err)
	}
	out := oneshot.Run(context.Background(), plan.Checks, oneshot.Options{})
	results := out.Results
	if len(results) != 1 || results[0].Up || !strings.Contains(results[0].Detail, "longer than") {
		t.Fatalf("the hostile server was not met as planned: %+v", results)
	}
	var table, js bytes.Buffer
	rep := oneshot.NewReport(out, nil)
	if err := rep.WriteTable(&table, oneshot.TableOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := rep.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}

	// The agent: debug log and status page.
	var logs bytes.Buffer
	var logMu sync.Mutex
	logger := slog.New(slog.NewTextHandler(lockedWriter{&logs, &logMu}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	webPort := freePort(t)
	base := fmt.Sprintf("http://127.0.0.1:%d", webPort)
	a, err := New(Options{ConfigFile: cfgPath, ListenAddrs: []string{fmt.Sprintf("127.0.0.1:%d", webPort)}, Logger: logger})
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
	var page string
	waitFor(t, 20*time.Second, "the check's failure on the status page and in the log", func() bool {
		logMu.Lock()
		logged := strings.Contains(logs.String(), "longer than")
		logMu.Unlock()
		if !logged {
			return false
		}
		_, page = get(t, base+"/")
		return strings.Contains(page, "longer than")
	})
	logMu.Lock()
	logged := logs.String()
	logMu.Unlock()

	for name, out := range map[string]string{"table": table.String(), "json": js.String(), "status page": page, "log": logged} {
		if run := secretRunIn(out, plantedSecret); run != "" {
			t.Errorf("the %s shows %q of the password:\n%s", name, run, out)
		}
		if name != "table" && !strings.Contains(out, "[redacted]") { // the table cuts long details
			t.Errorf("the %s does not show where the password was redacted:\n%s", name, out)
		}
	}
}

type lockedWriter struct {
	w  io.Writer
	mu *sync.Mutex
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

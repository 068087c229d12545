package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func writeFile(t *testing.T, dir, name, body string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

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

func TestCheckExitCodesAgreeWithResults(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	open := l.Addr().(*net.TCPAddr).Port
	closed := freePort(t)
	dir := t.TempDir()

	allUp := writeFile(t, dir, "up.yml", fmt.Sprintf("checks:\n  - {name: open, kind: tcp, host: 127.0.0.1, port: %d, timeout: 1s}\n", open))
	essentialDown := writeFile(t, dir, "down.yml", fmt.Sprintf(
		"checks:\n  - {name: open, kind: tcp, host: 127.0.0.1, port: %d, timeout: 1s}\n  - {name: closed, kind: tcp, host: 127.0.0.1, port: %d, timeout: 1s}\n", open, closed))
	optionalDown := writeFile(t, dir, "optional.yml", fmt.Sprintf(
		"checks:\n  - {name: closed, kind: tcp, host: 127.0.0.1, port: %d, timeout: 1s, essential: false}\n", closed))
	broken := writeFile(t, dir, "broken.yml", "checks:\n  - {name: x, kind: tcp, host: 127.0.0.1, port: 70000}\n")

	cases := []struct {
		name     string
		args     []string
		wantCode int
		wantOut  string
		wantErr  string
	}{
		{"all up", []string{"check", "--config.file", allUp}, 0, "1 ok, 0 failed", ""},
		{"essential down", []string{"check", "--config.file", essentialDown}, 1, "refused", ""},
		{"optional down", []string{"check", "--config.file", optionalDown}, 0, "WARN", ""},
		{"broken config", []string{"check", "--config.file", broken}, 2, "", "broken.yml:2"},
		{"bad output", []string{"check", "--config.file", allUp, "-o", "xml"}, 2, "", "table or json"},
		{"unknown flag", []string{"check", "--nope"}, 2, "", "unknown flag"},
		{"unknown subcommand", []string{"frobnicate"}, 2, "", "unknown subcommand"},
		{"validate ok", []string{"validate", "--config.file", essentialDown}, 0, "valid, 2 checks", ""},
		{"validate broken", []string{"validate", "--config.file", broken}, 2, "", "70000"},
		{"version", []string{"version"}, 0, "connprobe", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			code := run(tc.args, &out, &errb)
			if code != tc.wantCode {
				t.Errorf("exit code %d, want %d\nstdout: %s\nstderr: %s", code, tc.wantCode, out.String(), errb.String())
			}
			if tc.wantOut != "" && !strings.Contains(out.String(), tc.wantOut) {
				t.Errorf("stdout lacks %q:\n%s", tc.wantOut, out.String())
			}
			if tc.wantErr != "" && !strings.Contains(errb.String(), tc.wantErr) {
				t.Errorf("stderr lacks %q:\n%s", tc.wantErr, errb.String())
			}
		})
	}
}

func TestCheckJSONOutput(t *testing.T) {
	closed := freePort(t)
	cfg := writeFile(t, t.TempDir(), "c.yml", fmt.Sprintf("checks:\n  - {name: closed, kind: tcp, host: 127.0.0.1, port: %d, timeout: 1s}\n", closed))
	var out, errb bytes.Buffer
	if code := run([]string{"check", "--config.file", cfg, "-o", "json"}, &out, &errb); code != 1 {
		t.Fatalf("exit code %d, want 1; stderr %s", code, errb.String())
	}
	var doc struct {
		Results []struct {
			Check    string `json:"check"`
			Port     int    `json:"port"`
			Up       bool   `json:"up"`
			Reason   string `json:"reason"`
			Phase    string `json:"phase"`
			Protocol string `json:"protocol"`
		} `json:"results"`
	}
	if err := json.Unmarshal(out.Bytes(), &doc); err != nil {
		t.Fatalf("stdout is not JSON: %v\n%s", err, out.String())
	}
	if len(doc.Results) != 1 {
		t.Fatalf("%d results", len(doc.Results))
	}
	r := doc.Results[0]
	if r.Check != "closed" || r.Port != closed || r.Up || r.Reason != "refused" || r.Phase != "connect" || r.Protocol != "tcp" {
		t.Errorf("result = %+v", r)
	}
}

// TestAgentReloadsOnSIGHUP runs the real binary and reloads it with a signal.
func TestAgentReloadsOnSIGHUP(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := filepath.Join(t.TempDir(), "probe")
	build := exec.Command("go", "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	open := l.Addr().(*net.TCPAddr).Port
	dir := t.TempDir()
	cfg := writeFile(t, dir, "c.yml", fmt.Sprintf("defaults: {interval: 1s, timeout: 500ms}\nchecks:\n  - {name: first, kind: tcp, host: 127.0.0.1, port: %d}\n", open))
	webPort := freePort(t)
	base := fmt.Sprintf("http://127.0.0.1:%d", webPort)

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "--config.file", cfg, "--web.listen-address", fmt.Sprintf("127.0.0.1:%d", webPort))
	var logs bytes.Buffer
	cmd.Stderr = &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		waited := make(chan error, 1)
		go func() { waited <- cmd.Wait() }()
		select {
		case err := <-waited:
			if err != nil {
				t.Errorf("agent exited with %v after SIGTERM\n%s", err, logs.String())
			}
		case <-time.After(15 * time.Second):
			t.Errorf("agent did not stop within 15s of SIGTERM")
			_ = cmd.Process.Kill()
		}
	}()

	scrape := func() string {
		resp, err := http.Get(base + "/metrics")
		if err != nil {
			return ""
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
		return string(b)
	}
	waitUntil := func(what string, cond func(string) bool) {
		t.Helper()
		deadline := time.Now().Add(15 * time.Second)
		for time.Now().Before(deadline) {
			if cond(scrape()) {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
		t.Fatalf("timed out waiting for %s\nlogs:\n%s", what, logs.String())
	}
	waitUntil("first check up", func(m string) bool { return strings.Contains(m, `connprobe_check_up{check="first"`) })

	writeFile(t, dir, "c.yml", fmt.Sprintf("defaults: {interval: 1s, timeout: 500ms}\nchecks:\n  - {name: second, kind: tcp, host: 127.0.0.1, port: %d}\n", open))
	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitUntil("second check after SIGHUP", func(m string) bool {
		return strings.Contains(m, `connprobe_check_up{check="second"`) && !strings.Contains(m, `check="first"`)
	})

	writeFile(t, dir, "c.yml", "checks: [oops\n")
	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitUntil("reload failure metric", func(m string) bool {
		return strings.Contains(m, "connprobe_config_last_reload_successful 0") && strings.Contains(m, `check="second"`)
	})
}

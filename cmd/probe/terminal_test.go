//go:build !windows

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/creack/pty"
)

// The terminal tests run the real binary with its stdout and stderr on
// pseudo-terminals (github.com/creack/pty), as a technician's shell would.

func buildProbe(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := filepath.Join(t.TempDir(), "probe")
	args := []string{"build", "-o", bin}
	if raceDetector {
		// A race in the binary makes it exit with status 66, failing the
		// test that ran it.
		args = append(args, "-race")
	}
	if out, err := exec.Command("go", append(args, ".")...).CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// chunk is what a terminal showed, and when.
type chunk struct {
	at   time.Time
	data string
}

// ptyTerm is the reading side of one pseudo-terminal.
type ptyTerm struct {
	ptmx, tty *os.File
	mu        sync.Mutex
	chunks    []chunk
	done      chan struct{}
}

func openTerminal(t *testing.T, cols uint16) *ptyTerm {
	t.Helper()
	ptmx, tty, err := pty.Open()
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("no pseudo-terminal under CI: %v", err)
		}
		t.Skipf("no pseudo-terminal (/dev/ptmx): %v", err)
	}
	if err := pty.Setsize(ptmx, &pty.Winsize{Rows: 50, Cols: cols}); err != nil {
		t.Fatal(err)
	}
	term := &ptyTerm{ptmx: ptmx, tty: tty, done: make(chan struct{})}
	go func() {
		defer close(term.done)
		buf := make([]byte, 4096)
		for {
			n, err := ptmx.Read(buf)
			if n > 0 {
				term.mu.Lock()
				term.chunks = append(term.chunks, chunk{time.Now(), string(buf[:n])})
				term.mu.Unlock()
			}
			if err != nil {
				return // EIO once the child and our tty copy are closed
			}
		}
	}()
	t.Cleanup(func() { ptmx.Close(); tty.Close() })
	return term
}

// text is everything shown, with the terminal's \r\n made \n.
func (term *ptyTerm) text() string {
	term.mu.Lock()
	defer term.mu.Unlock()
	var b strings.Builder
	for _, c := range term.chunks {
		b.WriteString(c.data)
	}
	return strings.ReplaceAll(b.String(), "\r\n", "\n")
}

// when is the time s first showed, or the zero time.
func (term *ptyTerm) when(s string) time.Time {
	term.mu.Lock()
	defer term.mu.Unlock()
	var b strings.Builder
	for _, c := range term.chunks {
		b.WriteString(c.data)
		if strings.Contains(b.String(), s) {
			return c.at
		}
	}
	return time.Time{}
}

// runOnTerminals runs bin with stdout and stderr on two terminals and
// returns its exit code and when it ended.
// onStart, if set, gets the started process.
func runOnTerminals(t *testing.T, bin string, env []string, out, errt *ptyTerm, onStart func(*os.Process), args ...string) (int, time.Time) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Stdout, cmd.Stderr = out.tty, errt.tty
	cmd.Env = append(os.Environ(), env...)
	err := cmd.Start()
	if err == nil {
		if onStart != nil {
			onStart(cmd.Process)
		}
		err = cmd.Wait()
	}
	ended := time.Now()
	out.tty.Close()
	errt.tty.Close()
	for _, term := range []*ptyTerm{out, errt} {
		select {
		case <-term.done:
		case <-time.After(10 * time.Second):
			t.Fatal("terminal output did not end")
		}
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode(), ended
	}
	if err != nil {
		t.Fatal(err)
	}
	return 0, ended
}

var ansiCode = regexp.MustCompile(`\x1b\[[0-9;]*[A-Za-z]`)

// labServers starts a TCP listener that accepts and a UDP socket that reads
// datagrams and never answers (each arrival is sent on heard), and finds
// four consecutive closed TCP ports.
func labServers(t *testing.T) (open, silent, closedBase int, heard chan struct{}) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	heard = make(chan struct{}, 16)
	go func() {
		buf := make([]byte, 2048)
		for {
			if _, _, err := pc.ReadFrom(buf); err != nil {
				return
			}
			select {
			case heard <- struct{}{}:
			default:
			}
		}
	}()
	closedBase = consecutiveClosedPorts(t, 4)
	return l.Addr().(*net.TCPAddr).Port, pc.LocalAddr().(*net.UDPAddr).Port, closedBase, heard
}

func consecutiveClosedPorts(t *testing.T, n int) int {
	t.Helper()
	for base := 41000; base < 60000; base += 37 {
		var ls []net.Listener
		for p := base; p < base+n; p++ {
			l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
			if err != nil {
				break
			}
			ls = append(ls, l)
		}
		for _, l := range ls {
			l.Close()
		}
		if len(ls) == n {
			return base
		}
	}
	t.Fatal("no free port range")
	return 0
}

func TestCheckOnATerminal(t *testing.T) {
	bin := buildProbe(t)
	open, silent, base, heard := labServers(t)
	dir := t.TempDir()
	cfg := writeFile(t, dir, "c.yml", fmt.Sprintf(`checks:
  - {name: fast, kind: tcp, host: 127.0.0.1, port: %d, timeout: 1s}
  - {name: silent, kind: udp, host: 127.0.0.1, port: %d, payload: echo, timeout: 3s}
  - {name: closed-range, kind: tcp, host: 127.0.0.1, ports: "%d-%d", timeout: 1s, essential: false}
`, open, silent, base, base+3))

	t.Run("rows as they finish, progress, colours, width", func(t *testing.T) {
		out, errt := openTerminal(t, 80), openTerminal(t, 80)
		code, ended := runOnTerminals(t, bin, nil, out, errt, nil, "check", "--config.file", cfg)
		if code != 1 {
			t.Errorf("exit code %d, want 1 (the essential silent check failed)\n%s", code, out.text())
		}
		stdout, stderr := out.text(), errt.text()
		// The fast check's row showed while the silent one still waited for
		// its 3 s timeout.
		fastAt := out.when("fast")
		if fastAt.IsZero() || ended.Sub(fastAt) < 1500*time.Millisecond {
			t.Errorf("the fast row showed %v before the end; want it printed as it finished, seconds earlier", ended.Sub(fastAt))
		}
		plain := ansiCode.ReplaceAllString(stdout, "")
		for _, want := range []string{"OK       fast", "WARN     closed-", fmt.Sprintf("%d-%d: 4 refused", base, base+3),
			"FAIL     silent", "no_reply", "custom checks: NOT READY (1 of 2 essential checks fail: silent"} {
			if !strings.Contains(plain, want) {
				t.Errorf("stdout lacks %q:\n%s", want, plain)
			}
		}
		if !strings.Contains(stdout, "\x1b[32mOK") || !strings.Contains(stdout, "\x1b[1;31mFAIL") {
			t.Errorf("no colours on a terminal:\n%q", stdout)
		}
		rows := strings.Split(plain, "\n\n")[0]
		for _, line := range strings.Split(rows, "\n") {
			if n := utf8.RuneCountInString(line); n > 80 {
				t.Errorf("a %d-column row on an 80-column terminal: %q", n, line)
			}
		}
		if strings.Contains(stdout, "\r\x1b[K") {
			t.Errorf("progress on stdout:\n%q", stdout)
		}
		// Progress is on stderr: counts, elapsed, the check in flight, and
		// the line is cleared at the end.
		for _, want := range []string{"[0/6] 0:00", "running silent 127.0.0.1:", "[5/6] 0:0"} {
			if !strings.Contains(stderr, want) {
				t.Errorf("progress lacks %q:\n%q", want, stderr)
			}
		}
		if !strings.HasSuffix(stderr, "\r\x1b[K") {
			t.Errorf("the progress line is not cleared at the end: %q", stderr[max(0, len(stderr)-60):])
		}
	})

	t.Run("NO_COLOR", func(t *testing.T) {
		quick := writeFile(t, dir, "quick.yml", fmt.Sprintf("checks:\n  - {name: fast, kind: tcp, host: 127.0.0.1, port: %d, timeout: 1s}\n", open))
		out, errt := openTerminal(t, 120), openTerminal(t, 120)
		if code, _ := runOnTerminals(t, bin, []string{"NO_COLOR=1"}, out, errt, nil, "check", "--config.file", quick); code != 0 {
			t.Errorf("exit code %d\n%s", code, out.text())
		}
		if stdout := out.text(); strings.Contains(stdout, "\x1b[") || !strings.Contains(stdout, "OK       fast") {
			t.Errorf("NO_COLOR: %q", stdout)
		}
	})

	t.Run("Ctrl-C", func(t *testing.T) {
		slow := writeFile(t, dir, "slow.yml", fmt.Sprintf(`checks:
  - {name: fast, kind: tcp, host: 127.0.0.1, port: %d, timeout: 1s}
  - {name: silent, kind: udp, host: 127.0.0.1, port: %d, payload: echo, timeout: 20s}
`, open, silent))
		for range len(heard) {
			<-heard
		}
		out, errt := openTerminal(t, 120), openTerminal(t, 120)
		// SIGINT, what Ctrl-C on a terminal delivers, once the silent probe
		// is in flight.
		interrupt := func(p *os.Process) {
			go func() {
				select {
				case <-heard:
				case <-time.After(20 * time.Second):
					return
				}
				time.Sleep(200 * time.Millisecond) // let the fast check finish
				_ = p.Signal(os.Interrupt)
			}()
		}
		began := time.Now()
		code, ended := runOnTerminals(t, bin, nil, out, errt, interrupt, "check", "--config.file", slow)
		if code != 130 {
			t.Errorf("exit code %d, want 130\n%s", code, out.text())
		}
		if took := ended.Sub(began); took > 10*time.Second {
			t.Errorf("an interrupted run took %v; the 20 s probe was not cut short", took)
		}
		plain := ansiCode.ReplaceAllString(out.text(), "")
		for _, want := range []string{"NOT RUN", "checks:  1 ok, 0 failed (0 essential), 1 not run",
			"custom checks: INCOMPLETE (1 of 2 essential checks did not run: silent (not run))"} {
			if !strings.Contains(plain, want) {
				t.Errorf("stdout lacks %q:\n%s", want, plain)
			}
		}
	})
}

// Piped output: no progress, no colours, rows in check order, and one JSON
// document with the summary, also when interrupted.
func TestCheckPipedAndInterruptedJSON(t *testing.T) {
	bin := buildProbe(t)
	open, silent, _, heard := labServers(t)
	cfg := writeFile(t, t.TempDir(), "c.yml", fmt.Sprintf(`checks:
  - {name: silent, kind: udp, host: 127.0.0.1, port: %d, payload: echo, timeout: 20s}
  - {name: fast, kind: tcp, host: 127.0.0.1, port: %d, timeout: 1s}
`, silent, open))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "check", "--config.file", cfg, "-o", "json")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-heard:
	case <-time.After(20 * time.Second):
		t.Fatal("the silent probe never arrived")
	}
	time.Sleep(200 * time.Millisecond) // let the fast check finish
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	err := cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 130 {
		t.Fatalf("exit %v, want code 130\nstderr: %s", err, stderr.String())
	}
	if stderr.Len() != 0 {
		t.Errorf("stderr is not a terminal, yet: %q", stderr.String())
	}
	var doc struct {
		Results []struct {
			Check  string `json:"check"`
			Reason string `json:"reason"`
			NotRun bool   `json:"not_run"`
		} `json:"results"`
		Summary struct {
			Checks struct {
				OK     int `json:"ok"`
				NotRun int `json:"not_run"`
			} `json:"checks"`
			ExitCode int `json:"exit_code"`
		} `json:"summary"`
	}
	if err := json.Unmarshal(stdout.Bytes(), &doc); err != nil {
		t.Fatalf("not one JSON document: %v\n%s", err, stdout.String())
	}
	if len(doc.Results) != 2 || doc.Results[0].Check != "silent" || !doc.Results[0].NotRun || doc.Results[0].Reason != "skipped" ||
		doc.Results[1].NotRun || doc.Summary.Checks.OK != 1 || doc.Summary.Checks.NotRun != 1 || doc.Summary.ExitCode != 130 {
		t.Errorf("interrupted JSON: %+v", doc)
	}

	// The table, piped: check order, no escape codes, no progress.
	var out, errb bytes.Buffer
	quick := writeFile(t, t.TempDir(), "q.yml", fmt.Sprintf(
		"checks:\n  - {name: b-closed, kind: tcp, host: 127.0.0.1, port: %d, timeout: 1s, essential: false}\n  - {name: a-open, kind: tcp, host: 127.0.0.1, port: %d, timeout: 1s}\n",
		freePort(t), open))
	if code := run([]string{"check", "--config.file", quick}, &out, &errb); code != 0 {
		t.Fatalf("exit %d\n%s%s", code, out.String(), errb.String())
	}
	if strings.Contains(out.String()+errb.String(), "\x1b") || errb.Len() != 0 {
		t.Errorf("escape codes or progress when piped:\nstdout %q\nstderr %q", out.String(), errb.String())
	}
	if i, j := strings.Index(out.String(), "b-closed"), strings.Index(out.String(), "a-open"); i < 0 || j < i {
		t.Errorf("rows not in check order:\n%s", out.String())
	}
}

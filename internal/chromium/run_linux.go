package chromium

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"
)

// Run runs Chromium (bin, from Find) once against url with extra flags
// (--dump-dom, --screenshot=FILE, --window-size=W,H, ...) and returns its
// stdout and stderr. Chromium runs in its own process group, killed at the
// end, so no renderer or helper outlives the test.
func Run(t testing.TB, bin, url string, extra ...string) (stdout, stderr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, append(append(args(t.TempDir()), extra...), url)...)
	cmd.Env = append(os.Environ(), "HOME="+t.TempDir())
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 10 * time.Second
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if cmd.Process != nil {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
	if err != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			t.Fatalf("chromium did not finish within %s; stderr:\n%s", Timeout, tail(errb.String(), 3000))
		}
		t.Fatalf("chromium %v: %v; stderr:\n%s", extra, err, tail(errb.String(), 3000))
	}
	return out.String(), errb.String()
}

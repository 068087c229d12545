//go:build linux

package netlab

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"
)

// Helper processes: code that dials by itself (and so cannot be moved into a
// namespace socket by socket) runs in a child process started inside the
// namespace. The child is the test binary itself, re-executed with -test.run
// selecting one helper test:
//
//	func TestMyHelperProcess(t *testing.T) {
//		var in Input
//		if ok, err := netlab.HelperInput(&in); !ok {
//			t.Skip("helper process for the netlab tests; runs only when they start it")
//		} else if err != nil {
//			t.Fatal(err)
//		}
//		out := doTheWork(in)
//		if err := netlab.WriteHelperOutput(out); err != nil {
//			t.Fatal(err)
//		}
//	}
//
// and the parent calls lab.RunHelper(lab.Client(), "TestMyHelperProcess", in, &out, timeout).

// HelperEnv is the environment variable carrying a helper process's JSON input.
const HelperEnv = "NETLAB_HELPER_INPUT"

// outputMarker prefixes the one stdout line holding the helper's JSON output,
// telling it apart from whatever else the test binary prints.
const outputMarker = "NETLAB-HELPER-OUTPUT "

// RunHelper runs the helper test named test in a child process (this test
// binary, re-executed) inside namespace ns. in is passed JSON-encoded in
// HelperEnv; the JSON the helper writes with WriteHelperOutput is decoded into
// out. The child is killed, with its process group, when timeout passes.
func (l *Lab) RunHelper(ns, test string, in, out any, timeout time.Duration) error {
	return RunHelper(ns, test, in, out, timeout)
}

// RunHelper is Lab.RunHelper for any named namespace.
func RunHelper(ns, test string, in, out any, timeout time.Duration) error {
	return runHelper(ns, nil, test, in, out, timeout)
}

// Nobody is the unprivileged user (and group) RunHelperAs usually runs as.
var Nobody = &syscall.Credential{Uid: 65534, Gid: 65534, Groups: []uint32{}}

// RunHelperAs is RunHelper with the child running as cred's user and groups,
// without any capability: it proves that the code under test needs no
// privilege. The test binary is copied to a directory every user can read
// (the go command builds it in a private one) and removed afterwards.
func (l *Lab) RunHelperAs(ns string, cred *syscall.Credential, test string, in, out any, timeout time.Duration) error {
	return runHelper(ns, cred, test, in, out, timeout)
}

func runHelper(ns string, cred *syscall.Credential, test string, in, out any, timeout time.Duration) error {
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("netlab: finding the test binary: %w", err)
	}
	payload, err := json.Marshal(in)
	if err != nil {
		return fmt.Errorf("netlab: encoding helper input: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	args := []string{"-test.run=^" + test + "$", "-test.count=1", "-test.v=false",
		"-test.timeout=" + (timeout + 5*time.Second).String()}
	env := append(withoutEnv(os.Environ(), HelperEnv, "GORACE"), HelperEnv+"="+string(payload))
	// A race-enabled binary sleeps a second at exit by default; the helper
	// exits once per case.
	env = append(env, "GORACE="+strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0"))
	stdout := &boundedBuffer{max: maxOutput}
	stderr := &boundedBuffer{max: 64 << 10}
	prepare := func(c *exec.Cmd) *exec.Cmd {
		c.Env = env
		c.Stdout, c.Stderr = stdout, stderr
		c.Cancel = func() error { return syscall.Kill(-c.Process.Pid, syscall.SIGKILL) }
		c.WaitDelay = 2 * time.Second
		return c
	}
	start := time.Now()
	var runErr error
	if cred == nil {
		// /proc/self/exe would name ip itself once ip netns exec runs, hence
		// the resolved path of this binary.
		c := prepare(exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", ns, exe}, args...)...))
		c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		runErr = c.Run()
	} else {
		shared, cleanup, err := sharedCopy(exe)
		if err != nil {
			return err
		}
		defer cleanup()
		newCmd := func() *exec.Cmd {
			c := prepare(exec.CommandContext(ctx, shared, args...))
			c.Dir = filepath.Dir(shared)
			c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Credential: cred}
			return c
		}
		// A child forked from a thread inside ns starts in ns: no ip netns
		// exec, which would need the privilege the child must not have.
		var c *exec.Cmd
		if err := inNetns(ns, func() (err error) { c, err = startRetryingBusy(newCmd); return err }); err != nil {
			return fmt.Errorf("netlab: starting helper %s in %s as uid %d: %w", test, ns, cred.Uid, err)
		}
		runErr = c.Wait()
	}
	if ctx.Err() != nil {
		return fmt.Errorf("netlab: helper %s in %s killed after %s\nstdout:\n%s\nstderr:\n%s",
			test, ns, time.Since(start).Round(time.Millisecond), stdout, stderr)
	}
	line, found := findOutput(stdout.buf.Bytes())
	if runErr != nil || !found {
		if runErr == nil {
			runErr = errors.New("no output line (did the helper test skip?)")
		}
		return fmt.Errorf("netlab: helper %s in %s: %v\nstdout:\n%s\nstderr:\n%s", test, ns, runErr, stdout, stderr)
	}
	if err := json.Unmarshal(line, out); err != nil {
		return fmt.Errorf("netlab: decoding the output of helper %s: %w\n%s", test, err, line)
	}
	return nil
}

// HelperInput decodes the helper input into in. ok is false when this process
// is not a helper process (the helper test should then skip).
func HelperInput(in any) (ok bool, err error) {
	payload, set := os.LookupEnv(HelperEnv)
	if !set {
		return false, nil
	}
	if err := json.Unmarshal([]byte(payload), in); err != nil {
		return true, fmt.Errorf("netlab: decoding %s: %w", HelperEnv, err)
	}
	return true, nil
}

// WriteHelperOutput writes out, JSON-encoded, as the helper's result on stdout.
func WriteHelperOutput(out any) error {
	b, err := json.Marshal(out)
	if err != nil {
		return fmt.Errorf("netlab: encoding helper output: %w", err)
	}
	_, err = io.WriteString(os.Stdout, "\n"+outputMarker+string(b)+"\n")
	return err
}

func findOutput(stdout []byte) ([]byte, bool) {
	sc := bufio.NewScanner(bytes.NewReader(stdout))
	sc.Buffer(make([]byte, 0, 64<<10), maxOutput)
	for sc.Scan() {
		if rest, ok := bytes.CutPrefix(sc.Bytes(), []byte(outputMarker)); ok {
			return append([]byte(nil), rest...), true
		}
	}
	return nil, false
}

func withoutEnv(env []string, keys ...string) []string {
	out := env[:0:0]
	for _, kv := range env {
		name, _, _ := strings.Cut(kv, "=")
		if !slices.Contains(keys, name) {
			out = append(out, kv)
		}
	}
	return out
}

// sharedCopy copies the test binary into a new directory that every user may
// read and execute, and returns its path and a function removing it.
func sharedCopy(exe string) (string, func(), error) {
	dir, err := os.MkdirTemp("", "netlab-helper-")
	if err != nil {
		return "", nil, fmt.Errorf("netlab: %w", err)
	}
	cleanup := func() { os.RemoveAll(dir) }
	if err := os.Chmod(dir, 0o755); err != nil {
		cleanup()
		return "", nil, fmt.Errorf("netlab: %w", err)
	}
	src, err := os.Open(exe)
	if err != nil {
		cleanup()
		return "", nil, fmt.Errorf("netlab: %w", err)
	}
	defer src.Close()
	dst := filepath.Join(dir, filepath.Base(exe))
	f, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_EXCL, 0o755)
	if err != nil {
		cleanup()
		return "", nil, fmt.Errorf("netlab: %w", err)
	}
	_, err = io.Copy(f, src)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		cleanup()
		return "", nil, fmt.Errorf("netlab: copying the test binary: %w", err)
	}
	return dst, cleanup, nil
}

// startRetryingBusy starts a command from newCmd, retrying with a fresh one
// while its freshly written binary is "text file busy": a process forked
// elsewhere in this test binary (another lab's command) can hold the copy's
// write descriptor until it execs. Bounded: about a second.
func startRetryingBusy(newCmd func() *exec.Cmd) (*exec.Cmd, error) {
	for try := 0; ; try++ {
		c := newCmd()
		err := c.Start()
		if !errors.Is(err, syscall.ETXTBSY) || try == 20 {
			return c, err
		}
		time.Sleep(50 * time.Millisecond)
	}
}

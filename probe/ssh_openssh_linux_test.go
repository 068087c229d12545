//go:build linux

package probe_test

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/connprobe/connprobe/internal/netlab"
	"github.com/connprobe/connprobe/probe"
)

// sshdPort is where the lab's real sshd listens (inside the server
// namespace, so the host's own port 22 is never involved).
const sshdPort = 2222

// sshdBinaries returns the paths of sshd and ssh-keygen. Without them the
// test skips, except in CI, where a missing openssh-server is a broken setup.
func sshdBinaries(t *testing.T) (sshd, keygen string) {
	t.Helper()
	sshd, keygen = "/usr/sbin/sshd", "ssh-keygen"
	_, err := os.Stat(sshd)
	if err == nil {
		keygen, err = exec.LookPath(keygen)
	}
	if err != nil {
		msg := "real sshd test needs openssh-server (apt-get install openssh-server): " + err.Error()
		if os.Getenv("CI") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return sshd, keygen
}

// startSSHD runs a real OpenSSH server in the lab's server namespace with a
// throw-away host key and a config that allows no login at all (the probe
// never logs in; nothing else can reach the namespace anyway). It returns
// once the port accepts connections.
func startSSHD(t *testing.T, lab *netlab.Lab) {
	t.Helper()
	sshd, keygen := sshdBinaries(t)
	dir := t.TempDir()
	key := filepath.Join(dir, "host_ed25519")
	if out, err := exec.Command(keygen, "-q", "-t", "ed25519", "-N", "", "-f", key).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v: %s", err, out)
	}
	// sshd chroots its unprivileged child into this directory and refuses to
	// start without it; Debian creates it only when the service starts.
	if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
		t.Fatalf("creating sshd's privilege separation directory: %v", err)
	}
	cfg := filepath.Join(dir, "sshd_config")
	conf := strings.Join([]string{
		"Port " + strconv.Itoa(sshdPort),
		"ListenAddress " + lab.ServerIP().String(),
		"HostKey " + key,
		"PidFile none",
		"UsePAM no",
		"PasswordAuthentication no",
		"KbdInteractiveAuthentication no",
		"PubkeyAuthentication no",
		"PermitRootLogin no",
		"AllowUsers nobody-connprobe-test",
		"LogLevel VERBOSE",
		"",
	}, "\n")
	if err := os.WriteFile(cfg, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	// sshd re-executes itself, hence the absolute path; -D stays in the
	// foreground (so the lab can kill it), -e logs to stderr (the lab shows
	// it when the test fails).
	lab.Start(lab.Server(), sshd, "-D", "-e", "-f", cfg)

	addr := net.JoinHostPort(lab.ServerIP().String(), strconv.Itoa(sshdPort))
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := lab.Do(lab.Server(), func() error {
			c, err := net.DialTimeout("tcp", addr, time.Second)
			if err != nil {
				return err
			}
			return c.Close()
		})
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("sshd did not accept connections on %s within 10s: %v", addr, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestSSHRealOpenSSH(t *testing.T) {
	if err := netlab.Available(); err != nil {
		t.Skipf("netlab: %v", err)
	}
	sshdBinaries(t) // skip (or fail in CI) before building labs
	var cases []fwCase
	for _, tc := range []struct {
		name   string
		rule   []string // on the router's FORWARD chain, if any
		reason probe.Reason
		phase  probe.Phase
		parts  []string
		// atLeast/atMost bound the attempt's duration.
		atLeast, atMost time.Duration
	}{
		{"ok", nil, probe.ReasonOK, probe.PhaseBanner, []string{`identifies as "SSH-2.0-OpenSSH_`, "software OpenSSH_"}, 0, time.Second},
		{"router_drop", []string{"-j", "DROP"}, probe.ReasonTimeout, probe.PhaseConnect, []string{"no answer"},
			1400 * time.Millisecond, 3 * time.Second},
		{"router_reject", []string{"-j", "REJECT"}, probe.ReasonRejected, probe.PhaseConnect,
			[]string{"(port unreachable)", "a device on the path"}, 0, time.Second},
	} {
		cases = append(cases, fwCase{
			name:    tc.name,
			timeout: 1500 * time.Millisecond,
			setup: func(t *testing.T, lab *netlab.Lab) *probe.Check {
				startSSHD(t, lab)
				if tc.rule != nil {
					lab.IPTables(lab.Router(), append([]string{"-A", "FORWARD", "-p", "tcp", "--dport", strconv.Itoa(sshdPort)}, tc.rule...)...)
				}
				return &probe.Check{Name: "ssh", Kind: "ssh", Host: lab.ServerIP().String(), Port: sshdPort}
			},
			reason: tc.reason, phase: tc.phase,
			detail:  func(*netlab.Lab) []string { return tc.parts },
			atLeast: tc.atLeast, atMost: tc.atMost,
			check: func(t *testing.T, _ *netlab.Lab, r probe.Result) {
				if tc.reason != probe.ReasonOK {
					return
				}
				if f := r.Facts.GreetingFacts; f == nil || !strings.HasPrefix(f.Software, "OpenSSH_") {
					t.Errorf("facts %+v, want software OpenSSH_...", f)
				}
			},
		})
	}
	runFwCases(t, cases)
}

//go:build linux

package netlab

import (
	"bytes"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestNetlabTopology(t *testing.T) {
	lab := New(t)

	// A UDP socket opened in the server namespace receives what a socket
	// opened in the client namespace sends across the router.
	pc := lab.ListenUDP(lab.Server(), net.JoinHostPort(lab.ServerIP().String(), "0"))
	var conn net.Conn
	if err := lab.Do(lab.Client(), func() error {
		var err error
		conn, err = net.Dial("udp", pc.LocalAddr().String())
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 16)
	_ = pc.SetReadDeadline(time.Now().Add(3 * time.Second))
	n, from, err := pc.ReadFrom(buf)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(buf[:n], []byte("hello")) || !from.(*net.UDPAddr).IP.Equal(lab.ClientIP()) {
		t.Errorf("got %q from %v, want hello from %v", buf[:n], from, lab.ClientIP())
	}

	// This process stays in its own namespace: no lab address here.
	addrs, _ := net.InterfaceAddrs()
	for _, a := range addrs {
		if strings.HasPrefix(a.String(), lab.ClientIP().String()+"/") {
			t.Errorf("lab address %v visible in the test's own namespace", a)
		}
	}

	// Rules apply and Flush removes them.
	lab.IPTables(lab.Router(), "-A", "FORWARD", "-p", "udp", "-j", "DROP")
	if out := lab.Exec(lab.Router(), "iptables", "-S", "FORWARD"); !strings.Contains(out, "-j DROP") {
		t.Errorf("rule not listed: %s", out)
	}
	lab.Flush(lab.Router())
	if out := lab.Exec(lab.Router(), "iptables", "-S", "FORWARD"); strings.Contains(out, "-j DROP") {
		t.Errorf("rule left after Flush: %s", out)
	}
}

func TestNetlabStartKillsOnCleanup(t *testing.T) {
	var pid int
	t.Run("lab", func(t *testing.T) {
		lab := New(t)
		cmd := lab.Start(lab.Server(), "sleep", "60")
		pid = cmd.Process.Pid
		if out := lab.Exec(lab.Server(), "ip", "-o", "addr"); !strings.Contains(out, lab.ServerIP().String()) {
			t.Errorf("server namespace lacks its address: %s", out)
		}
	})
	if pid == 0 {
		return // skipped
	}
	// Cleanup killed and reaped it: the pid no longer names our child.
	if err := syscall.Kill(pid, 0); err == nil {
		if b, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline"); strings.Contains(string(b), "sleep") {
			t.Errorf("process %d still running after cleanup", pid)
		}
	}
}

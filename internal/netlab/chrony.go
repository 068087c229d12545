//go:build linux

package netlab

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"time"
)

// ChronydPath returns the path of chronyd, or an error saying how to get it.
func ChronydPath() (string, error) {
	for _, p := range []string{"chronyd", "/usr/sbin/chronyd", "/sbin/chronyd"} {
		if path, err := exec.LookPath(p); err == nil {
			return path, nil
		}
	}
	return "", fmt.Errorf("chronyd is missing (apt-get install chrony)")
}

// chronydReadyTimeout bounds the wait for a started chronyd to answer.
const chronydReadyTimeout = 10 * time.Second

// StartChronyd runs chronyd in ns as an NTP server of its own clock at the
// given stratum ("local stratum N"), on UDP port 123 of every address in ns,
// answering anyone ("allow all"). It runs in the foreground as root, with its
// configuration, pid and drift files in a temporary directory, no command
// port, no upstream sources, and without touching any clock (-x). It returns
// once chronyd answers an NTP query with that stratum inside ns, and fails
// the test when it does not within 10s. The test must have checked
// ChronydPath first. chronyd is killed on cleanup like any Start process.
func (l *Lab) StartChronyd(ns string, stratum int) *exec.Cmd {
	l.t.Helper()
	path, err := ChronydPath()
	if err != nil {
		l.t.Fatalf("netlab: %v", err)
	}
	dir, err := os.MkdirTemp("", "netlab-chronyd-")
	if err != nil {
		l.t.Fatalf("netlab: %v", err)
	}
	l.t.Cleanup(func() { os.RemoveAll(dir) })
	conf := filepath.Join(dir, "chrony.conf")
	text := fmt.Sprintf("port 123\ncmdport 0\nlocal stratum %d\nallow all\npidfile %s\ndriftfile %s\n",
		stratum, filepath.Join(dir, "chronyd.pid"), filepath.Join(dir, "drift"))
	if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
		l.t.Fatalf("netlab: %v", err)
	}
	cmd := l.Start(ns, path, "-d", "-x", "-u", "root", "-f", conf)
	if err := l.waitNTP(ns, stratum); err != nil {
		l.t.Fatalf("netlab: chronyd in %s: %v", ns, err)
	}
	return cmd
}

// waitNTP queries 127.0.0.1:123 inside ns until a synchronised reply at
// stratum comes back, within chronydReadyTimeout.
func (l *Lab) waitNTP(ns string, stratum int) error {
	var conn *net.UDPConn
	if err := l.Do(ns, func() error {
		var err error
		conn, err = net.DialUDP("udp4", nil, &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 123})
		return err
	}); err != nil {
		return err
	}
	defer conn.Close()
	deadline := time.Now().Add(chronydReadyTimeout)
	last := "no reply"
	buf := make([]byte, 512)
	for time.Now().Before(deadline) {
		req := make([]byte, 48)
		req[0] = 4<<3 | 3 // version 4, mode 3 (client)
		if _, err := rand.Read(req[40:48]); err != nil {
			return err
		}
		if _, err := conn.Write(req); err != nil {
			last = err.Error() // port unreachable until chronyd binds 123
			time.Sleep(50 * time.Millisecond)
			continue
		}
		_ = conn.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		n, err := conn.Read(buf)
		switch {
		case err != nil:
			last = err.Error()
			time.Sleep(50 * time.Millisecond)
		case n < 48 || !bytes.Equal(buf[24:32], req[40:48]):
			last = "a reply that does not match the query"
		case buf[0]>>6 == 3 || int(buf[1]) != stratum:
			last = fmt.Sprintf("leap %d stratum %d", buf[0]>>6, buf[1])
			time.Sleep(100 * time.Millisecond)
		default:
			return nil
		}
	}
	return fmt.Errorf("no synchronised NTP reply at stratum %d on 127.0.0.1:123 within %s (last: %s)", stratum, chronydReadyTimeout, last)
}

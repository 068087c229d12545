package targets

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestFileSizeLimit(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "big.yml")
	// A sparse 50 MB file: refused from its size, never read.
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(50 << 20); err != nil {
		t.Fatal(err)
	}
	f.Close()
	start := time.Now()
	_, err = Load(path)
	want := fmt.Sprintf("%s: the file is too large: 52428800 bytes, the limit is %d bytes (1 MiB)", path, MaxFileBytes)
	if err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Errorf("Load(50 MB) = %v; want %q...", err, want)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("refused after %v", d)
	}

	// One byte over the limit, as data and as a profile in --profiles.dir.
	over := []byte("checks:\n#" + strings.Repeat("x", MaxFileBytes))
	if _, err := Parse("config.yml", over); err == nil || !strings.Contains(err.Error(), "config.yml: the file is too large") {
		t.Errorf("Parse over the limit: %v", err)
	}
	pdir := t.TempDir()
	if err := os.WriteFile(filepath.Join(pdir, "huge.yml"), over, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadProfiles(pdir); err == nil || !strings.Contains(err.Error(), "huge.yml: the file is too large") {
		t.Errorf("LoadProfiles with a file over the limit: %v", err)
	}

	// At the limit it is read (and judged on its content).
	at := append([]byte("checks:\n  - {name: a, kind: tcp, host: 127.0.0.1, port: 1}\n#"), strings.Repeat("x", MaxFileBytes)...)
	at = at[:MaxFileBytes]
	if err := os.WriteFile(path, at, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(path); err != nil {
		t.Errorf("Load at the limit: %v", err)
	}
}

func TestValueLimits(t *testing.T) {
	long := strings.Repeat("a", MaxNameLen+1)
	checkErr(t, func() error {
		_, err := build("checks:\n  - {name: "+long+", kind: tcp, host: 127.0.0.1, port: 1}\n", Options{})
		return err
	}(),
		[]string{fmt.Sprintf("config.yml:2: the name of check #1 is %d characters long; at most %d", MaxNameLen+1, MaxNameLen)})

	huge := strings.Repeat("b", MaxValueLen+1)
	checkErr(t, func() error {
		_, err := build("checks:\n  - {name: a, kind: tcp, host: "+huge+", port: 1}\n", Options{})
		return err
	}(),
		[]string{fmt.Sprintf(`config.yml:2: host in check "a" is %d bytes long; at most %d`, MaxValueLen+1, MaxValueLen)})

	for _, c := range []struct{ host, want string }{
		{strings.Repeat("h", MaxHostLen+1), fmt.Sprintf("is %d characters long; a DNS name has at most %d", MaxHostLen+1, MaxHostLen)},
		{"<b>x<b>", `holds "<", which no DNS name or IP address has`},
		{`\"x\"`, `holds "\"", which no DNS name or IP address has`},
		{`a\u0007b`, `holds "\a", which no DNS name or IP address has`},
		{`a\u001b[2Jb`, `holds "\x1b", which no DNS name or IP address has`},
		{"bücher.example", "holds non-ASCII characters; write an international name in its ASCII (xn--) form"},
	} {
		_, err := build("checks:\n  - name: a\n    kind: tcp\n    host: \""+c.host+"\"\n    port: 1\n", Options{})
		if err == nil || !strings.HasPrefix(err.Error(), "config.yml:4: host ") || !strings.Contains(err.Error(), c.want) {
			t.Errorf("host %q: %v; want config.yml:4: ... %s", c.host, err, c.want)
		}
	}
	// What hosts are: names, IPv4, IPv6, underscores in service names.
	for _, h := range []string{"example.com", "xn--bcher-kva.example", "192.0.2.1", "2001:db8::1", "_sip._udp.example.com", strings.Repeat("a", 63) + ".example"} {
		if _, err := build("checks:\n  - {name: a, kind: tcp, host: \""+h+"\", port: 1}\n", Options{}); err != nil {
			t.Errorf("host %q refused: %v", h, err)
		}
	}
}

func TestCheckCountLimit(t *testing.T) {
	// Each entry 1000 ports, one family: one past MaxChecks in all.
	var b strings.Builder
	b.WriteString("checks:\n")
	for i := 0; i*1000 <= MaxChecks; i++ {
		fmt.Fprintf(&b, "  - {name: r%d, kind: tcp, host: 127.0.0.1, ports: \"10000-10999\"}\n", i)
	}
	_, err := build(b.String(), Options{})
	if want := fmt.Sprintf("config.yml: the configuration expands into more than %d checks", MaxChecks); err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Errorf("got %v; want %q...", err, want)
	}

	// More entries than checks allowed: refused before they are decoded.
	b.Reset()
	b.WriteString("checks:\n")
	for i := 0; i <= MaxChecks; i++ {
		b.WriteString("  - x\n")
	}
	checkErr(t, func() error { _, err := build(b.String(), Options{}); return err }(),
		[]string{fmt.Sprintf("config.yml:2: checks holds %d entries; at most %d checks in all", MaxChecks+1, MaxChecks)})
}

func TestErrorCap(t *testing.T) {
	var b strings.Builder
	b.WriteString("checks:\n")
	for i := range 30 {
		fmt.Fprintf(&b, "  - {name: c%d, kind: nosuchkind, host: 127.0.0.1, port: 1}\n", i)
	}
	_, err := build(b.String(), Options{})
	lines := errLines(err)
	if len(lines) != maxErrors+1 {
		t.Fatalf("%d lines; want %d errors and a count of the rest:\n%v", len(lines), maxErrors, err)
	}
	if !strings.HasPrefix(lines[0], "config.yml:2: unknown kind") || !strings.HasPrefix(lines[maxErrors-1], fmt.Sprintf("config.yml:%d: unknown kind", maxErrors+1)) {
		t.Errorf("want the first %d errors in file order, got %q ... %q", maxErrors, lines[0], lines[maxErrors-1])
	}
	if want := "... and 10 more errors (the first 20 are listed)"; lines[maxErrors] != want {
		t.Errorf("last line %q; want %q", lines[maxErrors], want)
	}
}

// TestCAFileBounded: ca_file naming an endless file is refused, not read
// forever (a reload would take the agent down).
func TestCAFileBounded(t *testing.T) {
	done := make(chan error, 1)
	go func() {
		_, err := build("tls: {ca_file: /dev/zero}\nchecks:\n  - {name: a, kind: tls, host: 127.0.0.1, port: 1}\n", Options{})
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "cannot read /dev/zero: larger than 4194304 bytes (4 MiB), the limit") {
			t.Errorf("ca_file /dev/zero: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("ca_file /dev/zero: still reading after 20s")
	}
}

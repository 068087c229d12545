package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/goreleaser/nfpm/v2/files"
)

const testVersion = "0.0.0-test"

// TestPackages builds the binary and both packages the way a release does,
// then checks what a user gets: the .deb's files, control fields, conffiles
// and maintainer scripts, the installed binary's version, the installed
// configuration's validity, and the agent serving on loopback.
//
// The .deb is installed for real with dpkg (and purged afterwards) only when
// running as root with CI set, or with CONNPROBE_TEST_DPKG=1: it writes to
// /usr/bin, /etc and the dpkg database of this machine. Otherwise it is
// unpacked with dpkg-deb -x into a temporary directory and run from there.
func TestPackages(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and the packages; skipped with -short")
	}
	requireTool(t, "go")
	tgt, err := linuxTarget(runtime.GOARCH)
	if runtime.GOOS != "linux" || err != nil {
		t.Skipf("packages are built for linux on amd64, arm64 and arm; this is %s/%s", runtime.GOOS, runtime.GOARCH)
	}
	root := repoRoot(t)
	dir := t.TempDir()
	ctx := context.Background()

	start := time.Now()
	bin := filepath.Join(dir, "connprobe")
	if err := buildBinary(ctx, root, bin, tgt, releaseToolchain, testVersion, "testrev"); err != nil {
		t.Fatal(err)
	}
	var log bytes.Buffer
	paths, err := buildPackages(packageOptions{
		Root: root, Config: filepath.Join(root, "deploy/nfpm.yaml"), Binary: bin,
		Version: testVersion, Arch: tgt.pkgArch(), Formats: []string{"deb", "rpm"},
		OutDir: filepath.Join(dir, "dist"), Log: &log,
	})
	if err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	t.Logf("binary and packages built in %v", time.Since(start).Round(time.Millisecond))
	deb, rpm := paths[0], paths[1]
	if want := filepath.Join(dir, "dist", "connprobe_"+testVersion+"_"+tgt.pkgArch()+".deb"); deb != want {
		t.Errorf("deb written to %s, want %s", deb, want)
	}

	t.Run("deb", func(t *testing.T) { checkDeb(t, deb, tgt) })
	t.Run("rpm", func(t *testing.T) { checkRPM(t, rpm) })
	t.Run("install", func(t *testing.T) { installAndRun(t, deb) })
}

func checkDeb(t *testing.T, deb string, tgt target) {
	requireTool(t, "dpkg-deb")
	listing := cmdOut(t, "dpkg-deb", "-c", deb)
	for _, p := range []string{
		"./usr/bin/connprobe",
		"./lib/systemd/system/connprobe.service",
		"./lib/systemd/system/connprobe-prometheus-agent.service",
		"./etc/connprobe/prometheus-agent.yml",
		"./etc/default/connprobe",
		"./etc/connprobe/connprobe.yml",
		"./usr/share/doc/connprobe/README.md",
		"./usr/share/connprobe/profiles/README.md",
	} {
		if !strings.Contains(listing, " "+p+"\n") {
			t.Errorf("dpkg-deb -c: %s missing:\n%s", p, listing)
		}
	}
	if !lineWith(listing, "-rwxr-xr-x root/root", "./usr/bin/connprobe") {
		t.Errorf("dpkg-deb -c: /usr/bin/connprobe is not an executable owned by root:\n%s", listing)
	}

	debArch := map[string]string{"amd64": "amd64", "arm64": "arm64", "arm7": "armhf"}[tgt.pkgArch()]
	for field, want := range map[string]string{
		"Package":      "connprobe",
		"Version":      "0.0.0~test", // nfpm's semver split: sorts before 0.0.0
		"Architecture": debArch,
		"Recommends":   "ca-certificates",
		"Depends":      "", // a static binary needs nothing
		"Section":      "net",
	} {
		if got := strings.TrimSpace(cmdOut(t, "dpkg-deb", "-f", deb, field)); got != want {
			t.Errorf("dpkg-deb -f %s = %q, want %q", field, got, want)
		}
	}
	if m := strings.TrimSpace(cmdOut(t, "dpkg-deb", "-f", deb, "Maintainer")); !strings.Contains(m, "<") {
		t.Errorf("Maintainer %q has no address", m)
	}

	ctl := t.TempDir()
	cmdOut(t, "dpkg-deb", "-e", deb, ctl)
	conffiles := readFile(t, filepath.Join(ctl, "conffiles"))
	for _, c := range []string{"/etc/connprobe/connprobe.yml", "/etc/default/connprobe", "/etc/connprobe/prometheus-agent.yml"} {
		if !strings.Contains(conffiles, c+"\n") {
			t.Errorf("conffiles lacks %s:\n%s", c, conffiles)
		}
	}
	root := repoRoot(t)
	for script, src := range map[string]string{
		"postinst": "deploy/scripts/postinstall.sh",
		"prerm":    "deploy/scripts/preremove.sh",
		"postrm":   "deploy/scripts/postremove.sh",
	} {
		fi, err := os.Stat(filepath.Join(ctl, script))
		if err != nil {
			t.Errorf("maintainer script %s: %v", script, err)
			continue
		}
		if fi.Mode().Perm()&0o111 == 0 {
			t.Errorf("%s is not executable: %v", script, fi.Mode())
		}
		if got, want := readFile(t, filepath.Join(ctl, script)), readFile(t, filepath.Join(root, src)); got != want {
			t.Errorf("%s differs from %s", script, src)
		}
	}
	if _, err := os.Stat(filepath.Join(ctl, "preinst")); err == nil {
		t.Errorf("unexpected preinst: nothing needs to happen before unpacking")
	}
}

// lineWith reports whether a line of s contains a and ends in " "+b.
func lineWith(s, a, b string) bool {
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, a) && strings.HasSuffix(l, " "+b) {
			return true
		}
	}
	return false
}

func checkRPM(t *testing.T, rpm string) {
	fi, err := os.Stat(rpm)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Size() < 1<<20 {
		t.Errorf("%s is %d bytes: too small to hold the binary", rpm, fi.Size())
	}
	if _, err := exec.LookPath("rpm"); err != nil {
		t.Skip("rpm is not installed: only the file was checked (apt-get install rpm to check its contents)")
	}
	list := cmdOut(t, "rpm", "-qpl", rpm)
	for _, p := range []string{
		"/usr/bin/connprobe",
		"/usr/lib/systemd/system/connprobe.service",
		"/usr/lib/systemd/system/connprobe-prometheus-agent.service",
		"/etc/connprobe/prometheus-agent.yml",
		"/etc/default/connprobe",
		"/etc/connprobe/connprobe.yml",
		"/usr/share/doc/connprobe/README.md",
		"/etc/connprobe",
	} {
		if !strings.Contains(list, p+"\n") {
			t.Errorf("rpm -qpl: %s missing:\n%s", p, list)
		}
	}
	if strings.HasPrefix(list, "/lib/") || strings.Contains(list, "\n/lib/") {
		t.Errorf("rpm ships the unit under /lib, not /usr/lib:\n%s", list)
	}
	if cfg := cmdOut(t, "rpm", "-qpc", rpm); !strings.Contains(cfg, "/etc/connprobe/connprobe.yml\n") {
		t.Errorf("rpm -qpc lacks the configuration:\n%s", cfg)
	}
	// noreplace: rpm keeps an edited file and writes the new one as .rpmnew.
	flags := cmdOut(t, "rpm", "-qp", "--qf", `[%{FILENAMES} %{FILEFLAGS:fflags}\n]`, rpm)
	if !lineWith(flags, "/etc/connprobe/connprobe.yml", "cn") {
		t.Errorf("the configuration is not %%config(noreplace):\n%s", flags)
	}
	scripts := cmdOut(t, "rpm", "-qp", "--scripts", rpm)
	for _, s := range []string{"postinstall scriptlet", "preuninstall scriptlet", "postuninstall scriptlet"} {
		if !strings.Contains(scripts, s) {
			t.Errorf("rpm --scripts lacks %s:\n%s", s, scripts)
		}
	}
	if v := cmdOut(t, "rpm", "-qp", "--qf", "%{VERSION}", rpm); v != "0.0.0~test" {
		t.Errorf("rpm version %q, want 0.0.0~test", v)
	}
}

// installAndRun installs the .deb (or unpacks it), then runs what was
// installed: --version, validate on the packaged configuration, and the
// agent itself on a loopback-only configuration.
func installAndRun(t *testing.T, deb string) {
	prefix := "" // where the package's / is
	if dpkgInstallAllowed(t) {
		t.Log("installing with dpkg -i; purged at the end")
		out := cmdOut(t, "dpkg", "-i", deb)
		purged := false
		t.Cleanup(func() {
			if !purged {
				if b, err := exec.Command("dpkg", "-P", "connprobe").CombinedOutput(); err != nil {
					t.Errorf("cleanup: dpkg -P connprobe: %v\n%s", err, b)
				}
			}
		})
		if !strings.Contains(out, "systemctl start connprobe") {
			t.Errorf("postinst printed no start hint:\n%s", out)
		}
		if st := cmdOut(t, "dpkg-query", "-W", "-f=${Status}", "connprobe"); st != "install ok installed" {
			t.Errorf("dpkg status %q", st)
		}
		if cf := cmdOut(t, "dpkg-query", "-W", "-f=${Conffiles}", "connprobe"); !strings.Contains(cf, "/etc/connprobe/connprobe.yml") {
			t.Errorf("dpkg does not track the configuration as a conffile: %q", cf)
		}
		wants := "/etc/systemd/system/multi-user.target.wants/connprobe.service"
		if _, err := exec.LookPath("systemctl"); err == nil {
			if _, err := os.Lstat(wants); err != nil {
				t.Errorf("postinst did not enable the unit: %v\n%s", err, out)
			}
		}
		defer func() {
			cmdOut(t, "dpkg", "-P", "connprobe")
			purged = true
			for _, p := range []string{"/usr/bin/connprobe", "/etc/connprobe", "/etc/default/connprobe", "/lib/systemd/system/connprobe.service", wants} {
				if _, err := os.Lstat(p); err == nil {
					t.Errorf("%s is still there after dpkg -P", p)
				}
			}
		}()
	} else {
		prefix = t.TempDir()
		cmdOut(t, "dpkg-deb", "-x", deb, prefix)
	}

	bin := filepath.Join(prefix, "/usr/bin/connprobe")
	// The release toolchain, not the installed Go, compiled what ships.
	if v := cmdOut(t, bin, "--version"); !strings.HasPrefix(v, "connprobe "+testVersion+" (revision testrev,") || !strings.Contains(v, releaseToolchain+")") {
		t.Errorf("connprobe --version = %q, want version %s, revision testrev, built with %s", v, testVersion, releaseToolchain)
	}
	if v := cmdOut(t, bin, "validate", "--config.file", filepath.Join(prefix, "/etc/connprobe/connprobe.yml")); !strings.Contains(v, "valid") {
		t.Errorf("validate: %q", v)
	}
	runAgentOnLoopback(t, bin)
}

// dpkgInstallAllowed reports whether the test may install into this
// machine's dpkg database, and says why not when it may not.
func dpkgInstallAllowed(t *testing.T) bool {
	if os.Geteuid() != 0 {
		t.Log("not root: unpacking with dpkg-deb -x instead of dpkg -i")
		return false
	}
	if os.Getenv("CI") == "" && os.Getenv("CONNPROBE_TEST_DPKG") != "1" {
		t.Log("neither CI nor CONNPROBE_TEST_DPKG=1 is set: unpacking with dpkg-deb -x instead of dpkg -i")
		return false
	}
	if _, err := exec.LookPath("dpkg"); err != nil {
		t.Log("no dpkg: unpacking instead")
		return false
	}
	// Never replace or purge an installation this test did not make.
	if st, _ := exec.Command("dpkg-query", "-W", "-f=${Status}", "connprobe").Output(); len(st) > 0 && !strings.HasSuffix(string(st), "not-installed") {
		t.Logf("connprobe is already known to dpkg here (%s): not touching it; unpacking instead (dpkg -P connprobe to allow the test)", st)
		return false
	}
	return true
}

// runAgentOnLoopback starts the agent with one TCP check against a listener
// of this test, on 127.0.0.1 only, and checks it serves, reloads on SIGHUP
// and stops cleanly on SIGTERM.
func runAgentOnLoopback(t *testing.T, bin string) {
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
	cfg := filepath.Join(t.TempDir(), "loopback.yml")
	writeFile(t, cfg, fmt.Sprintf(`checks:
  - name: loopback
    kind: tcp
    host: 127.0.0.1
    port: %d
    ip_family: ipv4
    interval: 2s
    timeout: 1s
`, ln.Addr().(*net.TCPAddr).Port))
	addr := freeLoopbackAddr(t)

	var stderr bytes.Buffer
	cmd := exec.Command(bin, "--config.file", cfg, "--web.listen-address", addr)
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		select {
		case <-exited:
		default:
			cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("agent stderr:\n%s", stderr.String())
		}
	}()

	base := "http://" + addr
	waitFor(t, exited, base+"/-/healthy", 10*time.Second)
	waitFor(t, exited, base+"/-/ready", 10*time.Second) // the check ran once
	metrics := get(t, base+"/metrics")
	if !strings.Contains(metrics, `version="`+testVersion+`"`) {
		t.Errorf("/metrics has no build_info for %s", testVersion)
	}
	if !strings.Contains(metrics, `connprobe_check_up{check="loopback"`) {
		t.Errorf("/metrics has no result for the loopback check")
	}

	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitFor(t, exited, base+"/-/healthy", 5*time.Second)
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		exited <- err // for the deferred check
		if err != nil {
			t.Errorf("agent exited with %v after SIGTERM", err)
		}
	case <-time.After(10 * time.Second):
		t.Errorf("agent did not stop within 10s of SIGTERM")
	}
}

// TestProfilesGlob checks that profile files are packaged when there are
// some, and that none is not an error (nfpm alone fails on an empty glob).
func TestProfilesGlob(t *testing.T) {
	requireTool(t, "dpkg-deb")
	root := repoRoot(t)
	fake := t.TempDir()
	for _, f := range []string{"deploy/nfpm.yaml", "deploy/systemd/connprobe.service", "deploy/default/connprobe",
		"deploy/config/connprobe.yml", "deploy/scripts/postinstall.sh", "deploy/scripts/preremove.sh",
		"deploy/scripts/postremove.sh", "README.md", "targets/profiles/README.md",
		"deploy/systemd/connprobe-prometheus-agent.service", "deploy/prometheus/connprobe-prometheus-agent.yml"} {
		writeFile(t, filepath.Join(fake, f), readFile(t, filepath.Join(root, f)))
	}
	bin := filepath.Join(fake, "connprobe")
	writeExec(t, bin, "#!/bin/sh\n")

	build := func() string {
		var log bytes.Buffer
		paths, err := buildPackages(packageOptions{
			Root: fake, Config: filepath.Join(fake, "deploy/nfpm.yaml"), Binary: bin,
			Version: "1.0.0", Arch: "amd64", Formats: []string{"deb"}, OutDir: t.TempDir(), Log: &log,
		})
		if err != nil {
			t.Fatalf("%v\n%s", err, log.String())
		}
		return cmdOut(t, "dpkg-deb", "-c", paths[0])
	}

	// No profiles in the fake tree (only the README): the globs are dropped.
	for _, f := range []string{"example.yml", "other.yaml"} {
		if l := build(); strings.Contains(l, f) {
			t.Fatalf("%s packaged before it exists:\n%s", f, l)
		}
	}
	writeFile(t, filepath.Join(fake, "targets/profiles/example.yml"), "name: example\n")
	writeFile(t, filepath.Join(fake, "targets/profiles/other.yaml"), "name: other\n")
	l := build()
	for _, p := range []string{"./usr/share/connprobe/profiles/example.yml", "./usr/share/connprobe/profiles/other.yaml"} {
		if !strings.Contains(l, " "+p+"\n") {
			t.Errorf("%s not packaged:\n%s", p, l)
		}
	}
}

// TestCrossBuilds compiles the agent for the platforms it is shipped for
// besides this one, static as the packages and the image build it.
func TestCrossBuilds(t *testing.T) {
	if testing.Short() {
		t.Skip("three cross-compilations; skipped with -short")
	}
	requireTool(t, "go")
	root := repoRoot(t)
	for _, tgt := range []target{
		{GOOS: "linux", GOARCH: "arm64"},
		{GOOS: "linux", GOARCH: "arm", GOARM: "7"},
		{GOOS: "windows", GOARCH: "amd64"}, // includes the service adapter
	} {
		t.Run(tgt.GOOS+"_"+tgt.pkgArch(), func(t *testing.T) {
			start := time.Now()
			out := filepath.Join(t.TempDir(), tgt.exe())
			if err := buildBinary(context.Background(), root, out, tgt, releaseToolchain, testVersion, ""); err != nil {
				t.Fatal(err)
			}
			if fi, err := os.Stat(out); err != nil || fi.Size() == 0 {
				t.Fatalf("no binary: %v", err)
			}
			t.Logf("built in %v", time.Since(start).Round(time.Millisecond))
		})
	}
}

func TestDropEmptyGlobs(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "a.yml"), "")
	got := dropEmptyGlobs(contents(
		filepath.Join(dir, "*.yml"),  // matches: kept
		filepath.Join(dir, "*.yaml"), // matches nothing: dropped
		filepath.Join(dir, "plain"),  // no glob: kept, so nfpm reports it missing
	), io.Discard)
	if len(got) != 2 || !strings.HasSuffix(got[0].Source, "*.yml") || !strings.HasSuffix(got[1].Source, "plain") {
		t.Errorf("kept %v", got)
	}
}

func TestLinuxTarget(t *testing.T) {
	t.Parallel()
	for arch, want := range map[string]string{"amd64": "amd64", "arm64": "arm64", "arm": "arm7"} {
		tgt, err := linuxTarget(arch)
		if err != nil || tgt.pkgArch() != want || tgt.GOOS != "linux" {
			t.Errorf("linuxTarget(%q) = %+v, %v; want package arch %s", arch, tgt, err, want)
		}
	}
	if _, err := linuxTarget("mips"); err == nil {
		t.Error("linuxTarget(mips): no error")
	}
}

// --- helpers ---

func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := findRoot()
	if err != nil {
		t.Fatal(err)
	}
	return root
}

func requireTool(t *testing.T, name string) {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		t.Skipf("%s not found: %v", name, err)
	}
}

// cmdOut runs a command that must succeed and returns its standard output.
func cmdOut(t *testing.T, name string, args ...string) string {
	t.Helper()
	var stderr bytes.Buffer
	cmd := exec.Command(name, args...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s%s", name, strings.Join(args, " "), err, out, stderr.String())
	}
	return string(out)
}

func contents(sources ...string) files.Contents {
	var c files.Contents
	for _, s := range sources {
		c = append(c, &files.Content{Source: s, Destination: "/x/"})
	}
	return c
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	writeMode(t, path, content, 0o644)
}

func writeExec(t *testing.T, path, content string) {
	t.Helper()
	writeMode(t, path, content, 0o755)
}

func writeMode(t *testing.T, path, content string, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
}

// freeLoopbackAddr returns 127.0.0.1:PORT with a port that was free a
// moment ago (the agent takes a listen address, not a listener).
func freeLoopbackAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// waitFor polls url until it answers 200, failing if the agent exits or the
// deadline passes.
func waitFor(t *testing.T, exited chan error, url string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	last := "no answer"
	for time.Now().Before(deadline) {
		select {
		case err := <-exited:
			exited <- err
			t.Fatalf("agent exited (%v) while waiting for %s", err, url)
		default:
		}
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
			last = resp.Status
		} else {
			last = err.Error()
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s: not 200 within %v (last: %s)", url, within, last)
}

func get(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestFindRoot: the tool's own go.mod, in its folder, must not be taken for
// the repository root.
func TestFindRoot(t *testing.T) {
	root := repoRoot(t)
	if _, err := os.Stat(filepath.Join(root, "cmd", "probe")); err != nil {
		t.Errorf("root %s holds no cmd/probe: %v", root, err)
	}
	if modulePath([]byte(readFile(t, filepath.Join(root, "go.mod")))) != agentModule {
		t.Errorf("root %s: go.mod is not %s", root, agentModule)
	}
	for gomod, want := range map[string]string{
		"module example.com/x\n\ngo 1.26\n":     "example.com/x",
		"// c\nmodule \"example.com/q\" // c\n": "example.com/q",
		"go 1.26\n":                             "",
	} {
		if got := modulePath([]byte(gomod)); got != want {
			t.Errorf("modulePath(%q) = %q, want %q", gomod, got, want)
		}
	}
}

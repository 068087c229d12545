package main

// Static checks of the files under deploy/ that the packages and the image
// ship: none of them needs a build, a network or root.

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/connprobe/connprobe/targets"
)

// unitDirectives parses a systemd unit into "Section.Key" -> values, one per
// assignment, in order.
func unitDirectives(t *testing.T, text string) map[string][]string {
	t.Helper()
	d := map[string][]string{}
	section := ""
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";"):
		case strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]"):
			section = strings.Trim(line, "[]")
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok {
				t.Fatalf("unit line %q is not Key=Value", line)
			}
			d[section+"."+k] = append(d[section+"."+k], v)
		}
	}
	return d
}

func TestUnitHardening(t *testing.T) {
	t.Parallel()
	unit := unitDirectives(t, readFile(t, filepath.Join(repoRoot(t), "deploy/systemd/connprobe.service")))
	want := map[string]string{
		"Service.DynamicUser":             "yes",
		"Service.NoNewPrivileges":         "yes",
		"Service.ProtectSystem":           "strict",
		"Service.ProtectHome":             "yes",
		"Service.PrivateTmp":              "yes",
		"Service.PrivateDevices":          "yes",
		"Service.ProtectKernelTunables":   "yes",
		"Service.ProtectKernelModules":    "yes",
		"Service.ProtectKernelLogs":       "yes",
		"Service.ProtectControlGroups":    "yes",
		"Service.RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX AF_NETLINK AF_PACKET",
		"Service.RestrictNamespaces":      "yes",
		"Service.LockPersonality":         "yes",
		"Service.MemoryDenyWriteExecute":  "yes",
		"Service.SystemCallArchitectures": "native",
		"Service.CapabilityBoundingSet":   "CAP_NET_BIND_SERVICE CAP_NET_RAW",
		"Service.AmbientCapabilities":     "CAP_NET_BIND_SERVICE CAP_NET_RAW",
		"Service.EnvironmentFile":         "-/etc/default/connprobe",
		"Service.ExecStart":               "/usr/bin/connprobe $CONNPROBE_ARGS",
		"Service.ExecReload":              "/bin/kill -HUP $MAINPID",
		"Service.Restart":                 "on-failure",
		"Install.WantedBy":                "multi-user.target",
	}
	for k, v := range want {
		got := unit[k]
		if len(got) != 1 || got[0] != v {
			t.Errorf("%s = %q, want exactly %q", k, got, v)
		}
	}
	// Settings that would quietly undo the capabilities or the probes.
	for _, k := range []string{"Service.PrivateUsers", "Service.PrivateNetwork", "Service.User", "Service.IPAddressDeny"} {
		if v, ok := unit[k]; ok {
			t.Errorf("%s = %q: see the unit's comments for why it must not be set", k, v)
		}
	}
}

// TestUnitVerify runs systemd's own parser over the unit. verify insists
// that ExecStart's binary exists, so it checks a copy that runs this test
// binary instead of /usr/bin/connprobe.
func TestUnitVerify(t *testing.T) {
	t.Parallel()
	requireTool(t, "systemd-analyze")
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	text := readFile(t, filepath.Join(repoRoot(t), "deploy/systemd/connprobe.service"))
	unit := filepath.Join(t.TempDir(), "connprobe.service")
	writeFile(t, unit, strings.ReplaceAll(text, "ExecStart=/usr/bin/connprobe ", "ExecStart="+self+" "))
	out, err := exec.Command("systemd-analyze", "verify", unit).CombinedOutput()
	// verify exits 0 on unknown keys and misspelt values, only warning:
	// any output is a failure.
	if err != nil || len(out) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
}

// TestSiteAgentUnitVerify runs systemd's parser over the site's Prometheus
// agent unit (ExecStart's binary must exist: Debian's prometheus package)
// and checks what the README promises of it: disabled until the site is
// configured, the password only through LoadCredential, the packaged
// configuration naming that credential.
func TestSiteAgentUnitVerify(t *testing.T) {
	t.Parallel()
	const unitFile = "deploy/systemd/connprobe-prometheus-agent.service"
	text := readFile(t, filepath.Join(repoRoot(t), unitFile))
	unit := unitDirectives(t, text)
	for key, want := range map[string]string{
		"Service.DynamicUser":      "yes",
		"Service.StateDirectory":   "connprobe-prometheus-agent",
		"Service.LoadCredential":   "remote-write.password:/etc/connprobe/remote-write.password",
		"Unit.ConditionPathExists": "/usr/bin/prometheus",
	} {
		if got := unit[key]; len(got) != 1 || got[0] != want {
			t.Errorf("%s: %s = %q, want %q", unitFile, key, got, want)
		}
	}
	exec0 := unit["Service.ExecStart"]
	if len(exec0) != 1 || !strings.Contains(exec0[0], "--config.file=/etc/connprobe/prometheus-agent.yml") ||
		!strings.Contains(exec0[0], "--storage.agent.path=/var/lib/connprobe-prometheus-agent") {
		t.Errorf("%s: ExecStart %q: not the packaged configuration and state directory", unitFile, exec0)
	}
	cfg := readFile(t, filepath.Join(repoRoot(t), "deploy/prometheus/connprobe-prometheus-agent.yml"))
	if !strings.Contains(cfg, "password_file: /run/credentials/connprobe-prometheus-agent.service/remote-write.password\n") {
		t.Errorf("connprobe-prometheus-agent.yml does not read the password from the unit's credential")
	}
	if _, err := os.Stat("/usr/bin/prometheus"); err != nil {
		t.Skipf("systemd-analyze verify needs ExecStart's binary: %v (apt-get install prometheus)", err)
	}
	requireTool(t, "systemd-analyze")
	out, err := exec.Command("systemd-analyze", "verify", filepath.Join(repoRoot(t), unitFile)).CombinedOutput()
	if err != nil || len(out) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
}

func TestDefaultFile(t *testing.T) {
	t.Parallel()
	requireTool(t, "sh")
	path := filepath.Join(repoRoot(t), "deploy/default/connprobe")
	// The unit reads it with systemd's EnvironmentFile parser; a plain
	// shell assignment means the same to both.
	out, err := exec.Command("sh", "-c", `. "$1" && printf %s "$CONNPROBE_ARGS"`, "sh", path).Output()
	if err != nil {
		t.Fatal(err)
	}
	if want := "--config.file=/etc/connprobe/connprobe.yml --web.listen-address=:9469"; string(out) != want {
		t.Errorf("CONNPROBE_ARGS = %q, want %q", out, want)
	}
}

// TestPackagedConfig: the configuration the package installs is valid and
// runs the same checks as the embedded quickstart it was copied from.
func TestPackagedConfig(t *testing.T) {
	t.Parallel()
	root := repoRoot(t)
	summary := func(path string) []string {
		checks, _, err := targets.Build(path, targets.Options{})
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		var s []string
		for _, c := range checks {
			s = append(s, strings.Join([]string{c.Name, c.Kind, c.Host, c.Network, c.IPFamily, c.Interval.String(), c.Timeout.String()}, " "))
		}
		return s
	}
	packaged := summary(filepath.Join(root, "deploy/config/connprobe.yml"))
	quickstart := summary(filepath.Join(root, "targets/examples/quickstart.yml"))
	if strings.Join(packaged, "\n") != strings.Join(quickstart, "\n") {
		t.Errorf("deploy/config/connprobe.yml drifted from targets/examples/quickstart.yml:\npackaged:\n%s\nquickstart:\n%s",
			strings.Join(packaged, "\n"), strings.Join(quickstart, "\n"))
	}
	if len(packaged) == 0 {
		t.Error("the packaged configuration has no checks")
	}
}

// TestMaintainerScripts runs the scripts with a fake systemctl and checks the
// decisions: a fresh install enables without starting, an upgrade neither
// enables nor stops, only a removal disables; and a failing systemctl never
// fails the package operation.
func TestMaintainerScripts(t *testing.T) {
	t.Parallel()
	requireTool(t, "sh")
	root := repoRoot(t)
	cases := []struct {
		script string
		args   []string
		want   []string // systemctl calls that must happen
		never  []string // and those that must not
	}{
		{"postinstall", []string{"configure"}, []string{"enable connprobe.service"}, []string{"start", "restart"}},                       // deb install
		{"postinstall", []string{"configure", "0.9.0"}, nil, []string{"enable", "start connprobe.service", "restart connprobe.service"}}, // deb upgrade
		{"postinstall", []string{"1"}, []string{"enable connprobe.service"}, []string{"start", "restart"}},                               // rpm install
		{"postinstall", []string{"2"}, nil, []string{"enable", "start connprobe.service", "restart connprobe.service"}},                  // rpm upgrade
		{"postinstall", []string{"abort-upgrade", "1.0.0"}, nil, []string{"enable", "start", "stop"}},                                    // deb rollback
		{"preremove", []string{"remove"}, []string{"disable connprobe.service connprobe-prometheus-agent.service"}, []string{"enable"}},  // deb remove
		{"preremove", []string{"upgrade", "1.0.0"}, nil, []string{"disable", "stop"}},                                                    // deb upgrade
		{"preremove", []string{"0"}, []string{"disable connprobe.service connprobe-prometheus-agent.service"}, []string{"enable"}},       // rpm erase
		{"preremove", []string{"1"}, nil, []string{"disable", "stop"}},                                                                   // rpm upgrade
		{"postremove", []string{"purge"}, nil, []string{"enable", "disable", "start", "stop"}},                                           // deb purge
	}
	for _, failing := range []bool{false, true} {
		for _, c := range cases {
			fake := t.TempDir()
			log := filepath.Join(fake, "calls")
			exit := "0"
			if failing {
				exit = "1"
			}
			writeExec(t, filepath.Join(fake, "systemctl"), "#!/bin/sh\necho \"$*\" >> \""+log+"\"\nexit "+exit+"\n")
			cmd := exec.Command("sh", append([]string{filepath.Join(root, "deploy/scripts", c.script+".sh")}, c.args...)...)
			cmd.Env = append(os.Environ(), "PATH="+fake+":/usr/sbin:/usr/bin:/sbin:/bin")
			out, err := cmd.CombinedOutput()
			name := c.script + " " + strings.Join(c.args, " ")
			if err != nil {
				t.Errorf("%s (systemctl exits %s): %v\n%s", name, exit, err, out)
			}
			calls, _ := os.ReadFile(log)
			for _, w := range c.want {
				if !strings.Contains(string(calls), w+"\n") {
					t.Errorf("%s: no systemctl %s; calls:\n%s", name, w, calls)
				}
			}
			for _, n := range c.never {
				for _, call := range strings.Split(strings.TrimSpace(string(calls)), "\n") {
					if call == n || strings.HasPrefix(call, n+" ") {
						t.Errorf("%s: unexpected systemctl %s", name, call)
					}
				}
			}
			if c.want != nil && c.script == "postinstall" && !strings.Contains(string(out), "systemctl start connprobe") {
				t.Errorf("%s printed no hint:\n%s", name, out)
			}
		}
	}
}

// TestDockerfile lints deploy/Dockerfile statically. No container engine
// runs here, so the image itself is not built by the tests.
func TestDockerfile(t *testing.T) {
	t.Parallel()
	root := repoRoot(t)
	text := readFile(t, filepath.Join(root, "deploy/Dockerfile"))
	// Instructions, with continuation lines joined and comments dropped.
	var instr []string
	cur := ""
	for _, l := range strings.Split(text, "\n") {
		s := strings.TrimSpace(l)
		if strings.HasPrefix(s, "#") || (s == "" && cur == "") {
			continue
		}
		cur += strings.TrimSuffix(s, `\`) + " "
		if !strings.HasSuffix(s, `\`) {
			instr = append(instr, strings.TrimSpace(cur))
			cur = ""
		}
	}

	var froms []string
	var final []string // the last stage's instructions
	for _, in := range instr {
		op, _, _ := strings.Cut(in, " ")
		switch strings.ToUpper(op) {
		case "FROM":
			froms = append(froms, in)
			final = nil
		case "ADD":
			// COPY is explicit; ADD would fetch URLs and unpack archives.
			t.Errorf("ADD used (%q): use COPY; never fetch URLs at build time", in)
		}
		final = append(final, in)
	}
	if len(froms) != 2 {
		t.Fatalf("want a builder and a runtime stage, got FROM lines %q", froms)
	}
	if !regexp.MustCompile(`^FROM golang:1\.26(\.\d+)?(-\S+)? AS \w+$`).MatchString(froms[0]) {
		t.Errorf("builder stage %q: want FROM golang:1.26 AS name", froms[0])
	}
	// The image ships a binary of the same toolchain as the packages.
	builder := instr[:slices.Index(instr, froms[1])]
	if want := "ENV GOTOOLCHAIN=" + releaseToolchain; !slices.Contains(builder, want) {
		t.Errorf("builder stage: want %q (the packages' release toolchain)", want)
	}
	if froms[1] != "FROM gcr.io/distroless/static:nonroot" && froms[1] != "FROM scratch" {
		t.Errorf("runtime stage %q: want distroless static:nonroot or scratch", froms[1])
	}
	has := func(in []string, re string) bool {
		r := regexp.MustCompile(re)
		for _, s := range in {
			if r.MatchString(s) {
				return true
			}
		}
		return false
	}
	for _, c := range []struct{ re, why string }{
		{`^USER (65532|nonroot)(:(65532|nonroot))?$`, "runs as the non-root user 65532"},
		{`^EXPOSE 9469$`, "exposes 9469"},
		{`^ENTRYPOINT \["/connprobe"\]$`, `ENTRYPOINT ["/connprobe"] in exec form`},
		{`^COPY --from=\w+ \S+ /connprobe$`, "copies the binary to /connprobe"},
		{`^COPY --from=\w+ \S*deploy/config/connprobe\.yml /etc/connprobe/connprobe\.yml$`, "ships the default configuration"},
		{`--config\.file=/etc/connprobe/connprobe\.yml`, "runs with /etc/connprobe/connprobe.yml"},
	} {
		if !has(final, c.re) {
			t.Errorf("runtime stage: want an instruction matching %s (%s)", c.re, c.why)
		}
	}
	if has(final, `^USER (0|root)`) {
		t.Error("the runtime stage switches to root")
	}
	for _, c := range []struct{ re, why string }{
		{`^RUN CGO_ENABLED=0 go build .*-ldflags ".*internal/buildinfo\.Version=\$\{VERSION\}.*" .*\./cmd/probe$`, "a static build of ./cmd/probe with the version stamped in"},
		{`^RUN .*validate --config\.file deploy/config/connprobe\.yml`, "the default configuration validated at build time"},
	} {
		if !has(instr, c.re) {
			t.Errorf("builder: want an instruction matching %s (%s)", c.re, c.why)
		}
	}
	// What the builder copies from the context must be there.
	for _, f := range []string{"go.mod", "go.sum", "cmd/probe", "deploy/config/connprobe.yml"} {
		if _, err := os.Stat(filepath.Join(root, f)); err != nil {
			t.Errorf("the build context lacks %s: %v", f, err)
		}
	}
	ignore := readFile(t, filepath.Join(root, "deploy/Dockerfile.dockerignore"))
	if !regexp.MustCompile(`(?m)^\.git$`).MatchString(ignore) {
		t.Errorf("deploy/Dockerfile.dockerignore does not exclude .git")
	}
}

// TestVulnScanToolchain: CI's vulnerability scan must analyse the agent as
// the packages build it, or a fixed standard library would hide behind an
// old one (or the reverse).
func TestVulnScanToolchain(t *testing.T) {
	t.Parallel()
	ci := readFile(t, filepath.Join(repoRoot(t), ".ci/run"))
	if want := "RELEASE_TOOLCHAIN=" + releaseToolchain + "\n"; !strings.Contains(ci, want) {
		t.Errorf(".ci/run: want %q for govulncheck, the packages' release toolchain", strings.TrimSpace(want))
	}
	if !strings.Contains(ci, "GOTOOLCHAIN=$RELEASE_TOOLCHAIN go run \"golang.org/x/vuln/cmd/govulncheck@") {
		t.Error(".ci/run: govulncheck does not run under the release toolchain")
	}
}

// TestBenchmarkBuildsAsShipped: the side-by-side benchmark must measure the
// binary users run (static, stripped, the release toolchain), or its RSS and
// CPU figures describe a build nobody installs.
func TestBenchmarkBuildsAsShipped(t *testing.T) {
	t.Parallel()
	script := readFile(t, filepath.Join(repoRoot(t), "bench/sidebyside.sh"))
	if want := `RELEASE_TOOLCHAIN="${RELEASE_TOOLCHAIN:-` + releaseToolchain + `}"`; !strings.Contains(script, want) {
		t.Errorf("bench/sidebyside.sh: want %s, the packages' release toolchain", want)
	}
	// The same flags as buildBinary, less the version stamp.
	want := `GOTOOLCHAIN="$RELEASE_TOOLCHAIN" CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$tmp/connprobe" ./cmd/probe`
	if !strings.Contains(script, want) {
		t.Errorf("bench/sidebyside.sh does not build the agent as the packages do: want\n%s", want)
	}
	if !strings.HasPrefix(ldflags("v", "r"), "-s -w ") {
		t.Errorf("ldflags = %q: the packages no longer strip; update bench/sidebyside.sh to match", ldflags("v", "r"))
	}
}

// Command pkgbuild builds connprobe's Linux packages: it compiles a static
// binary with the version stamped in, then packages it as .deb and .rpm with
// nfpm, used as a library so that no nfpm binary has to be installed.
//
//	go -C internal/tools/pkgbuild run . -version 1.2.3 -arch amd64
//
// writes dist/connprobe_1.2.3_amd64.deb and dist/connprobe_1.2.3_amd64.rpm.
// What goes into the packages is deploy/nfpm.yaml; this tool only fills in
// the version, the architecture and the binary's path.
//
// It lives under internal/tools so that cmd/probe stays the only command a
// user installs, and is a module of its own (go.mod in this folder) so that
// nfpm and its dependencies are neither linked into the agent nor listed in
// the agent's go.mod and go.sum.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/goreleaser/nfpm/v2"
	"github.com/goreleaser/nfpm/v2/files"

	// Registered with nfpm by their init functions: the formats we build.
	_ "github.com/goreleaser/nfpm/v2/deb"
	_ "github.com/goreleaser/nfpm/v2/rpm"
)

// agentModule is the module whose ./cmd/probe is packaged; this tool is a
// module of its own, nested in the agent's repository.
const agentModule = "github.com/connprobe/connprobe"

// releaseToolchain is the Go release the shipped binaries are compiled
// with, newer than the go line of go.mod (which stays at what a plain Go
// install builds): it carries the standard library's security fixes. The
// go command fetches it from the module proxy (GOTOOLCHAIN) on first use.
// Keep deploy/Dockerfile and .ci/run's vulnerability scan on the same one.
const releaseToolchain = "go1.27.3"

// buildinfoPkg is where the linker stamps the version (see internal/buildinfo).
const buildinfoPkg = agentModule + "/internal/buildinfo"

func main() {
	if err := run(context.Background(), os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintf(os.Stderr, "pkgbuild: %v\n", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("pkgbuild", flag.ContinueOnError)
	version := fs.String("version", "", "package and binary version, e.g. 1.2.3 or 1.2.3-rc1 (required)")
	revision := fs.String("revision", "", "VCS revision stamped into the binary (default: git rev-parse HEAD, if it works)")
	arch := fs.String("arch", "amd64", "target architecture: "+strings.Join(archNames(), ", "))
	formats := fs.String("formats", "deb,rpm", "package formats, comma-separated")
	out := fs.String("out", "dist", "output directory (relative paths: from the repository root)")
	config := fs.String("config", "deploy/nfpm.yaml", "nfpm configuration (relative paths: from the repository root)")
	binary := fs.String("binary", "", "package this binary instead of building one")
	toolchain := fs.String("toolchain", releaseToolchain, "Go toolchain to compile with (GOTOOLCHAIN), e.g. go1.27.3, or local for the installed one")
	root := fs.String("root", "", "repository root (default: the directory holding the agent's go.mod, from the working directory up)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if *version == "" {
		return errors.New("-version is required")
	}
	t, err := linuxTarget(*arch)
	if err != nil {
		return err
	}
	if *root == "" {
		if *root, err = findRoot(); err != nil {
			return err
		}
	}
	outDir := fromRoot(*root, *out)
	if *revision == "" {
		*revision = gitRevision(ctx, *root)
	}

	bin := *binary
	if bin == "" {
		bin = filepath.Join(outDir, t.dirName(), "connprobe")
		fmt.Fprintf(stdout, "building %s\n", bin)
		if err := buildBinary(ctx, *root, bin, t, *toolchain, *version, *revision); err != nil {
			return err
		}
	}
	paths, err := buildPackages(packageOptions{
		Root:    *root,
		Config:  fromRoot(*root, *config),
		Binary:  bin,
		Version: *version,
		Arch:    t.pkgArch(),
		Formats: strings.Split(*formats, ","),
		OutDir:  outDir,
		Log:     stdout,
	})
	for _, p := range paths {
		fmt.Fprintf(stdout, "wrote %s\n", p)
	}
	return err
}

// target is one GOOS/GOARCH(/GOARM) to compile for.
type target struct {
	GOOS, GOARCH, GOARM string
}

// archNames are the architectures packages are built for, by the name
// -arch takes. "arm" is 32-bit ARMv7 with hardware floating point (armhf),
// what Raspberry Pi OS 32-bit and most ARM tills run.
func archNames() []string { return []string{"amd64", "arm64", "arm"} }

func linuxTarget(arch string) (target, error) {
	switch arch {
	case "amd64", "arm64":
		return target{GOOS: "linux", GOARCH: arch}, nil
	case "arm":
		return target{GOOS: "linux", GOARCH: "arm", GOARM: "7"}, nil
	}
	return target{}, fmt.Errorf("-arch %q: want one of %s", arch, strings.Join(archNames(), ", "))
}

// pkgArch is the architecture in nfpm's terms; nfpm maps it to Debian's
// (armhf) and RPM's (armv7hl) names.
func (t target) pkgArch() string {
	if t.GOARCH == "arm" {
		return "arm" + t.GOARM
	}
	return t.GOARCH
}

func (t target) dirName() string { return t.GOOS + "_" + t.pkgArch() }

// exe is the binary's file name on the target.
func (t target) exe() string {
	if t.GOOS == "windows" {
		return "connprobe.exe"
	}
	return "connprobe"
}

// ldflags stamps the version and strips the symbol table and DWARF: the
// package ships a smaller binary, and panics still print file:line.
func ldflags(version, revision string) string {
	return fmt.Sprintf("-s -w -X %s.Version=%s -X %s.Revision=%s", buildinfoPkg, version, buildinfoPkg, revision)
}

// buildBinary compiles ./cmd/probe for t into out with the Go toolchain
// named (GOTOOLCHAIN: "go1.27.3", or "local"). CGO is off so the binary
// is static: it runs on any distribution of the architecture, in a scratch
// container, and uses Go's own resolver rather than the host's libc.
func buildBinary(ctx context.Context, root, out string, t target, toolchain, version, revision string) error {
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags", ldflags(version, revision), "-o", out, "./cmd/probe")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "GOTOOLCHAIN="+toolchain, "CGO_ENABLED=0", "GOOS="+t.GOOS, "GOARCH="+t.GOARCH, "GOARM="+t.GOARM)
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build for %s/%s with %s: %v\n%s", t.GOOS, t.GOARCH, toolchain, err, b)
	}
	return nil
}

type packageOptions struct {
	Root    string   // repository root: relative sources in Config are from here
	Config  string   // the nfpm configuration
	Binary  string   // the binary to package
	Version string   // e.g. 1.2.3 or 1.2.3-rc1; a leading v is dropped
	Arch    string   // nfpm's architecture name (pkgArch)
	Formats []string // deb, rpm
	OutDir  string
	Log     io.Writer
}

// buildPackages writes OutDir/connprobe_VERSION_ARCH.FORMAT for each format
// and returns the paths written.
func buildPackages(o packageOptions) ([]string, error) {
	version := strings.TrimPrefix(o.Version, "v")
	bin, err := filepath.Abs(o.Binary)
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(bin); err != nil {
		return nil, fmt.Errorf("binary: %w", err)
	}
	// Only these three variables expand in the configuration: the
	// environment does not leak into a package.
	vars := map[string]string{"VERSION": version, "ARCH": o.Arch, "BINARY": bin}
	f, err := os.Open(o.Config)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	cfg, err := nfpm.ParseWithEnvMapping(f, func(k string) string { return vars[k] })
	if err != nil {
		return nil, fmt.Errorf("%s: %w", o.Config, err)
	}
	fromRootAll(o.Root, &cfg)
	cfg.Contents = dropEmptyGlobs(cfg.Contents, o.Log)
	if err := os.MkdirAll(o.OutDir, 0o755); err != nil {
		return nil, err
	}

	var written []string
	for _, format := range o.Formats {
		format = strings.TrimSpace(format)
		path, err := buildPackage(&cfg, format, filepath.Join(o.OutDir, fmt.Sprintf("%s_%s_%s.%s", cfg.Name, version, o.Arch, format)))
		if err != nil {
			return written, fmt.Errorf("%s: %w", format, err)
		}
		written = append(written, path)
	}
	return written, nil
}

func buildPackage(cfg *nfpm.Config, format, path string) (string, error) {
	packager, err := nfpm.Get(format)
	if err != nil {
		return "", err
	}
	// Get copies the configuration with format's overrides merged in, so
	// one packager's defaults (deb renames the architecture) do not leak
	// into the next.
	info, err := cfg.Get(format)
	if err != nil {
		return "", err
	}
	info = nfpm.WithDefaults(info)
	if err := nfpm.PrepareForPackager(info, format); err != nil {
		return "", err
	}
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return "", err
	}
	if err := packager.Package(info, f); err != nil {
		f.Close()
		os.Remove(tmp)
		return "", err
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return "", err
	}
	// Renamed into place only when complete: a failed build never leaves a
	// truncated package that looks like a good one.
	return path, os.Rename(tmp, path)
}

// fromRootAll makes the configuration's relative paths relative to root
// rather than to the working directory, which nfpm would use.
func fromRootAll(root string, cfg *nfpm.Config) {
	for _, c := range cfg.Contents {
		if c.Type != files.TypeSymlink && c.Source != "" {
			c.Source = fromRoot(root, c.Source)
		}
	}
	for _, p := range []*string{&cfg.Scripts.PreInstall, &cfg.Scripts.PostInstall, &cfg.Scripts.PreRemove, &cfg.Scripts.PostRemove, &cfg.Changelog} {
		if *p != "" {
			*p = fromRoot(root, *p)
		}
	}
}

func fromRoot(root, p string) string {
	if filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(root, p)
}

// dropEmptyGlobs removes file entries whose glob matches nothing. nfpm fails
// on those, but a glob such as targets/profiles/*.yml is meant to take
// whatever profiles exist, including none.
func dropEmptyGlobs(contents files.Contents, log io.Writer) files.Contents {
	var kept files.Contents
	for _, c := range contents {
		switch c.Type {
		case "", files.TypeFile, files.TypeConfig, files.TypeConfigNoReplace, files.TypeConfigMissingOK:
			if strings.ContainsAny(c.Source, "*?[{") {
				if m, err := filepath.Glob(c.Source); err == nil && len(m) == 0 {
					fmt.Fprintf(log, "nothing matches %s: skipped\n", c.Source)
					continue
				}
			}
		}
		kept = append(kept, c)
	}
	return kept
}

// findRoot is the nearest directory from the working directory up whose
// go.mod is the agent's module: go run and go test may start anywhere in
// the repository, and this tool's own go.mod (in its folder) is not the root.
func findRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if b, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil && modulePath(b) == agentModule {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod of %s in the working directory or above it: pass -root", agentModule)
		}
		dir = parent
	}
}

// modulePath is the path a go.mod's module directive declares, or "".
func modulePath(gomod []byte) string {
	for _, line := range strings.Split(string(gomod), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "module" {
			return strings.Trim(f[1], `"`)
		}
	}
	return ""
}

// gitRevision is HEAD's commit, or "" outside a git checkout (a source
// tarball); the binary then reports no revision rather than a wrong one.
func gitRevision(ctx context.Context, root string) string {
	cmd := exec.CommandContext(ctx, "git", "rev-parse", "HEAD")
	cmd.Dir = root
	b, err := cmd.Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

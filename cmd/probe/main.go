// Command probe is connprobe: a connectivity probe agent that checks the
// ports vendors require and exports the verdicts as Prometheus metrics.
//
// This file is wiring only: flags, subcommands and signals.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/pflag"
	"golang.org/x/term"

	"github.com/connprobe/connprobe/internal/agent"
	"github.com/connprobe/connprobe/internal/buildinfo"
	"github.com/connprobe/connprobe/internal/catalogue"
	"github.com/connprobe/connprobe/internal/memlimit"
	"github.com/connprobe/connprobe/internal/oneshot"
	"github.com/connprobe/connprobe/internal/scheduler"
	"github.com/connprobe/connprobe/probe"
	"github.com/connprobe/connprobe/targets"
)

const usage = `connprobe: checks the ports vendors require and exports the verdicts as Prometheus metrics.

Usage:
  connprobe [flags]                 run the agent: checks on schedule, /metrics on --web.listen-address
  connprobe check [flags]           run every check once, print a verdict table (or -o json)
  connprobe validate [flags]        validate the configuration (and every file in --profiles.dir) and exit
  connprobe profiles [flags]        list the profiles: built-in and --profiles.dir (-o json)
  connprobe profiles show NAME      print a profile's checks, params and sources (-o json)
  connprobe version                 print the version

Without --config.file and --profile, the embedded example configuration is used.

Exit codes of check:
  0    every essential check ran and passed
  1    an essential check failed
  2    usage or configuration error
  3    no essential check failed, but one was skipped (a required --param is not set)
  130  interrupted (Ctrl-C, SIGTERM) before every check ran, and no essential check failed
When several apply, 1 wins over 130, and 130 over 3. -o json gives the same code
under "summary"."exit_code".

On a terminal, check prints each row as its check finishes and shows progress on
stderr; ranges fold into one row per verdict unless --wide. NO_COLOR turns colours off.

Flags:
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// sourceFlags select what to probe; every subcommand shares them.
type sourceFlags struct {
	configFile  string
	profiles    []string
	params      []string
	profilesDir string
}

func (s *sourceFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&s.configFile, "config.file", "", "configuration file (YAML); empty: the embedded example")
	fs.StringArrayVar(&s.profiles, "profile", nil, "enable a built-in profile (repeatable)")
	fs.StringArrayVar(&s.params, "param", nil, "profile parameter as PROFILE.KEY=VALUE (repeatable)")
	fs.StringVar(&s.profilesDir, "profiles.dir", "", "directory of additional profile files (*.yml)")
}

func (s *sourceFlags) options() targets.Options {
	return targets.Options{ProfilesDir: s.profilesDir, Profiles: s.profiles, Params: s.params}
}

func run(args []string, stdout, stderr io.Writer) int {
	sub := "agent"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		sub, args = args[0], args[1:]
	}
	switch sub {
	case "agent":
		return runAgent(args, stdout, stderr)
	case "check":
		return runCheck(args, stdout, stderr)
	case "validate":
		return runValidate(args, stdout, stderr)
	case "profiles":
		return runProfiles(args, stdout, stderr)
	case "version":
		fmt.Fprintln(stdout, buildinfo.String())
		return 0
	case "help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "probe: unknown subcommand %q (try: check, validate, profiles, version, or no subcommand for the agent)\n", sub)
		return oneshot.ExitUsage
	}
}

func newFlagSet(name string, stderr io.Writer) *pflag.FlagSet {
	fs := pflag.NewFlagSet(name, pflag.ContinueOnError)
	fs.SetOutput(stderr)
	// parseFlags prints the help asked for (on stdout) and the errors (on
	// stderr, with a pointer to --help) itself.
	fs.Usage = func() {}
	return fs
}

// parseFlags parses args; --help prints the usage on stdout. ok is false
// when the caller must return code.
func parseFlags(fs *pflag.FlagSet, args []string, stdout io.Writer) (code int, ok bool) {
	err := fs.Parse(args)
	if errors.Is(err, pflag.ErrHelp) {
		fmt.Fprint(stdout, usage)
		fmt.Fprint(stdout, fs.FlagUsages())
		return 0, false
	}
	if err != nil {
		fmt.Fprintf(fs.Output(), "probe: %v (see --help)\n", err)
		return oneshot.ExitUsage, false
	}
	return 0, true
}

// parse parses flags that take no arguments; ok is false when the caller
// must return code.
func parse(fs *pflag.FlagSet, args []string, stdout io.Writer) (code int, ok bool) {
	if code, ok := parseFlags(fs, args, stdout); !ok {
		return code, false
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(fs.Output(), "probe: unexpected argument %q\n", fs.Arg(0))
		return oneshot.ExitUsage, false
	}
	return 0, true
}

func runCheck(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("check", stderr)
	var src sourceFlags
	src.register(fs)
	output := fs.StringP("output", "o", "table", "output format: table or json")
	maxConcurrent := fs.Int("max-concurrent", scheduler.DefaultMaxConcurrent, "probes in flight at once")
	wide := fs.Bool("wide", false, "one table row per port and address family: do not fold port ranges")
	var tf traceFlags
	tf.register(fs, false)
	if code, ok := parse(fs, args, stdout); !ok {
		return code
	}
	if *output != "table" && *output != "json" {
		fmt.Fprintf(stderr, "connprobe check: --output must be table or json, not %q\n", *output)
		return oneshot.ExitUsage
	}
	plan, err := targets.BuildPlan(src.configFile, src.options())
	if err != nil {
		fmt.Fprintf(stderr, "connprobe check: %v\n", err)
		return oneshot.ExitUsage
	}
	if src.configFile == "" && len(src.profiles) == 0 {
		hint := "Pick your own with --config.file FILE or --profile NAME (see README)."
		if cat, err := targets.Catalogue(src.profilesDir); err == nil {
			hint = catalogue.Hint(cat)
		}
		fmt.Fprintf(stderr, "connprobe check: no --config.file or --profile given; running the embedded example (%s).\n  %s\n", plan.Config.Source, hint)
	}

	outTerm, outWidth := terminal(stdout)
	errTerm, errWidth := terminal(stderr)
	var progress *oneshot.Progress
	if errTerm {
		progress = oneshot.NewProgress(stderr, len(plan.Checks), errWidth)
		defer progress.Stop()
	}
	var table *oneshot.Table
	if *output == "table" {
		topts := oneshot.TableOptions{Wide: *wide, Stream: outTerm, Color: outTerm && os.Getenv("NO_COLOR") == ""}
		if outTerm {
			topts.Width = outWidth
			if progress != nil {
				topts.Around = progress.Around
			}
		}
		table = oneshot.NewTable(stdout, plan.Checks, topts)
		if err := table.Open(); err != nil {
			fmt.Fprintf(stderr, "connprobe check: %v\n", err)
			return oneshot.ExitUsage
		}
	}
	opts := oneshot.Options{
		MaxConcurrent: *maxConcurrent,
		Trace:         tf.options(),
		Started: func(c *probe.Check) {
			if progress != nil {
				progress.Started(c)
			}
		},
		Finished: func(c *probe.Check, rs []probe.Result) {
			if table != nil {
				table.Finished(c, rs)
			}
			if progress != nil {
				progress.Finished(c)
			}
		},
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	out := oneshot.Run(ctx, plan.Checks, opts)
	if progress != nil {
		progress.Stop()
	}
	rep := oneshot.NewReport(out, plan.Skipped)
	rep.Uplink = oneshot.Uplink(ctx, out.Results)
	if table != nil {
		err = table.Close(rep)
	} else {
		err = rep.WriteJSON(stdout)
	}
	if err != nil {
		fmt.Fprintf(stderr, "connprobe check: %v\n", err)
		return oneshot.ExitUsage
	}
	return rep.ExitCode()
}

// terminal reports whether w is a terminal, and its width (0 if unknown).
func terminal(w io.Writer) (bool, int) {
	f, ok := w.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return false, 0
	}
	width, _, err := term.GetSize(int(f.Fd()))
	if err != nil {
		return true, 0
	}
	return true, width
}

func runValidate(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("validate", stderr)
	var src sourceFlags
	src.register(fs)
	if code, ok := parse(fs, args, stdout); !ok {
		return code
	}
	plan, err := targets.BuildPlan(src.configFile, src.options())
	if err != nil {
		fmt.Fprintf(stderr, "connprobe validate: %v\n", err)
		return oneshot.ExitUsage
	}
	if len(plan.Skipped) == 0 {
		fmt.Fprintf(stdout, "%s: valid, %d checks\n", plan.Config.Source, len(plan.Checks))
		return 0
	}
	fmt.Fprintf(stdout, "%s: valid, %d checks, %d skipped\n", plan.Config.Source, len(plan.Checks), len(plan.Skipped))
	for _, s := range plan.Skipped {
		fmt.Fprintf(stdout, "skipped: %s/%s: %s\n", s.Profile, s.Check, s.Detail)
	}
	return 0
}

// runProfiles is `probe profiles` and `probe profiles show NAME`.
func runProfiles(args []string, stdout, stderr io.Writer) int {
	show := len(args) > 0 && args[0] == "show"
	if show {
		args = args[1:]
	}
	fs := newFlagSet("profiles", stderr)
	profilesDir := fs.String("profiles.dir", "", "directory of additional profile files (*.yml)")
	output := fs.StringP("output", "o", catalogue.FormatTable, "output format: table or json")
	if code, ok := parseFlags(fs, args, stdout); !ok {
		return code
	}
	if *output != catalogue.FormatTable && *output != catalogue.FormatJSON {
		fmt.Fprintf(stderr, "connprobe profiles: --output must be table or json, not %q\n", *output)
		return oneshot.ExitUsage
	}
	want := 0
	if show {
		want = 1
	}
	if fs.NArg() != want {
		fmt.Fprintln(stderr, "connprobe profiles: usage: connprobe profiles [-o json] | connprobe profiles show NAME [-o json]")
		return oneshot.ExitUsage
	}
	cat, err := targets.Catalogue(*profilesDir)
	if err != nil {
		fmt.Fprintf(stderr, "connprobe profiles: %v\n", err)
		return oneshot.ExitUsage
	}
	if show {
		var p *targets.Profile
		if p, err = targets.FindProfile(cat, fs.Arg(0)); err == nil {
			err = catalogue.Show(stdout, p, *output)
		}
	} else {
		err = catalogue.List(stdout, cat, *output)
	}
	if err != nil {
		fmt.Fprintf(stderr, "connprobe profiles: %v\n", err)
		return oneshot.ExitUsage
	}
	return 0
}

func runAgent(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("probe", stderr)
	var src sourceFlags
	src.register(fs)
	listen := fs.StringArray("web.listen-address", []string{":9469"}, "address to serve /metrics on (repeatable)")
	webConfig := fs.String("web.config.file", "", "exporter-toolkit web configuration file (TLS, basic auth)")
	maxConcurrent := fs.Int("scheduler.max-concurrent", scheduler.DefaultMaxConcurrent, "probes in flight at once")
	allReasons := fs.Bool("metrics.all-reasons", false, "export connprobe_check_reason for every reason (0 or 1), not only the current one")
	latencyBuckets := fs.Bool("metrics.latency-buckets", false, "give connprobe_check_latency_seconds classic buckets besides the native histogram")
	phases := fs.Bool("metrics.phases", false, "export connprobe_check_phase_duration_seconds (one series per phase of the last run)")
	tlsDetails := fs.Bool("metrics.tls-details", false, "export connprobe_tls_version_info and connprobe_tls_handshake_seconds")
	ntpDetails := fs.Bool("metrics.ntp-details", false, "export connprobe_ntp_reachable, _rtt_seconds, _stratum, _root_distance_seconds and _leap, and the kiss code none and throttled 0")
	memLimit := memlimit.Setting{Mode: memlimit.Auto}
	fs.Var(&memLimit, "runtime.memory-limit", "Go's soft memory limit: auto (follows the live heap), off (Go's defaults) or a size such as 64MiB; GOGC or GOMEMLIMIT in the environment win")
	var tf traceFlags
	tf.register(fs, true)
	logLevel := fs.String("log.level", "info", "log level: debug, info, warn, error")
	logFormat := fs.String("log.format", "logfmt", "log format: logfmt or json")
	version := fs.Bool("version", false, "print the version and exit")
	if code, ok := parse(fs, args, stdout); !ok {
		return code
	}
	if *version {
		fmt.Fprintln(stdout, buildinfo.String())
		return 0
	}
	logger, err := newLogger(stderr, *logLevel, *logFormat)
	if err != nil {
		fmt.Fprintf(stderr, "probe: %v\n", err)
		return oneshot.ExitUsage
	}

	// Before the first load, so that the collections of a large load
	// already set the limit.
	policy, err := memlimit.Apply(memLimit, os.Getenv)
	if errors.Is(err, memlimit.ErrEnvironment) {
		logger.Info("memory limit left to the environment", "GOGC", os.Getenv("GOGC"), "GOMEMLIMIT", os.Getenv("GOMEMLIMIT"),
			"ignored", "--runtime.memory-limit="+memLimit.String())
	} else {
		logger.Info("memory limit", "runtime.memory-limit", memLimit.String())
	}
	defer policy.Stop()

	a, err := agent.New(agent.Options{
		ConfigFile:    src.configFile,
		Targets:       src.options(),
		ListenAddrs:   *listen,
		WebConfigFile: *webConfig,
		MaxConcurrent: *maxConcurrent,
		Metrics: agent.MetricsOptions{AllReasons: *allReasons, LatencyBuckets: *latencyBuckets,
			Phases: *phases, TLSDetails: *tlsDetails, NTPDetails: *ntpDetails},
		Trace:  tf.options(),
		Logger: logger,
	})
	if err != nil {
		logger.Error("cannot start", "err", err)
		return oneshot.ExitUsage
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go func() {
		for {
			select {
			case <-hup:
				if err := a.Reload(); err != nil {
					logger.Error("reload on SIGHUP failed, keeping the previous configuration", "err", err)
				}
			case <-ctx.Done():
				return
			}
		}
	}()

	// runService is a.Run, under the service control manager on Windows.
	if err := runService(ctx, a.Run); err != nil {
		logger.Error("agent stopped", "err", err)
		return 1
	}
	return 0
}

// traceFlags are the path-trace policy's flags, shared by the agent and
// `probe check` (which traces each failing check once: no interval).
type traceFlags struct {
	disable       bool
	minInterval   time.Duration
	maxConcurrent int
}

func (t *traceFlags) register(fs *pflag.FlagSet, agent bool) {
	fs.BoolVar(&t.disable, "trace.disable", false, "do not trace the path of failing checks")
	fs.IntVar(&t.maxConcurrent, "trace.max-concurrent", scheduler.DefaultTraceMaxConcurrent, "path traces running at once")
	if agent {
		fs.DurationVar(&t.minInterval, "trace.min-interval", scheduler.DefaultTraceMinInterval,
			"least time between two traces of a check that keeps failing for the same reason")
	}
}

func (t *traceFlags) options() scheduler.TraceOptions {
	if t.disable {
		return scheduler.TraceOptions{}
	}
	return scheduler.TraceOptions{Trace: probe.Trace, MinInterval: t.minInterval, MaxConcurrent: t.maxConcurrent}
}

func newLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log.level: %w", err)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "logfmt":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("--log.format must be logfmt or json, not %q", format)
}

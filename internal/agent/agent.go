// Package agent assembles the long-running connprobe: configuration and its
// reloads, the scheduler, the results store, metrics and the web server.
package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/connprobe/connprobe/internal/buildinfo"
	"github.com/connprobe/connprobe/internal/fdlimit"
	"github.com/connprobe/connprobe/internal/gateway"
	"github.com/connprobe/connprobe/internal/metrics"
	"github.com/connprobe/connprobe/internal/results"
	"github.com/connprobe/connprobe/internal/scheduler"
	"github.com/connprobe/connprobe/internal/uplink"
	"github.com/connprobe/connprobe/internal/web"
	"github.com/connprobe/connprobe/probe"
	"github.com/connprobe/connprobe/targets"
)

// Options configure an Agent.
type Options struct {
	ConfigFile    string          // "" with no profiles: the embedded example
	Targets       targets.Options // --profile, --param, --profiles.dir
	ListenAddrs   []string
	WebConfigFile string
	MaxConcurrent int
	Metrics       MetricsOptions
	// Trace is the policy for tracing the path of failing checks.
	Trace  scheduler.TraceOptions
	Logger *slog.Logger
}

// MetricsOptions choose the optional shapes of the per-check series.
type MetricsOptions struct {
	AllReasons     bool // connprobe_check_reason for every reason, not only the current one
	LatencyBuckets bool // classic buckets for connprobe_check_latency_seconds
	Phases         bool // connprobe_check_phase_duration_seconds
	TLSDetails     bool // connprobe_tls_version_info and connprobe_tls_handshake_seconds
	NTPDetails     bool // the connprobe_ntp_* details, kiss code none and throttled 0
}

func (o MetricsOptions) options() []metrics.Option {
	var out []metrics.Option
	if o.AllReasons {
		out = append(out, metrics.WithAllReasons())
	}
	if o.LatencyBuckets {
		out = append(out, metrics.WithLatencyBuckets())
	}
	if o.Phases {
		out = append(out, metrics.WithPhases())
	}
	if o.TLSDetails {
		out = append(out, metrics.WithTLSDetails())
	}
	if o.NTPDetails {
		out = append(out, metrics.WithNTPDetails())
	}
	return out
}

// Agent is one running connprobe.
type Agent struct {
	opts     Options
	logger   *slog.Logger
	registry *prometheus.Registry
	store    *results.Store
	sched    *scheduler.Scheduler
	metrics  *metrics.Metrics
	uplink   uplink.Source
	handler  http.Handler

	reloadMu sync.Mutex // one load at a time (SIGHUP and /-/reload may race)

	statusMu sync.Mutex
	status   web.AgentStatus // for the status page: the last reload, skipped checks
	// roots caches TLS root pools per CA file for the loaded configuration;
	// each load replaces it, so a changed CA file is read again.
	roots atomic.Pointer[probe.TLSRoots]
	// recorded, when set before Start, is called after each run is
	// recorded: the per-probe benchmark counts runs with it.
	recorded func(c *probe.Check, rs []probe.Result)
}

// New loads the configuration and assembles the agent. An invalid initial
// configuration is an error: there is nothing to keep running.
func New(opts Options) (*Agent, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	a := &Agent{opts: opts, logger: opts.Logger, store: results.New(), registry: metrics.NewRegistry()}
	a.sched = scheduler.New(scheduler.Options{
		MaxConcurrent: a.concurrency(),
		Run:           a.run,
		Sink:          a.record,
		Trace:         opts.Trace,
		Logger:        opts.Logger,
	})
	// The routing table is read at most every gatewayTTL, however often
	// /metrics and the status page ask.
	host := gateway.NewCache(gatewayTTL).Get
	a.uplink = uplink.Source{Store: a.store, Host: host,
		Resolvers: uplink.NewResolverWatch(probe.Trace, host, resolverTraceEvery)}
	m, err := metrics.New(a.registry, a.store, a.sched.Overruns, buildinfo.Get(),
		append(opts.Metrics.options(), metrics.WithThrottled(a.sched.Throttled), metrics.WithUplink(a.uplink.Verdict))...)
	if err != nil {
		return nil, fmt.Errorf("registering metrics: %w", err)
	}
	a.metrics = m
	if err := a.Reload(); err != nil {
		return nil, err
	}
	a.handler = web.New(web.Options{
		Gatherer: a.metrics.Gatherer(a.registry),
		Metrics:  a.metrics.Handler(a.registry, opts.Logger),
		Store:    a.store,
		Reload:   a.Reload,
		Logger:   opts.Logger,
		Version:  buildinfo.Get().Version,
		Status:   a.pageStatus,
	})
	return a, nil
}

// concurrency is --scheduler.max-concurrent fitted to the descriptor
// limit, so that probes never starve each other (or the web server) of
// descriptors: healthy checks would read down, reason local.
func (a *Agent) concurrency() int {
	requested := a.opts.MaxConcurrent
	if requested <= 0 {
		requested = scheduler.DefaultMaxConcurrent
	}
	s, err := fdlimit.Size(requested)
	if err != nil {
		a.logger.Warn("cannot read the file descriptor limit; probe concurrency as configured", "max_concurrent", requested, "err", err)
		return requested
	}
	if s.Lowered() {
		a.logger.Warn("probe concurrency lowered to fit the file descriptor limit (raise it with ulimit -n or LimitNOFILE=)",
			"max_concurrent", s.Effective, "requested", s.Requested, "nofile_soft", s.Soft, "nofile_hard", s.Hard,
			"reserved", fdlimit.Reserve, "per_probe", fdlimit.PerProbe)
	} else {
		a.logger.Info("probe concurrency", "max_concurrent", s.Effective, "nofile_soft", s.Soft, "nofile_hard", s.Hard, "raised", s.Raised)
	}
	return s.Effective
}

// gatewayTTL is how long a reading of the routing table is reused.
const gatewayTTL = 10 * time.Second

// resolverTraceEvery is the least time between two traces towards the
// resolvers while names do not resolve (the checks' own traces follow the
// scheduler's policy).
const resolverTraceEvery = 10 * time.Minute

// Uplink is the site-wide uplink verdict from the results store now (the
// status page shows it while the uplink is down). It sends nothing.
func (a *Agent) Uplink() uplink.Verdict { return a.uplink.Verdict() }

// run probes c with the current configuration's TLS root pools.
func (a *Agent) run(ctx context.Context, c *probe.Check) []probe.Result {
	return probe.Run(probe.WithTLSRoots(ctx, a.roots.Load()), c)
}

func (a *Agent) record(c *probe.Check, rs []probe.Result) {
	prev, ok := a.store.Put(c, rs)
	a.metrics.Record(c, rs)
	a.uplink.Resolvers.Observe(rs, a.uplink.Results)
	if ok {
		logChanges(a.logger, c, prev, rs, time.Now())
	}
	for _, r := range rs {
		if !r.Up {
			a.logger.Debug("check failed", "check", c.Name, "profile", c.Profile, "host", c.Host, "port", c.Port,
				"address", r.Address, "reason", r.Reason, "phase", r.Phase, "detail", r.Detail)
		}
	}
	if a.recorded != nil {
		a.recorded(c, rs)
	}
}

// Reload loads the configuration again and applies it. On error the running
// configuration stays in force and the reload metric says so.
func (a *Agent) Reload() error {
	a.reloadMu.Lock()
	defer a.reloadMu.Unlock()
	plan, err := targets.BuildPlan(a.opts.ConfigFile, a.opts.Targets)
	a.statusMu.Lock()
	a.status.ReloadAt = time.Now()
	if err != nil {
		a.status.ReloadError = err.Error()
	} else {
		a.status.ReloadError = ""
		a.status.Skipped = a.status.Skipped[:0:0]
		for _, s := range plan.Skipped {
			a.status.Skipped = append(a.status.Skipped, web.Skipped{Profile: s.Profile, Check: s.Check, Essential: s.Essential, Detail: s.Detail})
		}
	}
	a.statusMu.Unlock()
	if err != nil {
		a.metrics.ReloadResult(false)
		return err
	}
	a.roots.Store(probe.NewTLSRoots())
	a.store.SetChecks(plan.Checks)
	a.sched.Apply(plan.Checks)
	a.metrics.SetSkipped(len(plan.Skipped))
	a.metrics.ReloadResult(true)
	a.logger.Info("configuration loaded", "source", plan.Config.Source, "checks", len(plan.Checks), "skipped", len(plan.Skipped))
	for _, s := range plan.Skipped {
		a.logger.Warn("profile check skipped: a required param is not set",
			"profile", s.Profile, "check", s.Check, "missing", strings.Join(s.Missing, ","), "hint", s.Detail)
	}
	// Parsing and expanding a large configuration leaves megabytes of
	// garbage that the runtime would hand back to the system only over
	// minutes (at 10,000 checks, 40 MiB of RSS); loads are rare, so give it
	// back now.
	debug.FreeOSMemory()
	return nil
}

// pageStatus is the agent's state for the status page.
func (a *Agent) pageStatus() web.AgentStatus {
	a.statusMu.Lock()
	st := a.status // Skipped is replaced, never modified in place
	a.statusMu.Unlock()
	switch v := a.uplink.Verdict(); v.State {
	case uplink.StateDown:
		st.Uplink = &web.Uplink{Location: v.Location, Gateway: v.Gateway, Hop: v.Hop, Address: v.Address, Detail: v.Detail}
	case uplink.StateUp:
		st.Uplink = &web.Uplink{Up: true}
	}
	return st
}

// Handler serves every HTTP endpoint.
func (a *Agent) Handler() http.Handler { return a.handler }

// Run starts the checks and serves HTTP until ctx is cancelled.
func (a *Agent) Run(ctx context.Context) error {
	a.sched.Start(ctx)
	defer a.sched.Stop()
	defer a.uplink.Resolvers.Close()
	err := web.Serve(ctx, a.handler, web.ServeOptions{
		ListenAddresses: a.opts.ListenAddrs,
		ConfigFile:      a.opts.WebConfigFile,
	}, a.logger)
	if err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

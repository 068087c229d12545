// Package web serves connprobe's HTTP endpoints: /metrics, the health and
// readiness probes, /-/reload and a status page for people. No endpoint takes
// a target from the request: connprobe probes only what its config names.
package web

import (
	"context"
	"errors"
	"html/template"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/exporter-toolkit/web"

	"github.com/connprobe/connprobe/internal/results"
)

// Options configure the handler.
type Options struct {
	Gatherer prometheus.Gatherer // usually the *prometheus.Registry
	Store    *results.Store
	// Reload reloads the configuration; nil makes /-/reload answer 501.
	Reload  func() error
	Logger  *slog.Logger
	Version string
}

// New returns the handler of every endpoint.
func New(opts Options) http.Handler {
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(opts.Gatherer, promhttp.HandlerOpts{
		ErrorLog:      slog.NewLogLogger(logger.Handler(), slog.LevelError),
		ErrorHandling: promhttp.ContinueOnError,
	}))
	mux.HandleFunc("/-/healthy", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("OK"))
	})
	mux.HandleFunc("/-/ready", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if !opts.Store.Ready() {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte("not every check has run yet"))
			return
		}
		_, _ = w.Write([]byte("OK"))
	})
	mux.Handle("/-/reload", &reloadHandler{reload: opts.Reload, logger: logger})
	mux.Handle("/{$}", &statusPage{store: opts.Store, version: opts.Version, logger: logger})
	return mux
}

// reloadHandler serialises reloads: two POSTs at once reload one after the other.
type reloadHandler struct {
	mu     sync.Mutex
	reload func() error
	logger *slog.Logger
}

func (h *reloadHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "use POST to reload the configuration", http.StatusMethodNotAllowed)
		return
	}
	if h.reload == nil {
		http.Error(w, "reload is not available", http.StatusNotImplemented)
		return
	}
	h.mu.Lock()
	err := h.reload()
	h.mu.Unlock()
	if err != nil {
		h.logger.Error("reload via HTTP failed", "err", err)
		http.Error(w, "reload failed: "+err.Error(), http.StatusInternalServerError)
		return
	}
	h.logger.Info("configuration reloaded via HTTP")
	_, _ = w.Write([]byte("OK"))
}

// statusRow is one result (or one pending check) on the status page.
type statusRow struct {
	Profile, Check, Kind, HostPort, Protocol, Family, Address string
	Pending, Up                                               bool
	Reason, Phase, Detail, LastRun                            string
}

var statusTemplate = template.Must(template.New("status").Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>connprobe</title>
<style>
body { font-family: sans-serif; margin: 1em 2em; }
table { border-collapse: collapse; }
th, td { border: 1px solid #ccc; padding: 2px 6px; text-align: left; vertical-align: top; }
.up { color: #070; font-weight: bold; }
.down { color: #b00; font-weight: bold; }
.pending { color: #777; }
.detail { font-family: monospace; white-space: pre-wrap; max-width: 40em; }
</style>
</head>
<body>
<h1>connprobe</h1>
<p>Version {{.Version}}. <a href="/metrics">Metrics</a> &middot; <a href="/-/ready">Readiness</a></p>
<table>
<thead><tr><th>Profile</th><th>Check</th><th>Kind</th><th>Host:port</th><th>Protocol</th><th>Family</th><th>Address</th><th>Verdict</th><th>Reason</th><th>Phase</th><th>Detail</th><th>Last run</th></tr></thead>
<tbody>
{{range .Rows}}<tr>
<td>{{.Profile}}</td><td>{{.Check}}</td><td>{{.Kind}}</td><td>{{.HostPort}}</td><td>{{.Protocol}}</td><td>{{.Family}}</td><td>{{.Address}}</td>
{{if .Pending}}<td class="pending">pending</td><td></td><td></td><td></td><td></td>
{{else}}<td class="{{if .Up}}up{{else}}down{{end}}">{{if .Up}}up{{else}}down{{end}}</td><td>{{.Reason}}</td><td>{{.Phase}}</td><td class="detail">{{.Detail}}</td><td>{{.LastRun}}</td>
{{end}}</tr>
{{else}}<tr><td colspan="12">No checks configured.</td></tr>
{{end}}</tbody>
</table>
</body>
</html>
`))

type statusPage struct {
	store   *results.Store
	version string
	logger  *slog.Logger
}

func (p *statusPage) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	var rows []statusRow
	for _, e := range p.store.Snapshot() {
		c := e.Check
		base := statusRow{
			Profile: c.Profile, Check: c.Name, Kind: c.Kind,
			HostPort: net.JoinHostPort(c.Host, strconv.Itoa(c.Port)), Protocol: c.Protocol,
		}
		if !e.Ran() {
			base.Pending, base.Family = true, c.IPFamily
			rows = append(rows, base)
			continue
		}
		for _, r := range e.Results {
			row := base
			row.Family, row.Address, row.Up = r.IPFamily, r.Address, r.Up
			row.Reason, row.Phase, row.Detail = string(r.Reason), string(r.Phase), r.Detail
			last := r.Start
			if last.IsZero() {
				last = e.Updated
			}
			row.LastRun = last.Local().Format(time.DateTime)
			rows = append(rows, row)
		}
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	err := statusTemplate.Execute(w, struct {
		Version string
		Rows    []statusRow
	}{p.version, rows})
	if err != nil {
		p.logger.Debug("writing status page", "err", err)
	}
}

// ServeOptions are the exporter-toolkit web flags as plain values.
type ServeOptions struct {
	ListenAddresses []string // --web.listen-address
	ConfigFile      string   // --web.config.file: TLS and basic auth; "" for plain HTTP
	// ShutdownTimeout bounds the graceful shutdown (default 5s).
	ShutdownTimeout time.Duration
}

// Serve serves handler until ctx is cancelled, then shuts down gracefully.
// It returns nil after a shutdown and the listener's error otherwise.
func Serve(ctx context.Context, handler http.Handler, opts ServeOptions, logger *slog.Logger) error {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if opts.ShutdownTimeout <= 0 {
		opts.ShutdownTimeout = 5 * time.Second
	}
	addresses := opts.ListenAddresses
	configFile := opts.ConfigFile
	systemdSocket := false
	flags := &web.FlagConfig{
		WebListenAddresses: &addresses,
		WebSystemdSocket:   &systemdSocket,
		WebConfigFile:      &configFile,
	}
	server := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelError),
	}

	served := make(chan error, 1)
	go func() { served <- web.ListenAndServe(server, flags, logger) }()

	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), opts.ShutdownTimeout)
	defer cancel()
	if err := server.Shutdown(shutdownCtx); err != nil {
		logger.Warn("web server shutdown", "err", err)
		_ = server.Close()
	}
	if err := <-served; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

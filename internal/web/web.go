// Package web serves connprobe's HTTP endpoints: /metrics, the health and
// readiness probes, /-/reload and a status page for people. No endpoint takes
// a target from the request: connprobe probes only what its config names.
package web

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
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
	// Metrics serves /metrics instead of promhttp over Gatherer when set
	// (metrics.Metrics.Handler: per-check families streamed one at a time).
	Metrics http.Handler
	Store   *results.Store
	// Reload reloads the configuration; nil makes /-/reload answer 501.
	Reload  func() error
	Logger  *slog.Logger
	Version string
	// Status reports the agent's own state for the status page (reload
	// errors, skipped checks, the uplink verdict); nil: nothing to report.
	Status func() AgentStatus
	// Location is the time zone of the status page's times (default: the
	// local zone); every time is shown with its zone.
	Location *time.Location
	// Refresh is how often the status page reloads itself (default 30s).
	Refresh time.Duration
	// Clock is the time source (default time.Now).
	Clock func() time.Time
}

// New returns the handler of every endpoint.
func New(opts Options) http.Handler {
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	mux := http.NewServeMux()
	metricsHandler := opts.Metrics
	if metricsHandler == nil {
		metricsHandler = promhttp.HandlerFor(opts.Gatherer, promhttp.HandlerOpts{
			ErrorLog:      slog.NewLogLogger(logger.Handler(), slog.LevelError),
			ErrorHandling: promhttp.ContinueOnError,
		})
	}
	mux.Handle("/metrics", metricsHandler)
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
	page := pageOptions{store: opts.Store, status: opts.Status, version: opts.Version,
		location: opts.Location, refresh: opts.Refresh, now: opts.Clock, logger: logger}
	if page.location == nil {
		page.location = time.Local
	}
	if page.refresh <= 0 {
		page.refresh = 30 * time.Second
	}
	if page.now == nil {
		page.now = time.Now
	}
	mux.Handle("/{$}", &statusPage{page})
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

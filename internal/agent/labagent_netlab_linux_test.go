//go:build linux

package agent

import (
	"context"
	"io"
	"net/http/httptest"
	"os"
	"path/filepath"

	"github.com/connprobe/connprobe/internal/scheduler"
	"github.com/connprobe/connprobe/probe"
)

// labAgent runs the agent, with tracing on, on the configuration text in
// the process it is called from (a netlab helper process inside a lab
// namespace). It returns a scrape of /metrics and a stop that waits for the
// agent to end.
func labAgent(dir, config string) (scrape func() string, stop func(), err error) {
	cfg := filepath.Join(dir, "c.yml")
	if err := os.WriteFile(cfg, []byte(config), 0o600); err != nil {
		return nil, nil, err
	}
	a, err := New(Options{ConfigFile: cfg, ListenAddrs: []string{"127.0.0.1:0"},
		Trace: scheduler.TraceOptions{Trace: probe.Trace}})
	if err != nil {
		return nil, nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	scrape = func() string {
		rec := httptest.NewRecorder()
		a.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
		b, _ := io.ReadAll(rec.Result().Body)
		return string(b)
	}
	return scrape, func() { cancel(); <-done }, nil
}

package web

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/crypto/bcrypt"

	"github.com/connprobe/connprobe/internal/results"
	"github.com/connprobe/connprobe/probe"
)

var client = &http.Client{Timeout: 5 * time.Second}

func get(t *testing.T, method, url string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(body)
}

func newServer(t *testing.T, store *results.Store, reload func() error) *httptest.Server {
	t.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(prometheus.NewGauge(prometheus.GaugeOpts{Name: "connprobe_test_gauge", Help: "A test gauge."}))
	srv := httptest.NewServer(New(Options{Gatherer: reg, Store: store, Reload: reload, Version: "1.2.3"}))
	t.Cleanup(srv.Close)
	return srv
}

func TestHealthyReadyMetrics(t *testing.T) {
	store := results.New()
	c := &probe.Check{Name: "db", Kind: "tcp", Host: "192.0.2.1", Port: 5432, Network: "tcp"}
	store.SetChecks([]*probe.Check{c})
	srv := newServer(t, store, nil)

	if code, body := get(t, http.MethodGet, srv.URL+"/-/healthy"); code != http.StatusOK || body != "OK" {
		t.Errorf("healthy: %d %q", code, body)
	}
	if code, _ := get(t, http.MethodGet, srv.URL+"/-/ready"); code != http.StatusServiceUnavailable {
		t.Errorf("ready before any run: %d, want 503", code)
	}
	store.Put(c, []probe.Result{{Check: c, Up: true, Reason: probe.ReasonOK, IPFamily: probe.FamilyIPv4}})
	if code, _ := get(t, http.MethodGet, srv.URL+"/-/ready"); code != http.StatusOK {
		t.Errorf("ready after every check ran: %d, want 200", code)
	}
	code, body := get(t, http.MethodGet, srv.URL+"/metrics")
	if code != http.StatusOK || !strings.Contains(body, "connprobe_test_gauge 0") {
		t.Errorf("metrics: %d %q", code, body)
	}
	if code, _ := get(t, http.MethodGet, srv.URL+"/probe?target=192.0.2.1:22"); code != http.StatusNotFound {
		t.Errorf("/probe answered %d; no endpoint may take a target", code)
	}
}

func TestReloadMethodsAndErrors(t *testing.T) {
	var calls int
	var fail error
	srv := newServer(t, results.New(), func() error { calls++; return fail })

	if code, _ := get(t, http.MethodGet, srv.URL+"/-/reload"); code != http.StatusMethodNotAllowed {
		t.Errorf("GET /-/reload: %d, want 405", code)
	}
	if calls != 0 {
		t.Fatal("GET triggered a reload")
	}
	if code, body := get(t, http.MethodPost, srv.URL+"/-/reload"); code != http.StatusOK || calls != 1 {
		t.Errorf("POST /-/reload: %d %q, calls %d", code, body, calls)
	}
	fail = errors.New("targets.yml:3: unknown check kind \"ftps\"")
	code, body := get(t, http.MethodPost, srv.URL+"/-/reload")
	if code != http.StatusInternalServerError || !strings.Contains(body, `unknown check kind "ftps"`) {
		t.Errorf("failed reload: %d %q", code, body)
	}

	nilReload := newServer(t, results.New(), nil)
	if code, _ := get(t, http.MethodPost, nilReload.URL+"/-/reload"); code != http.StatusNotImplemented {
		t.Errorf("reload without a reload func: %d, want 501", code)
	}
}

// freeLoopbackAddress returns a loopback address with a port free right now.
func freeLoopbackAddress(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func TestServeWithBasicAuthConfig(t *testing.T) {
	hash, err := bcrypt.GenerateFromPassword([]byte("s3cret"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	configFile := filepath.Join(t.TempDir(), "web.yml")
	if err := os.WriteFile(configFile, []byte("basic_auth_users:\n  alice: "+string(hash)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	addr := freeLoopbackAddress(t)
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	handler := New(Options{Gatherer: prometheus.NewRegistry(), Store: results.New()})
	go func() {
		served <- Serve(ctx, handler, ServeOptions{ListenAddresses: []string{addr}, ConfigFile: configFile}, nil)
	}()
	defer func() {
		cancel()
		select {
		case err := <-served:
			if err != nil {
				t.Errorf("Serve returned %v after shutdown", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("Serve did not return after cancel")
		}
	}()

	url := "http://" + addr + "/-/healthy"
	request := func(user, pass string) (int, error) {
		req, err := http.NewRequest(http.MethodGet, url, nil)
		if err != nil {
			return 0, err
		}
		if user != "" {
			req.SetBasicAuth(user, pass)
		}
		resp, err := client.Do(req)
		if err != nil {
			return 0, err
		}
		resp.Body.Close()
		return resp.StatusCode, nil
	}

	// Wait for the listener, a bounded number of times.
	var code int
	for range 200 {
		if code, err = request("", ""); err == nil {
			break
		}
		select {
		case err := <-served:
			t.Fatalf("Serve returned early: %v", err)
		case <-time.After(10 * time.Millisecond):
		}
	}
	if err != nil {
		t.Fatalf("server never answered: %v", err)
	}
	if code != http.StatusUnauthorized {
		t.Errorf("without credentials: %d, want 401", code)
	}
	if code, err := request("alice", "wrong"); err != nil || code != http.StatusUnauthorized {
		t.Errorf("wrong password: %d %v, want 401", code, err)
	}
	if code, err := request("alice", "s3cret"); err != nil || code != http.StatusOK {
		t.Errorf("with credentials: %d %v, want 200", code, err)
	}
}

func TestServeFailsOnBusyAddress(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err = Serve(ctx, http.NotFoundHandler(), ServeOptions{ListenAddresses: []string{l.Addr().String()}}, nil)
	if err == nil {
		t.Error("Serve on a busy address returned nil")
	}
}

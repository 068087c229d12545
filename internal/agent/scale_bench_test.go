//go:build unix

package agent

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/connprobe/connprobe/probe"
)

// BenchmarkScale loads n TCP checks, gives every check a result (as after
// its first run: the scheduler is not started, so nothing is probed) and
// scrapes /metrics once, gzip as Prometheus asks. It reports the load and
// scrape times (wall, and CPU of the whole process: on a shared machine the
// better measure), the scrape's size, and the Go heap per check (live heap after load
// and results, over the heap before, divided by n), so the cost per check
// can be read off and its linearity seen across n. The real agent's RSS,
// runs and overruns at 10,000 checks are measured by bench/sidebyside.sh
// -scale 10000 (README, Performance).
//
//	go test ./internal/agent/ -run '^$' -bench BenchmarkScale -benchtime 3x
func BenchmarkScale(b *testing.B) {
	for _, n := range []int{1000, 5000, 10000} {
		b.Run(fmt.Sprintf("checks=%d", n), func(b *testing.B) { benchScale(b, n) })
	}
}

// scaleConfig writes a configuration of n TCP checks.
func scaleConfig(b *testing.B, n int) string {
	var cfg strings.Builder
	cfg.WriteString("defaults: {ip_family: ipv4}\nchecks:\n")
	for i := range n {
		// Addresses in 192.0.2.0/24 (TEST-NET-1): never contacted, the
		// scheduler does not run.
		fmt.Fprintf(&cfg, "  - {name: c%d, kind: tcp, host: 192.0.2.%d, port: %d}\n", i, i%250+1, 1000+i/250)
	}
	file := filepath.Join(b.TempDir(), "connprobe.yml")
	if err := os.WriteFile(file, []byte(cfg.String()), 0o600); err != nil {
		b.Fatal(err)
	}
	return file
}

// scaleResult is one successful TCP run of c, as the probe would report it.
func scaleResult(c *probe.Check) []probe.Result {
	return []probe.Result{{Check: c, Address: c.Host, IPFamily: probe.FamilyIPv4, Up: true, Reason: probe.ReasonOK,
		Phase: probe.PhaseConnect, Start: time.Now(), Duration: 300 * time.Microsecond,
		Timings: []probe.Timing{{Phase: probe.PhaseConnect, Duration: 300 * time.Microsecond, Seconds: 0.0003}}}}
}

// BenchmarkScaleScrape is one /metrics scrape (gzip) of 10,000 checks that
// have run, repeated: the steady state of a Prometheus scraping a large
// site (BenchmarkScale times the first scrape after a load). cpu-ms/op is
// the process's CPU per scrape, garbage collection included.
//
//	go test ./internal/agent/ -run '^$' -bench BenchmarkScaleScrape -benchtime 10x -benchmem
func BenchmarkScaleScrape(b *testing.B) {
	_, h := scrapedScaleAgent(b, 10000)
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cpuTime(b)
	for range b.N {
		scrapeOnce(b, h)
	}
	// The process's CPU (user and system) per scrape: on a shared machine
	// steadier than the wall time.
	b.ReportMetric(float64((cpuTime(b)-cpu0).Microseconds())/1000/float64(b.N), "cpu-ms/op")
}

func benchScale(b *testing.B, n int) {
	file := scaleConfig(b, n)
	var load, scrape, loadCPU, scrapeCPU time.Duration
	var heap, size float64
	for range b.N {
		before := liveHeap()
		begin, cpu0 := time.Now(), cpuTime(b)
		a, err := New(Options{ConfigFile: file})
		if err != nil {
			b.Fatal(err)
		}
		load += time.Since(begin)
		loadCPU += cpuTime(b) - cpu0
		entries := a.store.Snapshot()
		if len(entries) != n {
			b.Fatalf("%d checks loaded, want %d", len(entries), n)
		}
		for _, e := range entries {
			a.record(e.Check, scaleResult(e.Check))
		}
		begin, cpu0 = time.Now(), cpuTime(b)
		body := scrapeOnce(b, a.Handler())
		scrape += time.Since(begin)
		scrapeCPU += cpuTime(b) - cpu0
		size += float64(body)
		heap += float64(liveHeap()-before) / float64(n)
		runtime.KeepAlive(a)
	}
	b.ReportMetric(float64(load.Milliseconds())/float64(b.N), "load-ms")
	b.ReportMetric(float64(loadCPU.Milliseconds())/float64(b.N), "load-cpu-ms")
	b.ReportMetric(float64(scrapeCPU.Microseconds())/1000/float64(b.N), "scrape-cpu-ms")
	b.ReportMetric(float64(scrape.Microseconds())/1000/float64(b.N), "scrape-ms")
	b.ReportMetric(size/float64(b.N), "scrape-gzip-bytes")
	b.ReportMetric(heap/float64(b.N), "heap-bytes/check")
}

func scrapeOnce(b *testing.B, h http.Handler) int {
	req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
	req.Header.Set("Accept-Encoding", "gzip")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		b.Fatalf("/metrics: %d", rec.Code)
	}
	n, _ := io.Copy(io.Discard, rec.Body)
	return int(n)
}

// cpuTime is the user and system time this process has used: on a machine
// shared with other work, the CPU a load or scrape costs says more than its
// wall time.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// liveHeap is the heap in use after a full collection.
func liveHeap() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// BenchmarkScaleScrapeProbing is BenchmarkScaleScrape in the conditions of
// the side-by-side benchmark's scale phase: the agent's scheduler probes
// 10,000 TCP checks at about 290 runs a second (loopback listeners that
// accept and close) while /metrics is fetched over HTTP by Go's client
// (gzip asked for and undone transparently, the whole body read into a
// buffer the client keeps), so that the garbage collector's work and any
// lock a scrape holds against recording runs show in the time. It waits
// until every check has run once and the first-run burst has passed; it
// reports the probe runs per second seen during the scrapes, the body size
// and the handler's own time (handler-ms: until it has written the last
// byte; the client reads and decompresses along).
//
//	go test ./internal/agent/ -run '^$' -bench BenchmarkScaleScrapeProbing -benchtime 10x -benchmem
func BenchmarkScaleScrapeProbing(b *testing.B) {
	// 200 addresses, as the side-by-side benchmark: the scheduler spaces
	// probes to one host (10 a second by default).
	const n, listeners = 10000, 200
	var accepted atomic.Int64
	var cfg strings.Builder
	// A 35 s interval: about 290 runs a second, the rate of the side-by-side
	// benchmark's 75 s (which includes the first runs of every check).
	cfg.WriteString("defaults: {ip_family: ipv4, interval: 35s}\nchecks:\n")
	var addrs []string
	for i := range listeners {
		ln, err := net.Listen("tcp", fmt.Sprintf("127.0.1.%d:0", i+1))
		if err != nil {
			b.Skipf("this system has no loopback addresses beyond 127.0.0.1: %v", err)
		}
		b.Cleanup(func() { ln.Close() })
		addrs = append(addrs, ln.Addr().String())
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				accepted.Add(1)
				c.Close()
			}
		}()
	}
	for i := range n {
		host, port, _ := net.SplitHostPort(addrs[i%listeners])
		fmt.Fprintf(&cfg, "  - {name: c%d, kind: tcp, host: %s, port: %s}\n", i, host, port)
	}
	file := filepath.Join(b.TempDir(), "connprobe.yml")
	if err := os.WriteFile(file, []byte(cfg.String()), 0o600); err != nil {
		b.Fatal(err)
	}
	a, err := New(Options{ConfigFile: file})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	a.sched.Start(ctx)
	defer a.sched.Stop()
	// served measures the handler alone: the scrape's time less the
	// client's (reading and undoing the gzip of the last chunks).
	var served atomic.Int64
	h := a.Handler()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t0 := time.Now()
		h.ServeHTTP(w, r)
		served.Add(int64(time.Since(t0)))
	}))
	defer srv.Close()

	deadline := time.Now().Add(2 * time.Minute)
	for !a.store.Ready() {
		if time.Now().After(deadline) {
			b.Fatal("not every check ran within 2 minutes")
		}
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(10 * time.Second) // past the first-run burst, into the steady rate

	// The body is read into a buffer kept from one scrape to the next, as
	// a Prometheus does: io.ReadAll's growing buffer (the side-by-side's
	// client) is 40 MB of garbage per scrape, whose collection in this
	// same process would be charged to the agent.
	client := &http.Client{}
	var body bytes.Buffer
	get := func() int {
		resp, err := client.Get(srv.URL + "/metrics")
		if err != nil {
			b.Fatal(err)
		}
		body.Reset()
		_, err = body.ReadFrom(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			b.Fatalf("/metrics: %v %s", err, resp.Status)
		}
		return body.Len()
	}
	size := get()
	served.Store(0)
	runs0, begin := accepted.Load(), time.Now()
	var took time.Duration
	b.ResetTimer()
	for range b.N {
		// As a Prometheus would, not back to back: probing goes on between.
		b.StopTimer()
		time.Sleep(300 * time.Millisecond)
		b.StartTimer()
		t0 := time.Now()
		size = get()
		took += time.Since(t0)
	}
	b.StopTimer()
	b.ReportMetric(float64(accepted.Load()-runs0)/time.Since(begin).Seconds(), "runs/s")
	b.ReportMetric(float64(size), "body-bytes")
	b.ReportMetric(float64(took.Microseconds())/1000/float64(b.N), "scrape-ms")
	b.ReportMetric(float64(served.Load())/1e6/float64(b.N), "handler-ms")
}

// BenchmarkScaleScrapeHeap measures what a scrape of 10,000 checks holds
// while it writes (issue 10): the agent's default memory limit follows the
// live heap, so a scrape that holds more raises the RSS. Every 64 KB of
// gzip output (about 1.2 MB of text) the writer collects garbage and reads
// the live heap; live-MB is the heap between scrapes, scrape-extra-MB the
// most a scrape held above it. Its times mean nothing (the collections are
// forced).
//
//	go test ./internal/agent/ -run '^$' -bench BenchmarkScaleScrapeHeap -benchtime 3x
func BenchmarkScaleScrapeHeap(b *testing.B) {
	a, h := scrapedScaleAgent(b, 10000)
	between := liveHeap()
	w := &heapSampler{header: http.Header{}}
	req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
	req.Header.Set("Accept-Encoding", "gzip")
	for range b.N {
		w.next = 0
		h.ServeHTTP(w, req)
		if w.written == 0 || w.samples == 0 {
			b.Fatal("nothing written or sampled")
		}
	}
	b.ReportMetric(float64(between)/1e6, "live-MB")
	b.ReportMetric((float64(w.peak)-float64(between))/1e6, "scrape-extra-MB")
	runtime.KeepAlive(a)
}

// heapSampler is a ResponseWriter that reads the live heap every 64 KB.
type heapSampler struct {
	header        http.Header
	written, next int
	peak          uint64
	samples       int
}

func (s *heapSampler) Header() http.Header { return s.header }
func (s *heapSampler) WriteHeader(int)     {}

func (s *heapSampler) Write(p []byte) (int, error) {
	s.written += len(p)
	if s.written >= s.next {
		s.next = s.written + 64<<10
		s.samples++
		s.peak = max(s.peak, liveHeap())
	}
	return len(p), nil
}

// scrapedScaleAgent is an agent with n TCP checks that have each run once,
// scraped once (so pools and label text exist), and its /metrics handler.
func scrapedScaleAgent(b *testing.B, n int) (*Agent, http.Handler) {
	b.Helper()
	a, err := New(Options{ConfigFile: scaleConfig(b, n)})
	if err != nil {
		b.Fatal(err)
	}
	for _, e := range a.store.Snapshot() {
		a.record(e.Check, scaleResult(e.Check))
	}
	h := a.Handler()
	scrapeOnce(b, h)
	return a, h
}

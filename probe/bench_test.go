package probe

import (
	"context"
	"testing"
	"time"
)

// Benchmarks of one probe per kind against loopback servers of this test
// binary. They measure the prober's own cost (CPU and allocations per run);
// the agent's cost around a probe is measured by internal/scheduler,
// internal/metrics and bench/sidebyside.sh.
//
//	go test ./probe/ -run '^$' -bench 'BenchmarkRun' -benchmem

// benchRun runs c b.N times and fails the benchmark on any verdict but ok, so
// a broken server cannot make a benchmark look fast.
func benchRun(b *testing.B, c *Check) {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	// As the agent runs probes: with the root pools cached per CA file.
	ctx = WithTLSRoots(ctx, NewTLSRoots())
	if rs := Run(ctx, c); len(rs) != 1 || !rs[0].Up {
		b.Fatalf("warm-up run: %+v", rs)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		rs := Run(ctx, c)
		if len(rs) != 1 || !rs[0].Up {
			b.Fatalf("run: %+v", rs)
		}
	}
}

func BenchmarkRunTCP(b *testing.B) {
	port := lbListenTCP(b, "tcp4", "127.0.0.1:0")
	benchRun(b, &Check{Name: "b", Kind: "tcp", Host: "127.0.0.1", Port: port, Network: "tcp", Timeout: 5 * time.Second})
}

// BenchmarkRunTLS is a verified TLS 1.3 handshake with an ECDSA P-256 leaf
// against a CA file, as in the side-by-side benchmark.
func BenchmarkRunTLS(b *testing.B) {
	p := lbPKI(b)
	srv := lbStartTLS(b, p.good)
	c := lbTLSCheck(srv.port, lbWriteCAFile(b, p.root))
	c.Network = "tcp"
	benchRun(b, c)
}

func BenchmarkRunUDPEcho(b *testing.B) {
	srv := udpServe(b, echoHandler)
	c := udpCheck(srv.port, UDPOptions{Payload: "echo"}, 5*time.Second)
	c.Network = "udp"
	benchRun(b, c)
}

func BenchmarkRunNTP(b *testing.B) {
	srv := ntpServe(b, ntpGood)
	c := ntpCheck(srv.port, 5*time.Second)
	c.Network = "udp"
	benchRun(b, c)
}

package probe

import (
	"context"
	"sync"
	"testing"
	"time"
)

// Under WithResolveOnce, many checks of one name ask the DNS server as one
// check does, concurrent ones included; a failing name fails them all with
// one lookup's wait.
func TestResolveOnceAsksOncePerNameAndFamily(t *testing.T) {
	dns := lbStartDNS(t)
	port := lbListenTCP(t, "tcp4", "127.0.0.1:0")
	check := func(host string) *Check {
		return &Check{Name: "t", Kind: "tcp", Host: host, Port: port, IPFamily: FamilyIPv4, DNSServer: dns.addr, Timeout: time.Second}
	}
	// What one check costs without the cache.
	Run(context.Background(), check("good.test"))
	Run(context.Background(), check("slow.test"))
	oneGood, oneSlow := dns.count("good.test.", lbTypeA), dns.count("slow.test.", lbTypeA)

	ctx := WithResolveOnce(context.Background())
	var wg sync.WaitGroup
	results := make([][]Result, 20)
	began := time.Now()
	for i := range results {
		host := "good.test"
		if i%2 == 1 {
			host = "slow.test"
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = Run(ctx, check(host))
		}()
	}
	wg.Wait()
	took := time.Since(began)
	for i, rs := range results {
		if len(rs) != 1 {
			t.Fatalf("check %d: %d results", i, len(rs))
		}
		if i%2 == 0 {
			lbExpect(t, rs[0], true, ReasonOK, PhaseConnect)
		} else {
			lbExpect(t, rs[0], false, ReasonDNS, PhaseDNS, "timed out")
		}
	}
	if got := dns.count("good.test.", lbTypeA) - oneGood; got != oneGood {
		t.Errorf("10 checks of good.test sent %d queries, one check sends %d", got, oneGood)
	}
	if got := dns.count("slow.test.", lbTypeA) - oneSlow; got != oneSlow {
		t.Errorf("10 checks of slow.test sent %d queries, one check sends %d", got, oneSlow)
	}
	// Ten 1s lookups shared one wait (a loaded machine gets generous slack).
	if took > 3*time.Second {
		t.Errorf("20 checks took %v; the failing lookup was not shared", took)
	}
	// A later check of the same name reuses the answer.
	before := dns.count("good.test.", lbTypeA)
	lbExpect(t, Run(ctx, check("good.test"))[0], true, ReasonOK, PhaseConnect)
	if dns.count("good.test.", lbTypeA) != before {
		t.Error("a later check asked again")
	}
}

// A lookup cut short by its own check's cancellation is not remembered.
func TestResolveOnceForgetsCancelledLookups(t *testing.T) {
	dns := lbStartDNS(t)
	ctx := WithResolveOnce(context.Background())
	cctx, cancel := context.WithCancel(ctx)
	time.AfterFunc(50*time.Millisecond, cancel)
	if _, err := lookupNetIP(cctx, dns.addr, "ip4", "slow.test"); err == nil {
		t.Fatal("slow.test resolved")
	}
	port := lbListenTCP(t, "tcp4", "127.0.0.1:0")
	// The server answers good.test; a cancelled slow.test must not poison
	// anything, and asking slow.test again asks the server again.
	before := dns.count("slow.test.", lbTypeA)
	lctx, lcancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer lcancel()
	lookupNetIP(lctx, dns.addr, "ip4", "slow.test")
	if dns.count("slow.test.", lbTypeA) == before {
		t.Error("a cancelled lookup was reused")
	}
	lbExpect(t, Run(ctx, &Check{Name: "t", Kind: "tcp", Host: "good.test", Port: port, IPFamily: FamilyIPv4,
		DNSServer: dns.addr, Timeout: time.Second})[0], true, ReasonOK, PhaseConnect)
}

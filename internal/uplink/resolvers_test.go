package uplink

import (
	"context"
	"net/netip"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/connprobe/connprobe/internal/gateway"
	"github.com/connprobe/connprobe/internal/results"
	"github.com/connprobe/connprobe/probe"
)

func TestParseResolvConf(t *testing.T) {
	conf := `# generated
search example.lan
nameserver 192.168.1.1
nameserver fe80::1%eth0
nameserver 9.9.9.9
nameserver 9.9.9.9
nameserver not-an-address
options edns0
nameserver
`
	got := parseResolvConf(strings.NewReader(conf))
	want := []netip.AddrPort{
		netip.MustParseAddrPort("192.168.1.1:53"), netip.MustParseAddrPort("[fe80::1]:53"), netip.MustParseAddrPort("9.9.9.9:53"),
	}
	if !slices.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
	if _, err := SystemResolvers("/nonexistent/resolv.conf"); err == nil {
		t.Error("a missing file is an error")
	}
}

func TestResolvers(t *testing.T) {
	sys := []netip.AddrPort{netip.MustParseAddrPort("9.9.9.9:53")}
	plain := &probe.Check{Name: "a", Kind: "tls", Host: "a.example"}
	own := &probe.Check{Name: "b", Kind: "tcp", Host: "b.example", DNSServer: "198.51.100.53:5353"}
	named := &probe.Check{Name: "c", Kind: "tcp", Host: "c.example", DNSServer: "dns.example:53"}
	local := &probe.Check{Name: "d", Kind: "listen", Host: "d.example"}
	rs := []probe.Result{
		{Check: plain, Reason: probe.ReasonDNS}, {Check: plain, Reason: probe.ReasonDNS},
		{Check: own, Reason: probe.ReasonDNS}, {Check: named, Reason: probe.ReasonDNS},
		{Check: local, Reason: probe.ReasonDNS},
		{Check: &probe.Check{Kind: "tcp", Host: "e.example", DNSServer: "203.0.113.53:53"}, Reason: probe.ReasonTimeout},
	}
	got := Resolvers(rs, sys)
	want := []netip.AddrPort{netip.MustParseAddrPort("9.9.9.9:53"), netip.MustParseAddrPort("198.51.100.53:5353")}
	if !slices.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
	if got := Resolvers(rs[5:], sys); got != nil {
		t.Errorf("no dns failure: %v, want none", got)
	}
}

// fakeTrace answers every resolver trace with silence after the ISP router.
func fakeTrace(calls *atomic.Int32, seen chan<- probe.Result) TraceFunc {
	return func(_ context.Context, r probe.Result) *probe.Path {
		calls.Add(1)
		if seen != nil {
			seen <- r
		}
		return silentAfter(r.Check.Host, r.Address, 2, isp4).Path
	}
}

func TestTraceResolvers(t *testing.T) {
	lan := gateway.Host{Gateways: gws, Subnets: []netip.Prefix{netip.MustParsePrefix("192.168.1.23/24")}}
	var calls atomic.Int32
	seen := make(chan probe.Result, 10)
	rs := []netip.AddrPort{
		netip.MustParseAddrPort("192.168.1.1:53"), // on the LAN: not traced
		netip.MustParseAddrPort("9.9.9.9:53"), netip.MustParseAddrPort("[2001:db8::53]:53"),
		netip.MustParseAddrPort("1.1.1.1:53"), netip.MustParseAddrPort("8.8.8.8:53"), // a fourth: not traced
	}
	ev := TraceResolvers(context.Background(), rs, lan, fakeTrace(&calls, seen))
	close(seen)
	if calls.Load() != 3 || len(ev) != 3 {
		t.Fatalf("%d traces, %d evidence, want 3 and 3", calls.Load(), len(ev))
	}
	for r := range seen {
		c := r.Check
		if c.Kind != "udp" || c.Port != 53 || c.UDP.Payload != "dns" || r.Reason != probe.ReasonNoReply || !probe.Traceable(r) {
			t.Errorf("resolver trace started from %+v (check %+v), want a traceable udp/53 DNS failure", r, c)
		}
		if (c.Host == "2001:db8::53") != (r.IPFamily == probe.FamilyIPv6) {
			t.Errorf("family %s for %s", r.IPFamily, c.Host)
		}
	}
	for _, e := range ev {
		if e.Path == nil || e.Host != e.Address {
			t.Errorf("evidence %+v", e)
		}
	}
}

func TestInferWithResolvers(t *testing.T) {
	sys := []netip.AddrPort{netip.MustParseAddrPort("9.9.9.9:53"), netip.MustParseAddrPort("1.1.1.1:53")}
	a := &probe.Check{Name: "a", Kind: "tls", Host: "a.example", Port: 443}
	b := &probe.Check{Name: "b", Kind: "tcp", Host: "b.example", Port: 22}
	rs := []probe.Result{{Check: a, Reason: probe.ReasonDNS}, {Check: b, Reason: probe.ReasonDNS}}
	var calls atomic.Int32
	v := InferWithResolvers(context.Background(), rs, host, sys, fakeTrace(&calls, nil))
	assertPlace(t, v, Verdict{State: StateDown, Location: probe.PathUpstream, Hop: 2, Address: isp4, Gateway: gw4, Destinations: 2})

	// A target answered: no resolver is traced.
	calls.Store(0)
	up := append(slices.Clone(rs), probe.Result{Check: b, Address: "203.0.113.2", IPFamily: "ipv4", Up: true, Reason: probe.ReasonOK})
	if v := InferWithResolvers(context.Background(), up, host, sys, fakeTrace(&calls, nil)); v.State != StateUp || calls.Load() != 0 {
		t.Errorf("up: %+v after %d traces, want up and none", v, calls.Load())
	}
}

func TestResolverWatch(t *testing.T) {
	var calls atomic.Int32
	now := time.Unix(10000, 0)
	w := NewResolverWatch(fakeTrace(&calls, nil), func() gateway.Host { return host }, 10*time.Minute)
	defer w.Close()
	w.now = func() time.Time { return now }
	w.sys = func() []netip.AddrPort {
		return []netip.AddrPort{netip.MustParseAddrPort("9.9.9.9:53"), netip.MustParseAddrPort("1.1.1.1:53")}
	}
	a := &probe.Check{Name: "a", Kind: "tls", Host: "a.example", Port: 443}
	b := &probe.Check{Name: "b", Kind: "tcp", Host: "b.example", Port: 22}
	all := []probe.Result{{Check: a, Reason: probe.ReasonDNS}, {Check: b, Reason: probe.ReasonDNS}}
	allf := func() []probe.Result { return all }
	wait := func() {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for !w.idle() {
			if time.Now().After(deadline) {
				t.Fatal("resolver round did not finish")
			}
			time.Sleep(5 * time.Millisecond)
		}
	}

	// A run without a dns failure starts nothing.
	w.Observe([]probe.Result{{Check: a, Reason: probe.ReasonTimeout}}, allf)
	wait()
	if calls.Load() != 0 || w.evidence() != nil {
		t.Fatalf("no dns failure: %d traces", calls.Load())
	}
	w.Observe(all[:1], allf)
	wait()
	if calls.Load() != 2 || len(w.evidence()) != 2 {
		t.Fatalf("first round: %d traces, %d evidence, want 2 and 2", calls.Load(), len(w.evidence()))
	}
	// Within the interval: no new round.
	now = now.Add(9 * time.Minute)
	w.Observe(all[1:], allf)
	wait()
	if calls.Load() != 2 {
		t.Errorf("a second round within 10 minutes: %d traces", calls.Load())
	}
	// The evidence is used by the agent's verdict while names fail.
	st := results.New()
	st.SetChecks([]*probe.Check{a, b})
	st.Put(a, all[:1])
	st.Put(b, all[1:])
	src := Source{Store: st, Host: func() gateway.Host { return host }, Resolvers: w}
	assertPlace(t, src.Verdict(), Verdict{State: StateDown, Location: probe.PathUpstream, Hop: 2, Address: isp4, Gateway: gw4, Destinations: 2})
	// Names resolve again (and fail otherwise): the resolver traces no longer count.
	st.Put(a, []probe.Result{{Check: a, Address: "203.0.113.1", IPFamily: "ipv4", Reason: probe.ReasonTimeout}})
	st.Put(b, []probe.Result{{Check: b, Address: "203.0.113.2", IPFamily: "ipv4", Reason: probe.ReasonTimeout}})
	if v := src.Verdict(); v.State != StateUnknown {
		t.Errorf("without dns failures: %+v, want unknown", v)
	}
	// Too old after 2*Every.
	now = now.Add(12 * time.Minute)
	if ev := w.evidence(); ev != nil {
		t.Errorf("evidence at 21m: %v, want none", ev)
	}
	// Closed: no more rounds.
	w.Close()
	w.Observe(all, allf)
	wait()
	if calls.Load() != 2 {
		t.Errorf("a round after Close: %d traces", calls.Load())
	}
}

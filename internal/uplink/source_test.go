package uplink

import (
	"math/rand/v2"
	"net/netip"
	"reflect"
	"testing"

	"github.com/connprobe/connprobe/internal/gateway"
	"github.com/connprobe/connprobe/internal/results"
	"github.com/connprobe/connprobe/probe"
)

// TestSourceVerdictAsInfer: the verdict a Source reads from the store (a
// first pass for answers, the evidence listed only without one) is Infer's
// over FromResults of the same results, for stores mixing answers, answers
// on link, failures placed at the gateway or upstream, failures without a
// place, silence accepted and results that are no evidence, in any order.
func TestSourceVerdictAsInfer(t *testing.T) {
	lan := gateway.Host{Gateways: gws, Subnets: []netip.Prefix{netip.MustParsePrefix("192.168.1.23/24")}}
	tcp := func(name, host string) *probe.Check {
		return &probe.Check{Name: name, Kind: "tcp", Host: host, Port: 443}
	}
	silent := &probe.Check{Name: "rtp", Kind: "udp", Host: "voip.example", Port: 10000, UDP: &probe.UDPOptions{AcceptSilence: true}}
	listen := &probe.Check{Name: "local", Kind: "listen", Host: "0.0.0.0", Port: 8080}
	asResult := func(c *probe.Check, e Evidence) probe.Result {
		return probe.Result{Check: c, Address: e.Address, IPFamily: e.Family, Up: e.Up, Reason: e.Reason, Detail: e.Detail, Path: e.Path}
	}
	kinds := []func(i int) (*probe.Check, []probe.Result){
		func(i int) (*probe.Check, []probe.Result) { // an answer from beyond the site
			c := tcp("ok", "c.example")
			return c, []probe.Result{asResult(c, ok("c.example", "203.0.113."+string(rune('1'+i%3))))}
		},
		func(int) (*probe.Check, []probe.Result) { // an answer on the LAN: no proof
			c := tcp("nas", "nas.lan")
			return c, []probe.Result{asResult(c, ok("nas.lan", "192.168.1.10"))}
		},
		func(int) (*probe.Check, []probe.Result) { // this host
			c := tcp("self", "localhost")
			return c, []probe.Result{asResult(c, ok("localhost", "127.0.0.1"))}
		},
		func(i int) (*probe.Check, []probe.Result) { // the gateway says no route
			h := "n" + string(rune('a'+i%5)) + ".example"
			c := tcp("noroute", h)
			return c, []probe.Result{asResult(c, noRoute(h, "203.0.113."+string(rune('4'+i%5)), gw4))}
		},
		func(i int) (*probe.Check, []probe.Result) { // silence after hop 2
			h := "s" + string(rune('a'+i%3)) + ".example"
			c := tcp("silent", h)
			return c, []probe.Result{asResult(c, silentAfter(h, "198.51.100."+string(rune('1'+i%3)), 2, isp4))}
		},
		func(int) (*probe.Check, []probe.Result) { // failed without a path
			c := tcp("timeout", "t.example")
			return c, []probe.Result{asResult(c, failed("t.example", "203.0.113.20", probe.ReasonTimeout))}
		},
		func(int) (*probe.Check, []probe.Result) { // up on silence: proves nothing
			return silent, []probe.Result{{Check: silent, Address: "203.0.113.9", IPFamily: "ipv4", Up: true, Reason: probe.ReasonOK}}
		},
		func(int) (*probe.Check, []probe.Result) { // no evidence at all
			return listen, []probe.Result{{Check: listen, Reason: probe.ReasonRefused}}
		},
	}
	rnd := rand.New(rand.NewPCG(3, 4))
	states := map[State]int{}
	for round := range 300 {
		st := results.New()
		var checks []*probe.Check
		var runs [][]probe.Result
		for i := range rnd.IntN(12) {
			c, rs := kinds[rnd.IntN(len(kinds))](i)
			cc := *c
			cc.Name = c.Name + string(rune('a'+i)) // one check each
			for j := range rs {
				rs[j].Check = &cc
			}
			checks, runs = append(checks, &cc), append(runs, rs)
		}
		st.SetChecks(checks)
		for i, c := range checks {
			st.Put(c, runs[i])
		}
		for _, h := range []gateway.Host{host, lan} {
			src := Source{Store: st, Host: func() gateway.Host { return h }}
			var all []probe.Result
			for _, rs := range runs {
				all = append(all, rs...)
			}
			want := Infer(FromResults(all), h)
			if got := src.Verdict(); !reflect.DeepEqual(got, want) {
				t.Fatalf("round %d: Source.Verdict\n %+v\nInfer\n %+v", round, got, want)
			}
			states[want.State]++
		}
	}
	// The rounds reach every verdict, so each path was compared.
	for _, s := range []State{StateNone, StateUp, StateDown, StateUnknown} {
		if states[s] == 0 {
			t.Errorf("no round with the verdict %q: %v", s, states)
		}
	}
}

// TestInferOnLinkAnyOrder: Infer leaves evidence on link out wherever it
// stands (first, last, between, all of it), as if it had never been there.
func TestInferOnLinkAnyOrder(t *testing.T) {
	lan := gateway.Host{Gateways: gws, Subnets: []netip.Prefix{netip.MustParsePrefix("192.168.1.23/24")}}
	off := []Evidence{noRoute("a.example", "203.0.113.1", gw4), noRoute("b.example", "203.0.113.2", gw4), failed("c.example", "", probe.ReasonDNS)}
	on := []Evidence{ok("nas.lan", "192.168.1.10"), ok("localhost", "127.0.0.1")}
	want := Infer(off, lan)
	for _, ev := range [][]Evidence{
		{on[0], off[0], off[1], off[2]},
		{off[0], off[1], off[2], on[0], on[1]},
		{off[0], on[0], off[1], on[1], off[2]},
		{on[0], on[1], off[0], off[1], off[2]},
	} {
		if got := Infer(ev, lan); !reflect.DeepEqual(got, want) {
			t.Errorf("%v:\n %+v\nwant %+v", ev, got, want)
		}
	}
	if got := Infer(on, lan); !reflect.DeepEqual(got, Infer(nil, lan)) {
		t.Errorf("only on link: %+v", got)
	}
}

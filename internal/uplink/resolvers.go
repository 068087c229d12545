package uplink

import (
	"bufio"
	"context"
	"io"
	"net/netip"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/connprobe/connprobe/internal/gateway"
	"github.com/connprobe/connprobe/probe"
)

// When names do not resolve, the checks that failed with "dns" carry no
// address and so no path; but in an office DNS goes upstream too. The
// resolvers they asked are traced instead, with UDP to the resolver's port
// (53) and a real DNS query as payload, and count as destinations.

// ResolvConf lists the system's resolvers.
const ResolvConf = "/etc/resolv.conf"

// maxResolvers is how many resolvers are traced at most (the C library asks
// no more than three either).
const maxResolvers = 3

// resolvConfLimit bounds how much of resolv.conf is read.
const resolvConfLimit = 64 << 10

// SystemResolvers reads the nameserver lines of a resolv.conf file.
func SystemResolvers(path string) ([]netip.AddrPort, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return parseResolvConf(io.LimitReader(f, resolvConfLimit)), nil
}

func parseResolvConf(r io.Reader) []netip.AddrPort {
	var out []netip.AddrPort
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 2 || f[0] != "nameserver" {
			continue
		}
		a, err := netip.ParseAddr(f[1])
		if err != nil {
			continue
		}
		out = appendUnique(out, netip.AddrPortFrom(a.WithZone(""), 53))
	}
	return out
}

// Resolvers lists the resolvers the outbound checks that failed with "dns"
// asked: a check's own DNS server, else the system's (sys). Nil when no
// such check failed.
func Resolvers(rs []probe.Result, sys []netip.AddrPort) []netip.AddrPort {
	var out []netip.AddrPort
	for _, r := range rs {
		c := r.Check
		if c == nil || r.Reason != probe.ReasonDNS {
			continue
		}
		if spec, err := probe.LookupKind(c.Kind); err != nil || !spec.Outbound() {
			continue
		}
		if c.DNSServer == "" {
			for _, s := range sys {
				out = appendUnique(out, s)
			}
		} else if ap, err := netip.ParseAddrPort(c.DNSServer); err == nil {
			out = appendUnique(out, netip.AddrPortFrom(ap.Addr().WithZone(""), ap.Port()))
		}
	}
	return out
}

func appendUnique(s []netip.AddrPort, a netip.AddrPort) []netip.AddrPort {
	for _, have := range s {
		if have == a {
			return s
		}
	}
	return append(s, a)
}

// TraceFunc traces the path of a failed result; probe.Trace fits.
type TraceFunc func(ctx context.Context, r probe.Result) *probe.Path

// TraceResolvers traces towards at most three resolvers not on this host's
// own subnets (a resolver on the LAN, such as the router, says nothing of
// the line), side by side, each trace bounded by the tracer, and returns
// what the traces found as evidence. A trace that found nothing is left out.
func TraceResolvers(ctx context.Context, resolvers []netip.AddrPort, host gateway.Host, trace TraceFunc) []Evidence {
	var todo []netip.AddrPort
	for _, r := range resolvers {
		if len(todo) < maxResolvers && !host.OnLink(r.Addr().String()) {
			todo = append(todo, r)
		}
	}
	out := make([]*Evidence, len(todo))
	var wg sync.WaitGroup
	for i, r := range todo {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res := resolverResult(r)
			if p := trace(ctx, res); p != nil {
				out[i] = &Evidence{Host: res.Check.Host, Address: res.Address, Family: res.IPFamily,
					Reason: res.Reason, Detail: res.Detail, Path: p}
			}
		}()
	}
	wg.Wait()
	var ev []Evidence
	for _, e := range out {
		if e != nil {
			ev = append(ev, *e)
		}
	}
	return ev
}

// resolverResult is the failed DNS exchange with a resolver that a trace
// starts from: a udp check to the resolver's port with a DNS query.
func resolverResult(r netip.AddrPort) probe.Result {
	a := r.Addr()
	family := probe.FamilyIPv4
	if a.Is6() && !a.Is4In6() {
		family = probe.FamilyIPv6
	}
	c := &probe.Check{
		Name: "resolver " + r.String(), Kind: "udp", Host: a.String(), Port: int(r.Port()), Network: "udp",
		IPFamily: family, Timeout: 5 * time.Second, UDP: &probe.UDPOptions{Payload: "dns", Query: "."},
	}
	return probe.Result{Check: c, Address: a.Unmap().String(), IPFamily: family, Reason: probe.ReasonNoReply,
		Phase: probe.PhaseResponse, Detail: "names did not resolve; the resolver is traced instead"}
}

// InferWithResolvers is Infer for a one-shot run: when the verdict is not
// "up" and names did not resolve, the resolvers are traced (see
// TraceResolvers) and count as destinations.
func InferWithResolvers(ctx context.Context, rs []probe.Result, host gateway.Host, sys []netip.AddrPort, trace TraceFunc) Verdict {
	ev := FromResults(rs)
	v := Infer(ev, host)
	if v.State == StateUp || v.State == StateNone || trace == nil {
		return v
	}
	resolvers := Resolvers(rs, sys)
	if len(resolvers) == 0 {
		return v
	}
	return Infer(append(ev, TraceResolvers(ctx, resolvers, host, trace)...), host)
}

// ResolverWatch traces the resolvers for the agent, in the background and
// rarely: when a stored result failed with "dns", no outbound check answers,
// and the last round is at least Every old. Its evidence is used while names
// still fail to resolve and for at most 2*Every. Safe for concurrent use.
type ResolverWatch struct {
	trace TraceFunc
	host  func() gateway.Host
	sys   func() []netip.AddrPort
	every time.Duration
	now   func() time.Time

	ctx    context.Context
	cancel context.CancelFunc

	mu      sync.Mutex
	running bool
	started time.Time // of the last round
	ev      []Evidence
	at      time.Time // when ev was traced
}

// NewResolverWatch returns a watch that traces with trace (probe.Trace)
// at most once per every, reading the system resolvers from ResolvConf.
func NewResolverWatch(trace TraceFunc, host func() gateway.Host, every time.Duration) *ResolverWatch {
	ctx, cancel := context.WithCancel(context.Background())
	return &ResolverWatch{
		trace: trace, host: host, every: every, now: time.Now, ctx: ctx, cancel: cancel,
		sys: func() []netip.AddrPort { s, _ := SystemResolvers(ResolvConf); return s },
	}
}

// Close stops a round under way and any later one.
func (w *ResolverWatch) Close() { w.cancel() }

// Observe is called with the results of one run; when they hold a "dns"
// failure it may start a round over all results (all returns them).
func (w *ResolverWatch) Observe(rs []probe.Result, all func() []probe.Result) {
	if !slices.ContainsFunc(rs, func(r probe.Result) bool { return r.Reason == probe.ReasonDNS }) {
		return
	}
	w.mu.Lock()
	if w.running || w.ctx.Err() != nil || (!w.started.IsZero() && w.now().Sub(w.started) < w.every) {
		w.mu.Unlock()
		return
	}
	w.running, w.started = true, w.now()
	w.mu.Unlock()
	go func() {
		results := all()
		host := w.host()
		var ev []Evidence
		if v := Infer(FromResults(results), host); v.State != StateUp {
			ev = TraceResolvers(w.ctx, Resolvers(results, w.sys()), host, w.trace)
		}
		w.mu.Lock()
		defer w.mu.Unlock()
		w.running, w.ev, w.at = false, ev, w.now()
	}()
}

// evidence is what the last round found, while it is recent.
func (w *ResolverWatch) evidence() []Evidence {
	if w == nil {
		return nil
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.at.IsZero() || w.now().Sub(w.at) > 2*w.every {
		return nil
	}
	return slices.Clone(w.ev)
}

// idle reports whether no round is under way (for tests).
func (w *ResolverWatch) idle() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return !w.running
}

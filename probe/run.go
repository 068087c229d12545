package probe

import (
	"context"
	"errors"
	"fmt"
	"net"
	"runtime/debug"
	"sync"
	"time"
)

// Run resolves the check's host and probes each selected address family once,
// concurrently, within the check's timeout. It returns one Result per family;
// a name that does not resolve yields one "dns" result per requested family.
func Run(ctx context.Context, c *Check) []Result {
	start := time.Now()
	spec, err := LookupKind(c.Kind)
	if err != nil {
		return []Result{{Check: c, Reason: ReasonInternalError, Detail: err.Error(), Start: start, Duration: time.Since(start)}}
	}
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	targets, failed := resolve(ctx, c)
	if failed != nil {
		took := time.Since(start)
		for i := range failed {
			failed[i].Start = start
			failed[i].Duration = took
			failed[i].addTiming(PhaseDNS, took)
		}
		return failed
	}
	dnsTime := time.Since(start)

	if len(targets) == 1 {
		// One family (the usual case): no goroutine to hand it to.
		return []Result{runOne(ctx, spec, targets[0], start, dnsTime)}
	}
	results := make([]Result, len(targets))
	var wg sync.WaitGroup
	for i, t := range targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = runOne(ctx, spec, t, start, dnsTime)
		}()
	}
	wg.Wait()
	return results
}

func runOne(ctx context.Context, spec KindSpec, t Target, start time.Time, dnsTime time.Duration) (r Result) {
	defer func() {
		// A prober bug must cost one result, not the agent.
		if p := recover(); p != nil {
			r = newResult(t)
			r.Reason = ReasonInternalError
			r.Detail = fmt.Sprintf("internal error in %s prober: %v\n%s", spec.Name, p, debug.Stack())
		}
		r.Start = start
		r.Duration = time.Since(start)
	}()
	r = spec.Prober(ctx, t)
	if !isIPLiteral(t.Check.Host) && t.Addr != nil { // through a proxy, nothing was resolved here
		r.Timings = append([]Timing{{Phase: PhaseDNS, Duration: dnsTime, Seconds: dnsTime.Seconds()}}, r.Timings...)
	}
	return r
}

func newResult(t Target) Result {
	if t.Addr == nil {
		return Result{Check: t.Check, Address: viaProxyAddress(t.Check), IPFamily: t.Family}
	}
	return Result{Check: t.Check, Address: t.Addr.String(), IPFamily: t.Family}
}

// fail fills a failed result from err in phase.
func fail(r *Result, phase Phase, err error, target net.IP) Result {
	r.Up = false
	r.Phase = phase
	r.Reason, r.Detail = classify(err, phase, target)
	return *r
}

func isIPLiteral(host string) bool { return net.ParseIP(host) != nil }

func familyOf(ip net.IP) string {
	if ip.To4() != nil {
		return FamilyIPv4
	}
	return FamilyIPv6
}

// resolve returns the addresses to probe: the first address of each requested
// family. With "both", a family this host has no global address for is not
// probed (it cannot route it), unless it is the only family the name has.
func resolve(ctx context.Context, c *Check) ([]Target, []Result) {
	want := c.IPFamily
	if want == "" {
		want = FamilyBoth
	}
	// Through a proxy the proxy resolves the name (see proxy.go); an invalid
	// proxy setting also takes this path, for dialTCP to report it.
	if pu, err := proxyFor(c); pu != nil || err != nil {
		return []Target{{Check: c, Family: FamilyProxy}}, nil
	}
	if ip := net.ParseIP(c.Host); ip != nil {
		return []Target{{Check: c, Addr: ip, Family: familyOf(ip)}}, nil
	}

	network := "ip"
	switch want {
	case FamilyIPv4:
		network = "ip4"
	case FamilyIPv6:
		network = "ip6"
	}
	addrs, err := lookupNetIP(ctx, c.DNSServer, network, c.Host)
	if err != nil {
		if network != "ip" && onlyOtherFamily(ctx, c.DNSServer, c.Host, err) {
			err = &net.DNSError{Err: errNoFamilyAddress, Name: c.Host, IsNotFound: true}
		}
		return nil, dnsFailure(c, want, err)
	}
	var first4, first6 net.IP
	for _, a := range addrs {
		ip := net.IP(a.Unmap().AsSlice())
		if ip.To4() != nil && first4 == nil {
			first4 = ip
		} else if ip.To4() == nil && first6 == nil {
			first6 = ip
		}
	}
	var targets []Target
	if first4 != nil && want != FamilyIPv6 {
		targets = append(targets, Target{Check: c, Addr: first4, Family: FamilyIPv4})
	}
	if first6 != nil && want != FamilyIPv4 {
		if want == FamilyIPv6 || first4 == nil || hostHasGlobalIPv6() {
			targets = append(targets, Target{Check: c, Addr: first6, Family: FamilyIPv6})
		}
	}
	if len(targets) == 0 {
		return nil, dnsFailure(c, want, &net.DNSError{Err: errNoFamilyAddress, Name: c.Host, IsNotFound: true})
	}
	return targets, nil
}

// errNoFamilyAddress is the DNSError text for a name that has addresses, but
// none of the requested family.
const errNoFamilyAddress = "no address of the requested family"

// onlyOtherFamily reports whether a one-family lookup failed only because the
// name has addresses of the other family: the resolver says so with a
// net.AddrError (hosts file) or as "no such host" (DNS, empty answer).
func onlyOtherFamily(ctx context.Context, server, host string, err error) bool {
	var ae *net.AddrError
	if errors.As(err, &ae) {
		return true
	}
	var de *net.DNSError
	if !errors.As(err, &de) || !de.IsNotFound {
		return false
	}
	addrs, err := lookupNetIP(ctx, server, "ip", host)
	return err == nil && len(addrs) > 0
}

func dnsFailure(c *Check, want string, err error) []Result {
	families := []string{want}
	if want == FamilyBoth {
		families = []string{FamilyIPv4}
		if hostHasGlobalIPv6() {
			families = append(families, FamilyIPv6)
		}
	}
	out := make([]Result, 0, len(families))
	for _, f := range families {
		r := Result{Check: c, IPFamily: f, Phase: PhaseDNS}
		r.Reason, r.Detail = classify(err, PhaseDNS, nil)
		out = append(out, r)
	}
	return out
}

func hostHasGlobalIPv6() bool {
	for _, ip := range hostAddrs() {
		// Unique-local addresses count: an office may route fd00::/8 internally.
		if ip.To4() == nil && ip.IsGlobalUnicast() {
			return true
		}
	}
	return false
}

// newResolver returns the system resolver, or one that asks server (host:port).
func newResolver(server string) *net.Resolver {
	if server == "" {
		return net.DefaultResolver
	}
	return &net.Resolver{
		PreferGo: true,
		Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, server)
		},
	}
}

package uplink

import (
	"errors"
	"slices"

	"github.com/connprobe/connprobe/internal/gateway"
	"github.com/connprobe/connprobe/internal/results"
	"github.com/connprobe/connprobe/probe"
)

// Source computes the agent's verdict from the results store: the last
// results of every configured check, and this host's gateways.
type Source struct {
	Store *results.Store
	// Host reads this host's gateways and subnets; gateway.Cache.Get fits.
	// Nil: not known.
	Host func() gateway.Host
	// Resolvers adds the traces towards the resolvers while names do not
	// resolve; nil: none.
	Resolvers *ResolverWatch
}

// Verdict is the uplink verdict from what the store holds now. It sends
// nothing: a scrape or a status page view may call it.
func (s Source) Verdict() Verdict {
	host := gateway.Host{Err: errNoReader}
	if s.Host != nil {
		host = s.Host()
	}
	// Straight from the store's results: a copy of every result first, and
	// then of every entry, were most of a scrape's garbage at 10,000 checks
	// (issue 10).
	ev := make([]Evidence, 0, s.Store.Len())
	s.Store.EachResult(func(r *probe.Result) { ev = appendEvidence(ev, r) })
	if slices.ContainsFunc(ev, func(e Evidence) bool { return e.Reason == probe.ReasonDNS }) {
		ev = append(ev, s.Resolvers.evidence()...)
	}
	return Infer(ev, host)
}

// Results are the last results of every check in the store.
func (s Source) Results() []probe.Result {
	entries := s.Store.Latest()
	rs := make([]probe.Result, 0, len(entries)) // most checks have one result
	for _, e := range entries {
		rs = append(rs, e.Results...)
	}
	return rs
}

var errNoReader = errors.New("this host's gateways are not read")

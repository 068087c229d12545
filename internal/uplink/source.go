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
	// Straight from the store's results, without a list of every result's
	// evidence while some destination answers (the verdict is then up on
	// their number alone, whatever else failed) or there is no evidence
	// off link: at 10,000 checks, such lists were 1 to 2 MB of garbage per
	// scrape (issue 10). Only when neither holds is the evidence listed,
	// from a second reading of the store, as Infer needs it.
	var answered map[string]bool
	offLink := 0
	s.Store.EachResult(func(r *probe.Result) {
		e, ok := offLinkEvidence(r, host)
		if !ok {
			return
		}
		offLink++
		if e.Answered {
			if answered == nil {
				answered = map[string]bool{}
			}
			answered[destKey(e)] = true
		}
	})
	switch {
	case len(answered) > 0:
		return upVerdict(hostVerdict(host), len(answered))
	case offLink == 0:
		return hostVerdict(host) // as Infer without evidence
	}
	var ev []Evidence
	n := s.Store.Len()
	s.Store.EachResult(func(r *probe.Result) {
		if e, ok := offLinkEvidence(r, host); ok {
			if ev == nil {
				ev = make([]Evidence, 0, n) // most checks have one result
			}
			ev = append(ev, e)
		}
	})
	if slices.ContainsFunc(ev, func(e Evidence) bool { return e.Reason == probe.ReasonDNS }) {
		ev = append(ev, s.Resolvers.evidence()...)
	}
	return Infer(ev, host)
}

// offLinkEvidence is the evidence of r unless it is none or on link. The
// address is looked at first: a result on link is then left without
// reading its check (two reads of memory apart from the result's, for each
// of 10,000 results at every scrape).
func offLinkEvidence(r *probe.Result, host gateway.Host) (Evidence, bool) {
	if r.Address != "" && host.OnLink(r.Address) {
		return Evidence{}, false
	}
	return evidenceOf(r)
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

package uplink

import (
	"errors"

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
}

// Verdict is the uplink verdict from what the store holds now. It sends
// nothing: a scrape or a status page view may call it.
func (s Source) Verdict() Verdict {
	var rs []probe.Result
	for _, e := range s.Store.Snapshot() {
		rs = append(rs, e.Results...)
	}
	host := gateway.Host{Err: errNoReader}
	if s.Host != nil {
		host = s.Host()
	}
	return Infer(FromResults(rs), host)
}

var errNoReader = errors.New("this host's gateways are not read")

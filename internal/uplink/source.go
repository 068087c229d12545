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
	// Gateways reads this host's default gateways; gateway.Cache.Get fits.
	// Nil: not known.
	Gateways func() ([]gateway.Gateway, error)
}

// Verdict is the uplink verdict from what the store holds now. It sends
// nothing: a scrape or a status page view may call it.
func (s Source) Verdict() Verdict {
	var rs []probe.Result
	for _, e := range s.Store.Snapshot() {
		rs = append(rs, e.Results...)
	}
	gws, err := []gateway.Gateway(nil), errNoReader
	if s.Gateways != nil {
		gws, err = s.Gateways()
	}
	return Infer(FromResults(rs), gws, err)
}

var errNoReader = errors.New("this host's gateways are not read")

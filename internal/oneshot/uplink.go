package oneshot

import (
	"context"

	"github.com/connprobe/connprobe/internal/gateway"
	"github.com/connprobe/connprobe/internal/uplink"
	"github.com/connprobe/connprobe/probe"
)

// JSONUplink is the top-level "uplink" object of `probe check -o json`: the
// site-wide verdict. The field names are a public interface: extend, never
// rename.
type JSONUplink struct {
	// Up is true when a target answered, false when the uplink is down, and
	// null when the failures point at no single place (state "unknown").
	Up    *bool  `json:"up"`
	State string `json:"state"` // up, down or unknown
	// Where every failing destination stops; only when down.
	Location string  `json:"location,omitempty"`
	Hop      *int    `json:"hop,omitempty"`
	Address  *string `json:"address,omitempty"`
	// Gateway is this host's default gateway (IPv4 first); empty when none
	// is known.
	Gateway      string        `json:"gateway"`
	Detail       string        `json:"detail"`
	Gateways     []JSONGateway `json:"gateways"`
	GatewayError string        `json:"gateway_error,omitempty"`
}

// JSONGateway is one default gateway of this host.
type JSONGateway struct {
	Family    string `json:"family"`
	Address   string `json:"address"`
	Interface string `json:"interface"`
	// Neighbour is its ARP/NDP state: reachable, stale, incomplete, failed,
	// static or none.
	Neighbour string `json:"neighbour"`
}

// Uplink is the uplink verdict of a one-shot run: the results, this host's
// gateways as the routing table has them now, and, when names did not
// resolve and nothing answered, traces towards the resolvers.
func Uplink(ctx context.Context, results []probe.Result) uplink.Verdict {
	sys, _ := uplink.SystemResolvers(uplink.ResolvConf) // none when unreadable: nothing to trace
	return uplink.InferWithResolvers(ctx, results, gateway.ReadHost(), sys, probe.Trace)
}

// UplinkJSON is the public form of v; nil (JSON null) when there is no
// verdict at all (no outbound check ran).
func UplinkJSON(v uplink.Verdict) *JSONUplink {
	if v.State == uplink.StateNone {
		return nil
	}
	j := &JSONUplink{State: string(v.State), Gateway: v.Gateway, Detail: v.Detail,
		Gateways: []JSONGateway{}, GatewayError: v.GatewayErr}
	switch v.State {
	case uplink.StateUp:
		up := true
		j.Up = &up
	case uplink.StateDown:
		up, hop, addr := false, v.Hop, v.Address
		j.Up, j.Location, j.Hop, j.Address = &up, string(v.Location), &hop, &addr
	}
	for _, g := range v.Gateways {
		j.Gateways = append(j.Gateways, JSONGateway{Family: g.Family, Address: g.Address, Interface: g.Interface, Neighbour: string(g.Neighbour)})
	}
	return j
}

// uplinkLine is the table's line while the uplink is down ("" otherwise),
// one line whatever the detail holds. It says where the failing rows are:
// below it, or above it when the rows were streamed before the verdict was
// known.
func uplinkLine(v uplink.Verdict, rowsAbove bool) string {
	line := v.Line()
	if line == "" {
		return ""
	}
	if rowsAbove {
		line = "uplink down: " + v.Detail + "; the failures above are not port blocks"
	}
	return oneLine(line, 400)
}

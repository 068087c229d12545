package probe

// PathLocation says where on the way to its target a failing check's traffic
// stopped. It is a public interface (JSON "location", metric label values):
// extend, never rename.
type PathLocation string

// The fixed location vocabulary (README, "Where is it blocked").
const (
	// PathThisHost: the traffic never left this host (its own firewall
	// dropped or rejected it). Hop 0.
	PathThisHost PathLocation = "this_host"
	// PathGateway: the first hop, this LAN's router or firewall, rejected the
	// traffic, or answered TTL probes while nothing beyond it did. Hop 1.
	PathGateway PathLocation = "gateway"
	// PathUpstream: a device after the gateway rejected the traffic or was
	// the last that answered (the ISP, a transit network, the target's side).
	PathUpstream PathLocation = "upstream"
	// PathUnknown: no hop answered and nothing rejected; the location is not
	// guessed.
	PathUnknown PathLocation = "unknown"
)

// PathLocations lists every location in a stable order.
func PathLocations() []PathLocation {
	return []PathLocation{PathThisHost, PathGateway, PathUpstream, PathUnknown}
}

// Path is where a failing check's traffic stopped, traced with the check's
// own transport and destination port. Only a failed result whose reason can
// hide a location (timeout, no_reply, rejected, unreachable) carries one.
type Path struct {
	Location PathLocation `json:"location"`
	// Hop is the position of the device that stopped the traffic (a rejecting
	// device) or, for a silent drop, of the last device that answered; 0 for
	// this host.
	Hop int `json:"hop"`
	// Address is that device's address; empty when none answered.
	Address string `json:"address"`
	// Hops is what each TTL (hop limit) saw, in order from 1.
	Hops []PathHop `json:"hops"`
	// Rejected is set when the device at Hop (or this host) rejected the
	// traffic (an ICMP destination unreachable, or a refusal to send); unset
	// for a silent drop after Hop.
	Rejected bool `json:"rejected,omitempty"`
	// Control says what the control probe saw, when one was sent (a TCP
	// trace that no router answered: a TTL-1 UDP datagram to the same
	// address and port number tells this host's silent drop of the SYNs
	// from routers that send no time exceeded).
	Control string `json:"control,omitempty"`
	// Reached is set when the target itself answered the trace (the port
	// was open to the trace's own packets): nothing on the path blocked it
	// then, so the location is unknown.
	Reached bool `json:"reached,omitempty"`
	// Probes is how many packets the trace sent: one per try (a TCP SYN or
	// a UDP datagram), the control probe and any Retransmits included.
	Probes int `json:"probes"`
	// Retransmits is how many TCP SYNs the kernel sent again because this
	// host stalled past TCP's 1s initial timeout during a probe; normally 0.
	Retransmits int `json:"retransmits,omitempty"`
	// DurationSeconds is how long the trace took.
	DurationSeconds float64 `json:"duration_seconds"`
}

// PathHop is what one TTL of a trace saw.
type PathHop struct {
	Hop     int    `json:"hop"`
	Address string `json:"address"` // the device that answered; empty: silence
	// RTTSeconds is the time to that device's answer; 0 when silent.
	RTTSeconds float64 `json:"rtt_seconds,omitempty"`
	// ICMP names what the device answered ("time exceeded",
	// "admin prohibited", ...); empty when silent.
	ICMP string `json:"icmp,omitempty"`
}

package probe

import (
	"context"
	"fmt"
	"net"
	"strings"
	"time"
)

// The broadcast kind listens, passively, for UDP broadcast and multicast
// datagrams on a port (timeSensor server announcements on 19813, Kaspersky
// agents' broadcasts on 15000) and counts them. It never sends anything.
//
// Observation window: the check's timeout. The prober listens until the
// context deadline, so a check meant to catch announcements sent every few
// minutes needs a timeout just below its interval (e.g. interval 5m, timeout
// 4m); the default 5s timeout only catches frequent announcements.
//
// The host field names the expected sender: 0.0.0.0 (or ::) counts
// broadcasts from anyone; an address (or a name resolving to one) counts only
// that sender's and reports the others separately. Its family picks IPv4
// (broadcast and multicast) or IPv6 (multicast only: IPv6 has no broadcast).
//
// How it listens, without taking datagrams from a vendor process:
//
//   - bind: a UDP socket bound to the free port without SO_REUSEADDR or
//     SO_REUSEPORT. What it receives has passed this host's firewall. While
//     it holds the port the kernel sends no ICMP port unreachable for
//     unicast datagrams to it; they are counted and dropped, never answered.
//     A vendor process starting or restarting during the window cannot bind
//     the port until the window ends.
//   - packet: sharing a taken port is not an option: with SO_REUSEPORT the
//     kernel hands each unicast datagram to one socket only, so a second
//     socket would steal some. A packet socket (AF_PACKET, needs
//     CAP_NET_RAW) with a BPF filter for the port sees copies of the frames
//     instead and leaves the originals, and the port, to whoever binds it.
//     It sees them as they arrive, before this host's firewall, so it proves
//     that announcements reach the host, not that the firewall lets them
//     through to the port. On a bridge a datagram may be counted once per
//     interface it crosses.
//
// Check.Broadcast.Mode chooses: BroadcastPacket never binds (the safe
// choice where the vendor's service runs: it may restart at any time);
// BroadcastBind never falls back (error when the port is taken, naming the
// holder); BroadcastAuto (the default) binds when the port is free and
// watches with a packet socket when it is taken, so it may hold a free port
// for the whole window.
//
// Verdicts: ok with at least one broadcast or multicast datagram from the
// expected sender in the window; no_reply without (silence proves only that
// nothing was seen: announcements may be disabled or dropped anywhere on the
// way); error when the chosen mode cannot run (the detail names who holds
// the port or the missing capability).

// Broadcast modes (Check.Broadcast.Mode); empty means BroadcastAuto.
const (
	BroadcastAuto   = "auto"
	BroadcastBind   = "bind"
	BroadcastPacket = "packet"
)

// BroadcastModes lists the modes, the default first.
func BroadcastModes() []string { return []string{BroadcastAuto, BroadcastBind, BroadcastPacket} }

// BroadcastFacts are what a broadcast check saw in its window.
type BroadcastFacts struct {
	// Mode is how it listened: "bind" (its own socket on the free port) or
	// "packet" (a packet socket: mode packet, or mode auto with the port
	// taken); empty when it could not listen.
	Mode string `json:"mode"`
	// Datagrams counts broadcast and multicast datagrams from the expected
	// sender (from anyone when the host is a wildcard).
	Datagrams int `json:"datagrams"`
	// Senders lists the distinct sources of broadcast and multicast
	// datagrams seen, expected or not, the first maxBroadcastSenders.
	Senders []string `json:"senders"`
	// OtherSenderDatagrams counts broadcasts and multicasts from senders
	// other than the expected one.
	OtherSenderDatagrams int `json:"other_sender_datagrams,omitempty"`
	// Unicast counts datagrams addressed to this host alone: not
	// announcements, and never answered.
	Unicast int `json:"unicast_datagrams"`
	// PortHolder names who holds the port when the check could not bind it.
	PortHolder    string  `json:"port_holder,omitempty"`
	WindowSeconds float64 `json:"window_seconds"`
}

// maxBroadcastSenders bounds the senders a result lists.
const maxBroadcastSenders = 8

// broadcastRead bounds what is read of one datagram: only its addresses are
// used, and payloads are never stored.
const broadcastRead = 2048

// defaultBroadcastWindow applies only when a caller passes a context without
// deadline (Run always sets one from the timeout).
const defaultBroadcastWindow = 5 * time.Second

// broadcastCount accumulates one window's observations in bounded memory.
type broadcastCount struct {
	want  net.IP // nil: any sender
	bcast []net.IP
	facts *BroadcastFacts
}

func newBroadcastCount(want net.IP, bcast []net.IP) *broadcastCount {
	if want.IsUnspecified() {
		want = nil
	}
	return &broadcastCount{want: want, bcast: bcast, facts: &BroadcastFacts{Senders: []string{}}}
}

// add records one datagram from src to dst; linkBroadcast is set when the
// link layer already says it was broadcast or multicast.
func (c *broadcastCount) add(src, dst net.IP, linkBroadcast bool) {
	if !linkBroadcast && !isBroadcastDst(dst, c.bcast) {
		c.facts.Unicast++
		return
	}
	if c.want == nil || c.want.Equal(src) {
		c.facts.Datagrams++
	} else {
		c.facts.OtherSenderDatagrams++
	}
	s := src.String()
	if len(c.facts.Senders) < maxBroadcastSenders && !containsString(c.facts.Senders, s) {
		c.facts.Senders = append(c.facts.Senders, s)
	}
}

func containsString(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

// isBroadcastDst reports a destination that reaches more than one host:
// multicast, the limited broadcast, or a directed broadcast of one of this
// host's subnets (bcast).
func isBroadcastDst(dst net.IP, bcast []net.IP) bool {
	if dst == nil {
		return false // unknown: not proven to be an announcement
	}
	return dst.IsMulticast() || dst.Equal(net.IPv4bcast) || containsIP(bcast, dst)
}

// subnetBroadcasts lists the directed broadcast address of each of this
// host's IPv4 subnets (10.0.0.255 for 10.0.0.5/24).
func subnetBroadcasts() []net.IP {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil
	}
	var out []net.IP
	for _, a := range addrs {
		n, ok := a.(*net.IPNet)
		if !ok {
			continue
		}
		ip4, ones, bits := n.IP.To4(), 0, 0
		ones, bits = n.Mask.Size()
		if ip4 == nil || bits != 32 || ones >= 31 {
			continue // /31 and /32 have no broadcast address
		}
		b := make(net.IP, 4)
		for i := range b {
			b[i] = ip4[i] | ^n.Mask[len(n.Mask)-4+i]
		}
		out = append(out, b)
	}
	return out
}

func probeBroadcast(ctx context.Context, t Target) Result {
	r := newResult(t)
	r.Phase = PhaseResponse
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, defaultBroadcastWindow)
		defer cancel()
	}
	switch t.Check.GetBroadcast().Mode {
	case "", BroadcastAuto, BroadcastBind, BroadcastPacket:
	default:
		r.Reason = ReasonInternalError
		r.Detail = fmt.Sprintf("broadcast mode %q is not one of %s", t.Check.GetBroadcast().Mode, strings.Join(BroadcastModes(), ", "))
		return r
	}
	begin := time.Now()
	c := newBroadcastCount(t.Addr, subnetBroadcasts())
	err := watchBroadcast(ctx, t, c)
	window := time.Since(begin)
	r.addTiming(PhaseResponse, window)
	c.facts.WindowSeconds = window.Seconds()
	r.Facts.BroadcastFacts = c.facts
	if err != nil {
		r.Reason, r.Detail = ReasonInternalError, err.Error()
		return r
	}
	f := c.facts
	label := fmt.Sprintf("udp/%d", t.Check.Port)
	w := window.Round(time.Second)
	if window < 10*time.Second {
		w = window.Round(100 * time.Millisecond)
	}
	how := "received on a socket bound to the port, so they passed this host's firewall"
	if f.Mode == "packet" {
		why := "with mode: packet, leaving the port free"
		if f.PortHolder != "" {
			why = "because " + f.PortHolder + " holds the port"
		}
		how = "seen by a packet socket " + why + ": they reach this host, " +
			"but its firewall may still drop them before the port"
	}
	if f.Datagrams > 0 {
		r.Up, r.Reason = true, ReasonOK
		r.Detail = fmt.Sprintf("%d broadcast/multicast datagrams on %s in %s from %s (%s)",
			f.Datagrams, label, w, strings.Join(f.Senders, ", "), how)
		return r
	}
	r.Reason = ReasonNoReply
	r.Detail = fmt.Sprintf("no broadcast on %s in %s", label, w)
	if c.want != nil {
		r.Detail = fmt.Sprintf("no broadcast from %s on %s in %s", c.want, label, w)
		if f.OtherSenderDatagrams > 0 {
			r.Detail += fmt.Sprintf("; %d came from other senders (%s)", f.OtherSenderDatagrams, strings.Join(f.Senders, ", "))
		}
	}
	if f.Unicast > 0 {
		r.Detail += fmt.Sprintf("; %d unicast datagrams arrived (not announcements)", f.Unicast)
	}
	r.Detail += ": nothing was announced in the window, or it was dropped on the way" // silence proves no more
	if f.Mode == "bind" {
		r.Detail += " or by this host's firewall"
	}
	return r
}

package scheduler

import (
	"context"
	"sync"
	"time"

	"github.com/connprobe/connprobe/probe"
)

// pacer spaces probe starts per lane (transport and host). A probe waits for
// its lane's pacing first and only then for a global probe slot: a slot is
// never held while waiting for a host (a 1s UDP pacing towards one host must
// not stall the checks of other hosts).
type pacer struct {
	mu    sync.Mutex
	lanes map[string]*lane
}

// lane is the pacing state of one transport and host.
type lane struct {
	// turn is held from the start of a probe's pacing wait until the probe
	// has its slot and its start is recorded, so the probes of one lane
	// start one after the other, each spaced from the previous real start.
	turn chan struct{}

	// Guarded by pacer.mu.
	last    time.Time     // start of the latest probe that may have sent a packet
	spacing time.Duration // the spacing last used, for pruning
	moved   chan struct{} // closed (and replaced) when last moves back
	users   int           // goroutines holding or waiting for turn
}

// booking is one recorded probe start, so that a probe that sent nothing
// can give its pacing back.
type booking struct {
	l        *lane
	at, prev time.Time
}

func newPacer() *pacer {
	return &pacer{lanes: map[string]*lane{}}
}

// laneOf is the pacing lane of c: UDP and TCP are paced separately because
// only UDP verdicts depend on the remote ICMP rate limit.
func laneOf(c *probe.Check) string {
	if c.Network == probe.NetworkUDP {
		return "udp " + c.Host
	}
	return "tcp " + c.Host
}

func (p *pacer) enter(key string) *lane {
	p.mu.Lock()
	defer p.mu.Unlock()
	l := p.lanes[key]
	if l == nil {
		l = &lane{turn: make(chan struct{}, 1), moved: make(chan struct{})}
		p.lanes[key] = l
	}
	l.users++
	return l
}

func (p *pacer) leave(l *lane) {
	p.mu.Lock()
	l.users--
	p.mu.Unlock()
}

// acquire waits for key's pacing and then takes a slot from sem. It returns
// the booking of the start and true holding the slot, or false holding
// nothing when ctx ends first.
func (p *pacer) acquire(ctx context.Context, key string, spacing time.Duration, sem chan struct{}) (booking, bool) {
	l := p.enter(key)
	defer p.leave(l)
	select {
	case l.turn <- struct{}{}:
	case <-ctx.Done():
		return booking{}, false
	}
	defer func() { <-l.turn }()
	for {
		p.mu.Lock()
		wait := time.Time{}
		if !l.last.IsZero() {
			wait = l.last.Add(spacing)
		}
		moved := l.moved
		p.mu.Unlock()
		d := time.Until(wait)
		if wait.IsZero() || d <= 0 {
			break
		}
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-moved: // a probe gave its pacing back: look again
			t.Stop()
		case <-ctx.Done():
			t.Stop()
			return booking{}, false
		}
	}
	select {
	case sem <- struct{}{}:
	case <-ctx.Done():
		return booking{}, false
	}
	// select picks at random among ready cases: re-check a cancelled ctx.
	if ctx.Err() != nil {
		<-sem
		return booking{}, false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	b := booking{l: l, at: time.Now(), prev: l.last}
	l.last, l.spacing = b.at, spacing
	return b, true
}

// giveBack undoes a booking whose probe sent no packet (its name did not
// resolve, say): the next probe of the lane need not wait for it. Only the
// latest start can be given back; an earlier one is already covered.
func (p *pacer) giveBack(b booking) {
	if b.l == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if b.l.last.Equal(b.at) {
		b.l.last = b.prev
		close(b.l.moved)
		b.l.moved = make(chan struct{})
	}
}

// prune forgets idle lanes whose spacing has elapsed, so the map stays
// bounded by the hosts probed recently.
func (p *pacer) prune(now time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for k, l := range p.lanes {
		if l.users == 0 && !l.last.Add(l.spacing).After(now) {
			delete(p.lanes, k)
		}
	}
}

// sentNothing reports whether a probe's results show that no packet went to
// the host: its name did not resolve, or the check could not be built. Such
// a probe does not count for pacing.
func sentNothing(rs []probe.Result) bool {
	if len(rs) == 0 {
		return false
	}
	for _, r := range rs {
		switch {
		case r.Reason == probe.ReasonDNS:
		case r.Reason == probe.ReasonInternalError && r.Address == "":
		default:
			return false
		}
	}
	return true
}

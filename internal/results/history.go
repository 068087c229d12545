package results

import (
	"time"

	"github.com/connprobe/connprobe/probe"
)

// History is the outcomes of a check's last runs, at most HistoryLen, kept
// as a fixed ring of small values inside the entry: recording a run
// allocates nothing, and at 10,000 checks the history costs 16 bytes per
// outcome instead of a new slice of 48-byte outcomes on every probe (issue
// 10). Snapshot hands out copies; a nil *History reads as empty.
type History struct {
	ring [HistoryLen]compactOutcome
	next uint8 // index of the slot the next outcome goes to
	n    uint8 // outcomes held
}

// compactOutcome is an Outcome in 16 bytes: the time in Unix nanoseconds
// and the reason as its index in probe.Reasons.
type compactOutcome struct {
	at     int64
	up     bool
	reason uint8
}

// reasonList is probe.Reasons, read-only; a reason outside it (none is
// produced today) is kept as unknownReason and read back as
// probe.ReasonInternalError: never as "ok".
var reasonList = probe.Reasons()

const unknownReason = 0xff

func reasonCode(r probe.Reason) uint8 {
	for i, known := range reasonList {
		if known == r {
			return uint8(i)
		}
	}
	return unknownReason
}

func (c compactOutcome) outcome() Outcome {
	reason := probe.ReasonInternalError
	if int(c.reason) < len(reasonList) {
		reason = reasonList[c.reason]
	}
	return Outcome{At: time.Unix(0, c.at), Up: c.up, Reason: reason}
}

// add records o and returns it as kept.
func (h *History) add(o Outcome) compactOutcome {
	c := compactOutcome{at: o.At.UnixNano(), up: o.Up, reason: reasonCode(o.Reason)}
	h.ring[h.next] = c
	h.next = uint8((int(h.next) + 1) % HistoryLen)
	if h.n < HistoryLen {
		h.n++
	}
	return c
}

// Len is the number of outcomes held.
func (h *History) Len() int {
	if h == nil {
		return 0
	}
	return int(h.n)
}

// At is the i-th outcome, oldest first (0 <= i < Len).
func (h *History) At(i int) Outcome {
	if i < 0 || i >= h.Len() {
		panic("results: History index out of range")
	}
	start := (int(h.next) - int(h.n) + HistoryLen) % HistoryLen
	return h.ring[(start+i)%HistoryLen].outcome()
}

// Last is the newest outcome; ok is false when there is none.
func (h *History) Last() (o Outcome, ok bool) {
	if h.Len() == 0 {
		return Outcome{}, false
	}
	return h.At(h.Len() - 1), true
}

// Outcomes returns the outcomes in a new slice, oldest first; nil when
// there are none.
func (h *History) Outcomes() []Outcome {
	if h.Len() == 0 {
		return nil
	}
	out := make([]Outcome, h.Len())
	for i := range out {
		out[i] = h.At(i)
	}
	return out
}

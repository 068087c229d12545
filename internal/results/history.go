package results

import (
	"time"

	"github.com/connprobe/connprobe/probe"
)

// History is the outcomes of a check's last runs, at most HistoryLen, kept
// as a fixed ring of small values inside the entry: recording a run
// allocates nothing, and at 10,000 checks the history costs 9 bytes per
// outcome instead of a new slice of 48-byte outcomes on every probe (issue
// 10). The times and the verdicts are kept in separate arrays, so that no
// outcome pads its one-byte verdict to eight (192 bytes per check, not
// 352). Snapshot hands out copies; a nil *History reads as empty.
type History struct {
	at      [HistoryLen]int64 // Unix nanoseconds
	verdict [HistoryLen]uint8 // compactOutcome.verdict
	next    uint8             // index of the slot the next outcome goes to
	n       uint8             // outcomes held
}

// compactOutcome is an Outcome in 16 bytes (9 in a History): the time in Unix nanoseconds,
// and the reason as its index in probe.Reasons with upBit set when up.
type compactOutcome struct {
	at      int64
	verdict uint8
}

// upBit marks an up outcome in compactOutcome.verdict; reason codes stay
// below it (probe.Reasons has 17, unknownReason aside).
const upBit = 0x80

// reasonList is probe.Reasons, read-only; a reason outside it (none is
// produced today) is kept as unknownReason and read back as
// probe.ReasonInternalError: never as "ok".
var reasonList = probe.Reasons()

const unknownReason = upBit - 1

func reasonCode(r probe.Reason) uint8 {
	for i, known := range reasonList {
		if known == r {
			return uint8(i)
		}
	}
	return unknownReason
}

func compact(o Outcome) compactOutcome {
	c := compactOutcome{at: o.At.UnixNano(), verdict: reasonCode(o.Reason)}
	if o.Up {
		c.verdict |= upBit
	}
	return c
}

func (c compactOutcome) outcome() Outcome {
	reason := probe.ReasonInternalError
	if code := int(c.verdict &^ upBit); code < len(reasonList) {
		reason = reasonList[code]
	}
	return Outcome{At: time.Unix(0, c.at), Up: c.verdict&upBit != 0, Reason: reason}
}

// add records o and returns it as kept.
func (h *History) add(o Outcome) compactOutcome {
	c := compact(o)
	h.at[h.next], h.verdict[h.next] = c.at, c.verdict
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
	k := (start + i) % HistoryLen
	return compactOutcome{at: h.at[k], verdict: h.verdict[k]}.outcome()
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

// Package results keeps the last results of every configured check, for the
// metrics collector and the status page to read at any time.
package results

import (
	"slices"
	"sync"
	"time"

	"github.com/connprobe/connprobe/probe"
)

// Entry is one configured check and what its last run observed.
type Entry struct {
	Check *probe.Check
	// Results of the last run, one per address family probed; nil until the
	// check has run once. Shared with the store: read it, never modify it.
	Results []probe.Result
	// Updated is when the last results were stored; zero until the first run.
	Updated time.Time
	// Since is when the check entered its current state (its Outcome's up
	// and reason); zero until the first run.
	Since time.Time
	// History is the outcomes of the last runs, oldest first, at most
	// HistoryLen: a copy of the store's (Snapshot), or nil where left out
	// (Latest, Put's previous entry). Its methods read nil as empty.
	History *History
	// last is the outcome of the last run, valid once Updated is set.
	last compactOutcome
}

// HistoryLen bounds the outcomes kept per check: enough for a strip of
// recent results on the status page, small enough for 10,000 checks.
const HistoryLen = 20

// Outcome is the verdict of one run of a check, all its address families
// folded: up only when every result was up; the reason is that of the first
// failing result (else of the first result).
type Outcome struct {
	At     time.Time
	Up     bool
	Reason probe.Reason
}

// OutcomeOf folds the results of one run into its outcome; a run without
// results (nothing to probe) is an internal error, never "ok".
func OutcomeOf(at time.Time, rs []probe.Result) Outcome {
	if len(rs) == 0 {
		return Outcome{At: at, Reason: probe.ReasonInternalError}
	}
	o := Outcome{At: at, Up: true, Reason: rs[0].Reason}
	for _, r := range rs {
		if !r.Up {
			o.Up, o.Reason = false, r.Reason
			break
		}
	}
	if o.Reason == "" {
		// A prober that left the reason empty is a bug: never call it ok.
		o.Reason = probe.ReasonInternalError
		if o.Up {
			o.Reason = probe.ReasonOK
		}
	}
	return o
}

// Outcome is the outcome of the last run; ok is false before the first.
func (e Entry) Outcome() (o Outcome, ok bool) {
	if !e.Ran() {
		return Outcome{}, false
	}
	return e.last.outcome(), true
}

// Ran reports whether the check has completed a run since it was configured.
func (e Entry) Ran() bool { return !e.Updated.IsZero() }

// Store is safe for concurrent use.
type Store struct {
	mu    sync.RWMutex
	order []*Entry // in config order (the entries of byID)
	byID  map[string]*Entry
	// byCheck finds the entry of a configured check without spelling its
	// ID (Put runs for every probe); a check of an older configuration is
	// found by ID.
	byCheck map[*probe.Check]*Entry
	gen     uint64 // counts SetChecks calls, for readers that cache per configuration
	now     func() time.Time
}

// New returns an empty store.
func New() *Store { return NewWithClock(time.Now) }

// NewWithClock returns an empty store that stamps results with now.
func NewWithClock(now func() time.Time) *Store {
	return &Store{byID: map[string]*Entry{}, now: now}
}

// SetChecks replaces the configured set, in order. Results of checks still
// configured (same ID) are kept; entries of checks no longer configured are
// dropped, so their metrics disappear at the next scrape. A repeated ID keeps
// its first position.
func (s *Store) SetChecks(checks []*probe.Check) {
	s.mu.Lock()
	defer s.mu.Unlock()
	order := make([]*Entry, 0, len(checks))
	byID := make(map[string]*Entry, len(checks))
	byCheck := make(map[*probe.Check]*Entry, len(checks))
	for _, c := range checks {
		id := c.ID()
		if _, dup := byID[id]; dup {
			continue
		}
		e := &Entry{Check: c}
		if old, ok := s.byID[id]; ok {
			e.Results, e.Updated, e.Since, e.History = old.Results, old.Updated, old.Since, old.History
		}
		byID[id] = e
		byCheck[c] = e
		order = append(order, e)
	}
	s.order, s.byID, s.byCheck = order, byID, byCheck
	s.gen++
}

// Put stores the results of one run of c and returns the entry as it was
// before (to tell what changed). Results for a check that is not configured
// (a run that finished after a reload removed it) are dropped: ok is false.
func (s *Store) Put(c *probe.Check, rs []probe.Result) (prev Entry, ok bool) {
	// Copy and never modify in place, so that snapshots can share the slice.
	stored := slices.Clone(rs)
	if stored == nil {
		stored = []probe.Result{}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.byCheck[c]
	if e == nil {
		if e, ok = s.byID[c.ID()]; !ok {
			return Entry{}, false
		}
	}
	prev = *e
	prev.History = nil // the store's own, changed below
	now := s.now()
	o := OutcomeOf(now, stored)
	if last, ran := e.Outcome(); !ran || last.Up != o.Up || last.Reason != o.Reason {
		e.Since = now
	}
	if e.History == nil {
		e.History = new(History) // once per check: runs then fill it in place
	}
	e.last = e.History.add(o) // snapshots hold copies
	e.Results, e.Updated = stored, now
	return prev, true
}

// Snapshot returns every configured check in config order, each with a
// copy of its history; checks that have not run yet have nil Results and
// History.
func (s *Store) Snapshot() []Entry {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]Entry, 0, len(s.order))
	histories := make([]History, len(s.order)) // one allocation for all
	for i, p := range s.order {
		e := *p
		if e.History != nil {
			histories[i] = *e.History
			e.History = &histories[i]
		}
		out = append(out, e)
	}
	return out
}

// Latest is Snapshot without the histories (History is nil; Outcome still
// reports the last run): for readers of every check at every scrape, which
// need the last results only, without copying 20 outcomes per check each
// time (issue 10).
func (s *Store) Latest() []Entry { return s.LatestInto(nil) }

// LatestInto is Latest into dst's array when it is large enough (else a
// new one): a reader at every scrape keeps its buffer from one scrape to
// the next instead of 1.2 MB of garbage at 10,000 checks. The entries
// share their results with the store as Latest's do; a caller that keeps
// dst between reads should clear it (clear(dst)) so that it does not hold
// results the store has replaced.
func (s *Store) LatestInto(dst []Entry) []Entry {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := slices.Grow(dst[:0], len(s.order))
	for _, p := range s.order {
		e := *p
		e.History = nil
		out = append(out, e)
	}
	return out
}

// EachResult calls f with every stored result of the last runs, in config
// order, under the store's read lock: for a reader of every check that
// keeps nothing (the uplink verdict, at every scrape), without Latest's
// copy of every entry (1.2 MB at 10,000 checks). f must not call the store
// nor modify the result.
func (s *Store) EachResult(f func(r *probe.Result)) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, e := range s.order {
		for i := range e.Results {
			f(&e.Results[i])
		}
	}
}

// Generation changes with every SetChecks: a reader may keep what it derived
// from the configured checks (label values, say) while it stays the same.
// Read it before Snapshot, so that a change in between is seen next time.
func (s *Store) Generation() uint64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.gen
}

// Len is the number of configured checks.
func (s *Store) Len() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.order)
}

// Ready reports whether every configured check has run at least once.
func (s *Store) Ready() bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, e := range s.byID {
		if !e.Ran() {
			return false
		}
	}
	return true
}

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
}

// Ran reports whether the check has completed a run since it was configured.
func (e Entry) Ran() bool { return !e.Updated.IsZero() }

// Store is safe for concurrent use.
type Store struct {
	mu    sync.RWMutex
	order []string // check IDs in config order
	byID  map[string]*Entry
	now   func() time.Time
}

// New returns an empty store.
func New() *Store {
	return &Store{byID: map[string]*Entry{}, now: time.Now}
}

// SetChecks replaces the configured set, in order. Results of checks still
// configured (same ID) are kept; entries of checks no longer configured are
// dropped, so their metrics disappear at the next scrape. A repeated ID keeps
// its first position.
func (s *Store) SetChecks(checks []*probe.Check) {
	s.mu.Lock()
	defer s.mu.Unlock()
	order := make([]string, 0, len(checks))
	byID := make(map[string]*Entry, len(checks))
	for _, c := range checks {
		id := c.ID()
		if _, dup := byID[id]; dup {
			continue
		}
		e := &Entry{Check: c}
		if old, ok := s.byID[id]; ok {
			e.Results, e.Updated = old.Results, old.Updated
		}
		byID[id] = e
		order = append(order, id)
	}
	s.order, s.byID = order, byID
}

// Put stores the results of one run of c. Results for a check that is not
// configured (a run that finished after a reload removed it) are dropped.
func (s *Store) Put(c *probe.Check, rs []probe.Result) {
	// Copy and never modify in place, so that snapshots can share the slice.
	stored := slices.Clone(rs)
	if stored == nil {
		stored = []probe.Result{}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.byID[c.ID()]
	if !ok {
		return
	}
	e.Results, e.Updated = stored, s.now()
}

// Snapshot returns every configured check in config order; checks that have
// not run yet have nil Results.
func (s *Store) Snapshot() []Entry {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]Entry, 0, len(s.order))
	for _, id := range s.order {
		out = append(out, *s.byID[id])
	}
	return out
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

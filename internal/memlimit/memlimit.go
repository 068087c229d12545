// Package memlimit is the agent's garbage-collection policy
// (--runtime.memory-limit): a soft memory limit for the Go runtime that
// follows the live heap, so that a large configuration does not keep twice
// its live heap in RSS, while a small one collects as Go does by default.
//
// Go's default (GOGC=100) lets the heap grow to twice the live heap between
// collections. At 10,000 checks that doubling is about 30 MiB of RSS for
// nothing. Lowering GOGC would make every site, also a small one with a heap
// of a few MiB, collect more often. The policy instead sets, after every
// collection, a soft limit (debug.SetMemoryLimit) of
//
//	the runtime's memory outside the heap + live heap + room
//
// where room is a quarter of the live heap plus Headroom, but at least the
// live heap plus Headroom up to SmallHeap (see Limit), and never below the
// memory the runtime has mapped at that moment (see update). Up to about 12
// MiB of live heap GOGC=100's own goal is then the lower one and the limit
// does not bind: small sites keep Go's default behaviour and its CPU cost.
// The limit is derived again from each collection's live heap, so it rises
// with a reload that adds checks and never stays below the live heap: the
// collector cannot be driven into running back to back by the policy
// itself. (A fixed limit set by hand can be below the live heap; then Go's
// GC CPU limiter caps collection at about half the CPU, see the README.)
package memlimit

import (
	"errors"
	"fmt"
	"math"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync"
)

// Factor, SmallHeap and Headroom shape the automatic limit: the heap may
// grow by max(live × (Factor-1), min(live, SmallHeap)) + Headroom between
// collections, to at least Go's 4 MiB minimum heap plus Headroom (plus the
// runtime's other memory). Up to SmallHeap of live heap that is GOGC=100's
// own goal plus Headroom, so the limit does not bind and a small site collects as Go does by
// default; it binds from about 12 MiB of live heap (3,000-4,000 checks).
// Measured at 10,000 checks (README, Performance): RSS 89-94 MiB with Go's
// defaults, 58-68 MiB with these, for 10-35% more CPU at that size.
const (
	Factor    = 1.25
	SmallHeap = 8 << 20
	Headroom  = 4 << 20
)

// Mode is what --runtime.memory-limit asks for.
type Mode int

// Modes of Setting.
const (
	Auto  Mode = iota // follow the live heap (the default)
	Off               // leave the runtime at Go's defaults
	Fixed             // a fixed limit in bytes
)

// Setting is a parsed --runtime.memory-limit.
type Setting struct {
	Mode  Mode
	Bytes int64 // for Fixed
}

// units are the suffixes a fixed limit may carry, as GOMEMLIMIT spells them.
var units = []struct {
	suffix string
	shift  uint
}{{"TiB", 40}, {"GiB", 30}, {"MiB", 20}, {"KiB", 10}, {"B", 0}}

// Parse reads "auto", "off" or a size in GOMEMLIMIT's notation (a number of
// bytes with an optional B, KiB, MiB, GiB or TiB suffix), at least 1 MiB.
func Parse(s string) (Setting, error) {
	switch s {
	case "auto", "":
		return Setting{Mode: Auto}, nil
	case "off":
		return Setting{Mode: Off}, nil
	}
	num, shift := s, uint(0)
	for _, u := range units {
		if strings.HasSuffix(s, u.suffix) {
			num, shift = strings.TrimSuffix(s, u.suffix), u.shift
			break
		}
	}
	n, err := strconv.ParseUint(num, 10, 64)
	if err != nil || n > math.MaxInt64>>shift {
		return Setting{}, fmt.Errorf("memory limit %q: want auto, off or a size such as 64MiB", s)
	}
	b := int64(n << shift)
	if b < 1<<20 {
		return Setting{}, fmt.Errorf("memory limit %q: below 1MiB", s)
	}
	return Setting{Mode: Fixed, Bytes: b}, nil
}

// String spells s as Parse reads it.
func (s Setting) String() string {
	switch s.Mode {
	case Off:
		return "off"
	case Fixed:
		for _, u := range units {
			if s.Bytes>>u.shift<<u.shift == s.Bytes {
				return strconv.FormatInt(s.Bytes>>u.shift, 10) + u.suffix
			}
		}
	}
	return "auto"
}

// Set implements pflag.Value.
func (s *Setting) Set(v string) error {
	p, err := Parse(v)
	if err != nil {
		return err
	}
	*s = p
	return nil
}

// Type implements pflag.Value.
func (s *Setting) Type() string { return "limit" }

// ErrEnvironment says the environment chose the GC's trade itself.
var ErrEnvironment = errors.New("GOGC or GOMEMLIMIT is set in the environment")

// Policy is an applied Setting; Stop undoes it.
type Policy struct {
	mu       sync.Mutex
	stopped  bool
	previous int64 // the limit before Apply, restored by Stop
	limit    int64 // the limit set last
	set      func(int64) int64
	samples  []metrics.Sample
}

// Apply applies s to the Go runtime. A GOGC or GOMEMLIMIT in the
// environment always wins: then nothing is changed and the error is
// ErrEnvironment. getenv is os.Getenv in production.
func Apply(s Setting, getenv func(string) string) (*Policy, error) {
	if getenv("GOGC") != "" || getenv("GOMEMLIMIT") != "" {
		return nil, ErrEnvironment
	}
	return apply(s, debug.SetMemoryLimit), nil
}

func apply(s Setting, set func(int64) int64) *Policy {
	p := &Policy{set: set, previous: set(-1)}
	switch s.Mode {
	case Fixed:
		p.limit = s.Bytes
		set(s.Bytes)
	case Auto:
		p.samples = []metrics.Sample{
			{Name: liveHeap}, {Name: total}, {Name: released}, {Name: heapFree},
			{Name: heapObjects}, {Name: heapUnused},
		}
		p.update()
		p.arm()
	}
	return p
}

// The runtime/metrics read after each collection.
const (
	liveHeap    = "/gc/heap/live:bytes"
	total       = "/memory/classes/total:bytes"
	released    = "/memory/classes/heap/released:bytes"
	heapFree    = "/memory/classes/heap/free:bytes"
	heapObjects = "/memory/classes/heap/objects:bytes"
	heapUnused  = "/memory/classes/heap/unused:bytes"
)

// sentinel is garbage from birth: its cleanup runs after the next
// collection. (A pointer field keeps it out of the tiny allocator, whose
// blocks are freed only with their neighbours.)
type sentinel struct {
	_ *byte
	_ [8]byte
}

// arm has update run after the next collection, and arm again.
func (p *Policy) arm() {
	runtime.AddCleanup(new(sentinel), func(p *Policy) {
		if p.update() {
			p.arm()
		}
	}, p)
}

// update sets the limit from the last collection's live heap; false once
// stopped.
func (p *Policy) update() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stopped {
		return false
	}
	metrics.Read(p.samples)
	v := make(map[string]uint64, len(p.samples))
	for _, s := range p.samples {
		if s.Value.Kind() == metrics.KindUint64 {
			v[s.Name] = s.Value.Uint64()
		}
	}
	var nonHeap, mapped uint64
	if heap := v[released] + v[heapFree] + v[heapObjects] + v[heapUnused]; v[total] > heap {
		nonHeap = v[total] - heap
	}
	if v[total] > v[released] {
		mapped = v[total] - v[released]
	}
	// Never below what is mapped now: a limit under it makes the runtime
	// collect again at once (the collection just ended left free pages
	// that are not returned yet). Go's scavenger returns memory down to 95%
	// of the limit, so a limit that is too high comes down by about 5% a
	// collection, without collections of its own.
	p.limit = max(Limit(v[liveHeap], nonHeap), int64(mapped))
	p.set(p.limit)
	return true
}

// Limit is the automatic limit for a live heap and the runtime's memory
// outside the heap (stacks, metadata, buffers), in bytes.
func Limit(live, nonHeap uint64) int64 {
	heap := live + max(uint64(float64(live)*(Factor-1)), min(live, SmallHeap))
	heap = max(heap, minHeap)
	return int64(nonHeap + heap + Headroom)
}

// minHeap is Go's smallest heap goal at GOGC=100 (4 MiB).
const minHeap = 4 << 20

// Current is the limit the policy set last (0 for Off).
func (p *Policy) Current() int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.limit
}

// Stop ends the policy and restores the limit that was in force before it.
func (p *Policy) Stop() {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stopped {
		return
	}
	p.stopped = true
	p.set(p.previous)
}

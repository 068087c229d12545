// Package fdlimit sizes how many probes may be in flight to the process's
// file descriptor limit (RLIMIT_NOFILE), so that a concurrency set above
// what `ulimit -n` allows lowers itself instead of failing healthy checks
// with "too many open files" (read as down, reason local).
package fdlimit

const (
	// Reserve is what the agent keeps for itself besides probes: standard
	// streams, the runtime's poller, the web server's listeners and its
	// scrapes and page views, netlink for the routing table, the
	// configuration files of a reload.
	Reserve = 32
	// PerProbe is the most descriptors one probe holds at once: an FTP
	// check's control and data connections and the passive listener, or a
	// check's socket with its resolver's and its path trace's.
	PerProbe = 4
)

// Sizing is what Size found and chose.
type Sizing struct {
	Requested int    // the concurrency asked for
	Effective int    // what fits the limit (<= Requested, >= 1)
	Soft      uint64 // the soft limit in force (after raising); 0: unknown
	Hard      uint64
	Raised    bool // the soft limit was raised to the hard one here
}

// Lowered reports whether the limit lowered the concurrency.
func (s Sizing) Lowered() bool { return s.Effective < s.Requested }

// Fit is the concurrency that keeps Reserve descriptors free under limit
// with PerProbe per probe in flight: requested, or less; at least 1, so the
// agent always probes (a probe that finds no descriptor fails as local).
func Fit(requested int, limit uint64) int {
	if requested < 1 {
		requested = 1
	}
	if limit == 0 { // unknown or unlimited
		return requested
	}
	if limit <= Reserve+PerProbe {
		return 1
	}
	if n := (limit - Reserve) / PerProbe; n < uint64(requested) {
		return int(n)
	}
	return requested
}

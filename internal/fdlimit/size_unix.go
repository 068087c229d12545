//go:build unix

package fdlimit

import "golang.org/x/sys/unix"

// Size raises the soft descriptor limit to the hard one where allowed (Go's
// runtime does so at start on most systems; this makes it explicit and
// covers the rest), then fits requested to the soft limit.
func Size(requested int) (Sizing, error) {
	s := Sizing{Requested: requested, Effective: max(requested, 1)}
	var rl unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &rl); err != nil {
		return s, err
	}
	if rl.Cur < rl.Max {
		raised := rl
		raised.Cur = rl.Max
		if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &raised); err == nil {
			rl, s.Raised = raised, true
		}
	}
	s.Soft, s.Hard = uint64(rl.Cur), uint64(rl.Max)
	if rl.Cur == unix.RLIM_INFINITY {
		return s, nil
	}
	s.Effective = Fit(requested, s.Soft)
	return s, nil
}

//go:build !unix

package fdlimit

// Size has no descriptor limit to fit on this system (Windows handles are
// not bounded by a per-process limit the agent can read): requested stands.
func Size(requested int) (Sizing, error) {
	return Sizing{Requested: requested, Effective: max(requested, 1)}, nil
}

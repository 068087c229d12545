package probe

// own makes *p a copy of its options of its own (new when nil) and returns
// it, so that a test can set one option of a check as it did when options
// were held inline: the check's copy changes, never options it shares.
func own[T any](p **T) *T {
	n := new(T)
	if *p != nil {
		*n = **p
	}
	*p = n
	return n
}

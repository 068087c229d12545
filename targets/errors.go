package targets

import (
	"errors"
	"fmt"
	"sort"
	"strings"
)

// Error is one problem found in a config or profile file. Line is 0 when the
// problem has no single line (an empty file, a command-line flag).
type Error struct {
	File string // config or profile source; "" for command-line flags
	Line int
	Msg  string
}

func (e *Error) Error() string {
	switch {
	case e.File != "" && e.Line > 0:
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
	case e.File != "":
		return e.File + ": " + e.Msg
	default:
		return e.Msg
	}
}

// errList collects errors so that one run reports every problem it can,
// not only the first.
type errList struct {
	errs []error
	more int // errors counted but not kept (from a list that was capped)
}

func (l *errList) add(file string, line int, format string, args ...any) {
	l.errs = append(l.errs, &Error{File: file, Line: line, Msg: fmt.Sprintf(format, args...)})
}

// err joins the errors, ordered by line within each file (files in the
// order first seen), so that the report reads like the file.
func (l *errList) err() error {
	rank := map[string]int{}
	key := func(e error) (int, int) {
		var pe *Error
		if !errors.As(e, &pe) {
			return len(l.errs), 0
		}
		if _, ok := rank[pe.File]; !ok {
			rank[pe.File] = len(rank)
		}
		return rank[pe.File], pe.Line
	}
	for _, e := range l.errs {
		key(e)
	}
	sorted := append([]error(nil), l.errs...)
	sort.SliceStable(sorted, func(i, j int) bool {
		fi, li := key(sorted[i])
		fj, lj := key(sorted[j])
		return fi < fj || (fi == fj && li < lj)
	})
	n := l.more
	if len(sorted) > maxErrors {
		n += len(sorted) - maxErrors
		sorted = sorted[:maxErrors:maxErrors]
	}
	if n > 0 {
		sorted = append(sorted, &moreErrors{n: n})
	}
	return errors.Join(sorted...)
}

// moreErrors ends a capped list: how many errors were found past it.
type moreErrors struct{ n int }

func (m *moreErrors) Error() string {
	return fmt.Sprintf("... and %d more %s (the first %d are listed)", m.n, plural(m.n, "error", "errors"), maxErrors)
}

// joinErrors merges error lists (as err returns them) into one, ordered and
// capped again.
func joinErrors(errs ...error) error {
	var l errList
	for _, err := range errs {
		if err == nil {
			continue
		}
		parts := []error{err}
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			parts = j.Unwrap()
		}
		for _, e := range parts {
			if m, ok := e.(*moreErrors); ok {
				l.more += m.n
				continue
			}
			l.errs = append(l.errs, e)
		}
	}
	if l.empty() && l.more == 0 {
		return nil
	}
	return l.err()
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

func (l *errList) empty() bool { return len(l.errs) == 0 }

// suggest returns ` (did you mean "x"?)` for the closest known word, or the
// list of known words when nothing is close, so that a typo names its fix.
func suggest(word string, known []string) string {
	best, bestDist := "", 3
	for _, k := range known {
		if d := editDistance(word, k); d < bestDist {
			best, bestDist = k, d
		}
	}
	if best != "" {
		return fmt.Sprintf(" (did you mean %q?)", best)
	}
	sorted := append([]string(nil), known...)
	sort.Strings(sorted)
	return " (known: " + strings.Join(sorted, ", ") + ")"
}

// editDistance is the Levenshtein distance; inputs are short keys.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

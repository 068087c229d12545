package probe

import (
	"context"
	"os"
	"testing"
	"time"
)

// TestTLSRootsCachedUntilReplaced: with a TLSRoots in the context, the CA
// file is read once; a new TLSRoots (the agent makes one per reload) reads it
// again. Without one, every probe reads it.
func TestTLSRootsCachedUntilReplaced(t *testing.T) {
	p := lbPKI(t)
	srv := lbStartTLS(t, p.good)
	caFile := lbWriteCAFile(t, p.root)
	c := lbTLSCheck(srv.port, caFile)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	roots := NewTLSRoots()
	cached := WithTLSRoots(ctx, roots)
	run := func(ctx context.Context) Result {
		t.Helper()
		rs := Run(ctx, c)
		if len(rs) != 1 {
			t.Fatalf("%d results", len(rs))
		}
		return rs[0]
	}
	lbExpect(t, run(cached), true, ReasonOK, PhaseTLS)

	if err := os.WriteFile(caFile, []byte("not a certificate\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	lbExpect(t, run(cached), true, ReasonOK, PhaseTLS) // the pool read at the first probe
	lbExpect(t, run(ctx), false, ReasonInternalError, PhaseTLS, "holds no PEM certificate")
	lbExpect(t, run(WithTLSRoots(ctx, NewTLSRoots())), false, ReasonInternalError, PhaseTLS, "holds no PEM certificate")

	// An error is not cached: the fixed file is read at the next probe.
	broken := WithTLSRoots(ctx, NewTLSRoots())
	lbExpect(t, run(broken), false, ReasonInternalError, PhaseTLS, "holds no PEM certificate")
	if err := os.WriteFile(caFile, mustReadFile(t, lbWriteCAFile(t, p.root)), 0o600); err != nil {
		t.Fatal(err)
	}
	lbExpect(t, run(broken), true, ReasonOK, PhaseTLS)
}

func mustReadFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

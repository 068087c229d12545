//go:build linux

package probe_test

import (
	"context"
	"encoding/json"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/connprobe/connprobe/internal/netlab"
	"github.com/connprobe/connprobe/probe"
)

// fwHelperTest is the name of the helper test the lab tests re-execute
// inside the client namespace.
const fwHelperTest = "TestNetlabHelperProcess"

// fwHelperInput is what a lab test hands the helper process.
type fwHelperInput struct {
	Check probe.Check
	// Trace traces each result as the scheduler would (probe.Trace when
	// probe.Traceable), filling Result.Path.
	Trace bool
}

// fwHelperOutput is one result as the helper sends it back. Facts are sent
// part by part (keyed by the part's type name): their public JSON merges all
// parts into one object, whose shared names (source_port, rtt_seconds) would
// not decode back into the right part.
type fwHelperOutput struct {
	Result probe.Result
	Facts  map[string]json.RawMessage
	// Euid and CapEff (from /proc/self/status) say with which privilege the
	// helper ran.
	Euid   int
	CapEff string
}

func encodeFactParts(f probe.Facts) (map[string]json.RawMessage, error) {
	parts := map[string]json.RawMessage{}
	v := reflect.ValueOf(f)
	for i := range v.NumField() {
		if v.Field(i).IsNil() {
			continue
		}
		b, err := json.Marshal(v.Field(i).Interface())
		if err != nil {
			return nil, err
		}
		parts[v.Type().Field(i).Name] = b
	}
	return parts, nil
}

func decodeFactParts(t *testing.T, parts map[string]json.RawMessage) probe.Facts {
	t.Helper()
	var f probe.Facts
	v := reflect.ValueOf(&f).Elem()
	for name, raw := range parts {
		field := v.FieldByName(name)
		if !field.IsValid() {
			t.Fatalf("helper sent facts part %q that probe.Facts lacks", name)
		}
		p := reflect.New(field.Type().Elem())
		if err := json.Unmarshal(raw, p.Interface()); err != nil {
			t.Fatalf("decoding facts part %s: %v", name, err)
		}
		field.Set(p)
	}
	return f
}

// TestNetlabHelperProcess is not a test: it is the helper process the lab
// tests start inside a lab's client namespace (via netlab.RunHelper),
// because probe.Run dials from whatever thread its goroutines land on and so
// must run in a process that lives in that namespace as a whole. It runs one
// probe.Run and prints the results as JSON.
func TestNetlabHelperProcess(t *testing.T) {
	var in fwHelperInput
	ok, err := netlab.HelperInput(&in)
	if !ok {
		t.Skip("helper process for the netlab tests; runs only when they start it")
	}
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), in.Check.Timeout+probe.TraceBudget+5*time.Second)
	defer cancel()
	var out []fwHelperOutput
	for _, r := range probe.Run(ctx, &in.Check) {
		if in.Trace {
			r.Path = probe.Trace(ctx, r)
		}
		parts, err := encodeFactParts(r.Facts)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, fwHelperOutput{Result: r, Facts: parts, Euid: os.Geteuid(), CapEff: capEff()})
	}
	if err := netlab.WriteHelperOutput(out); err != nil {
		t.Fatal(err)
	}
}

// fwRun runs c once from the lab's client namespace and returns its single
// result, facts included.
func fwRun(t *testing.T, lab *netlab.Lab, c *probe.Check) probe.Result {
	t.Helper()
	return runInNetns(t, lab, lab.Client(), c)
}

// runInNetns runs c once with probe.Run in namespace ns and returns its
// single result, facts included.
func runInNetns(t *testing.T, lab *netlab.Lab, ns string, c *probe.Check) probe.Result {
	t.Helper()
	var out []fwHelperOutput
	if err := lab.RunHelper(ns, fwHelperTest, fwHelperInput{Check: *c}, &out, c.Timeout+15*time.Second); err != nil {
		t.Fatal(err)
	}
	if len(out) != 1 {
		t.Fatalf("got %d results, want 1: %+v", len(out), out)
	}
	r := out[0].Result
	r.Facts = decodeFactParts(t, out[0].Facts)
	return r
}

// fwCase is one situation in a lab and the verdict the probe must reach.
type fwCase struct {
	name    string
	kind    string        // kept from setup when empty; "tcp" if setup left it empty too
	timeout time.Duration // check timeout; 2s unless set
	// setup prepares the lab and returns the check to run from the client.
	setup  func(t *testing.T, lab *netlab.Lab) *probe.Check
	reason probe.Reason
	phase  probe.Phase
	// up is the expected Up for reasons other than ok (no_reply with
	// expect_reply: false); reason ok always means up.
	up bool
	// detail returns substrings the result's detail must contain.
	detail func(lab *netlab.Lab) []string
	// atLeast is the least time the attempt must take (silence must wait for
	// the deadline), atMost the most (an ICMP error, RST or EPERM is immediate).
	atLeast, atMost time.Duration
	// check inspects the result further (facts).
	check func(t *testing.T, lab *netlab.Lab, r probe.Result)
}

// runFwCases runs each case in a lab of its own, in parallel.
func runFwCases(t *testing.T, cases []fwCase) {
	if err := netlab.Available(); err != nil {
		t.Skipf("netlab: %v", err)
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			lab := netlab.New(t)
			c := tc.setup(t, lab)
			if tc.kind != "" {
				c.Kind = tc.kind
			}
			if c.Kind == "" {
				c.Kind = "tcp"
			}
			c.Timeout = tc.timeout
			if c.Timeout == 0 {
				c.Timeout = 2 * time.Second
			}
			r := fwRun(t, lab, c)
			t.Logf("%s -> up=%v %s (phase %s, %s): %s", tc.name, r.Up, r.Reason, r.Phase, r.Duration.Round(time.Millisecond), r.Detail)
			wantUp := tc.reason == probe.ReasonOK || tc.up
			if r.Up != wantUp || r.Reason != tc.reason || r.Phase != tc.phase {
				t.Errorf("got up=%v reason %q phase %q, want up=%v %q phase %q (detail: %s)",
					r.Up, r.Reason, r.Phase, wantUp, tc.reason, tc.phase, r.Detail)
			}
			if r.Address != c.Host {
				t.Errorf("Address = %q, want %q", r.Address, c.Host)
			}
			if tc.detail != nil {
				for _, want := range tc.detail(lab) {
					if !strings.Contains(r.Detail, want) {
						t.Errorf("detail %q does not contain %q", r.Detail, want)
					}
				}
			}
			if tc.atLeast > 0 && r.Duration < tc.atLeast {
				t.Errorf("took %s, want at least %s", r.Duration, tc.atLeast)
			}
			if tc.atMost > 0 && r.Duration > tc.atMost {
				t.Errorf("took %s, want at most %s", r.Duration, tc.atMost)
			}
			if tc.check != nil {
				tc.check(t, lab, r)
			}
		})
	}
}

// capEff is this process's effective capability set, as /proc/self/status
// shows it (hex), or "" when unreadable.
func capEff() string {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "CapEff:"); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

//go:build linux

package probe_test

import (
	"context"
	"testing"
	"time"

	"github.com/connprobe/connprobe/internal/netlab"
	"github.com/connprobe/connprobe/probe"
)

// fwHelperTest is the name of the helper test the firewall tests re-execute
// inside the client namespace.
const fwHelperTest = "TestNetlabHelperProcess"

// fwHelperInput is what a firewall test hands the helper process.
type fwHelperInput struct {
	Check probe.Check
}

// TestNetlabHelperProcess is not a test: it is the helper process the
// firewall tests start inside a lab's client namespace (via netlab.RunHelper),
// because probe.Run dials from whatever thread its goroutines land on and so
// must run in a process that lives in that namespace as a whole. It runs one
// probe.Run and prints the results as JSON.
func TestNetlabHelperProcess(t *testing.T) {
	var in fwHelperInput
	ok, err := netlab.HelperInput(&in)
	if !ok {
		t.Skip("helper process for the netlab firewall tests; runs only when they start it")
	}
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), in.Check.Timeout+5*time.Second)
	defer cancel()
	results := probe.Run(ctx, &in.Check)
	if err := netlab.WriteHelperOutput(results); err != nil {
		t.Fatal(err)
	}
}

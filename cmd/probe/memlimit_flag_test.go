package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/connprobe/connprobe/internal/oneshot"
)

// --runtime.memory-limit takes auto, off or a size; anything else is a usage
// error before the agent starts (the values themselves: internal/memlimit).
func TestMemoryLimitFlag(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run([]string{"--runtime.memory-limit", "64M"}, &stdout, &stderr); code != oneshot.ExitUsage {
		t.Errorf("--runtime.memory-limit 64M: exit %d, want %d (usage)", code, oneshot.ExitUsage)
	}
	if !strings.Contains(stderr.String(), "runtime.memory-limit") || !strings.Contains(stderr.String(), "64MiB") {
		t.Errorf("stderr does not say what the flag takes: %q", stderr.String())
	}
	stdout.Reset()
	if code := run([]string{"--help"}, &stdout, &stderr); code != 0 || !strings.Contains(stdout.String(), "--runtime.memory-limit limit") ||
		!strings.Contains(stdout.String(), "(default auto)") {
		t.Errorf("--help: exit %d, no --runtime.memory-limit with its default auto in:\n%s", code, stdout.String())
	}
}

//go:build !linux

package chromium

import "testing"

// Run skips: the harness kills Chromium's process group, which needs Linux.
func Run(t testing.TB, _, _ string, _ ...string) (stdout, stderr string) {
	t.Helper()
	t.Skip("the Chromium harness runs on Linux only")
	return "", ""
}

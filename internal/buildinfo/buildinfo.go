// Package buildinfo holds the version stamped in at build time.
package buildinfo

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// Set with -ldflags "-X github.com/connprobe/connprobe/internal/buildinfo.Version=..."
// (a linker-set string: written once at link time, never at run time).
var (
	Version  = "dev"
	Revision = ""
)

// Info is the build's identity, for the build_info metric and --version.
type Info struct {
	Version   string
	Revision  string
	GoVersion string
}

// Get returns the build info, taking the VCS revision from the Go build
// information when ldflags did not set one.
func Get() Info {
	rev := Revision
	if rev == "" {
		if bi, ok := debug.ReadBuildInfo(); ok {
			for _, s := range bi.Settings {
				if s.Key == "vcs.revision" {
					rev = s.Value
				}
			}
		}
	}
	return Info{Version: Version, Revision: rev, GoVersion: runtime.Version()}
}

// String is the --version line.
func String() string {
	i := Get()
	if i.Revision == "" {
		return fmt.Sprintf("connprobe %s (%s)", i.Version, i.GoVersion)
	}
	return fmt.Sprintf("connprobe %s (revision %s, %s)", i.Version, i.Revision, i.GoVersion)
}

package buildinfo

import (
	"strings"
	"testing"
)

func TestStringOmitsAnUnknownRevision(t *testing.T) {
	s := String()
	if !strings.HasPrefix(s, "connprobe "+Version+" (") {
		t.Fatalf("String() = %q", s)
	}
	if Get().Revision == "" && strings.Contains(s, "revision") {
		t.Errorf("String() = %q names an empty revision", s)
	}
}

package probe

import (
	"encoding/binary"
	"net"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// FuzzErrQueue drives the parser of a socket error queue entry (struct
// sock_extended_err and the offender's sockaddr) and the verdict made of it.
func FuzzErrQueue(f *testing.F) {
	entry := func(origin, typ, code byte, family uint16, addr []byte) []byte {
		b := make([]byte, sizeofSockExtendedErr)
		binary.NativeEndian.PutUint32(b[0:4], uint32(unix.EHOSTUNREACH))
		b[4], b[5], b[6] = origin, typ, code
		off := make([]byte, 28)
		binary.NativeEndian.PutUint16(off[0:2], family)
		if family == unix.AF_INET {
			copy(off[4:8], addr)
		} else {
			copy(off[8:24], addr)
		}
		return append(b, off...)
	}
	f.Add(entry(eeOriginICMP, 3, 13, unix.AF_INET, net.IPv4(192, 0, 2, 1).To4()))
	f.Add(entry(eeOriginICMP, 3, 3, unix.AF_INET, net.IPv4(198, 51, 100, 7).To4()))
	f.Add(entry(eeOriginICMP6, 1, 4, unix.AF_INET6, net.ParseIP("2001:db8::1")))
	f.Add(entry(eeOriginICMP, 11, 0, unix.AF_INET, net.IPv4(203, 0, 113, 1).To4()))
	f.Add(entry(eeOriginLocal, 0, 0, 0, nil))
	f.Add([]byte{1, 2, 3})
	target := net.IPv4(198, 51, 100, 7)
	local := func() []net.IP { return []net.IP{net.IPv4(192, 0, 2, 1)} }
	f.Fuzz(func(t *testing.T, data []byte) {
		e := parseExtendedErr(data)
		if len(data) < sizeofSockExtendedErr {
			if e != nil {
				t.Fatalf("%d bytes parsed as %+v", len(data), e)
			}
			return
		}
		if e == nil {
			t.Fatal("a full entry did not parse")
		}
		if e.Offender != nil && len(e.Offender) != net.IPv4len && len(e.Offender) != net.IPv6len {
			t.Fatalf("offender %v", e.Offender)
		}
		fzText(t, "description", e.Describe())
		for _, elapsed := range []time.Duration{0, 3 * time.Second} {
			reason, d := classifyICMP(e, target, local, elapsed)
			fzText(t, "detail", d)
			if reason != ReasonRefused && reason != ReasonRejected && reason != ReasonUnreachable && reason != ReasonLocal {
				t.Fatalf("reason %s", reason)
			}
		}
	})
}

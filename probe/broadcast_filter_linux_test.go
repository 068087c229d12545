//go:build linux

package probe

import (
	"encoding/binary"
	"net"
	"testing"

	"golang.org/x/net/bpf"
)

// udpHeader builds an IP header (as a SOCK_DGRAM packet socket sees it, from
// the network header on) and a UDP header to dport.
func udpHeader(v6 bool, proto byte, dport uint16, fragOff uint16, ihl int) []byte {
	var b []byte
	if v6 {
		b = make([]byte, 40+8)
		b[0], b[6] = 0x60, proto
		copy(b[8:], net.ParseIP("fd00::1"))
		copy(b[24:], net.ParseIP("ff02::1"))
	} else {
		b = make([]byte, ihl+8)
		b[0], b[9] = 0x40|byte(ihl/4), proto
		binary.BigEndian.PutUint16(b[6:], fragOff)
		copy(b[12:], net.IPv4(10, 0, 0, 2).To4())
		copy(b[16:], net.IPv4(10, 0, 0, 255).To4())
	}
	binary.BigEndian.PutUint16(b[len(b)-8+2:], dport)
	return b
}

func TestBroadcastPacketFilter(t *testing.T) {
	const port = 15000
	cases := []struct {
		name string
		v6   bool
		pkt  []byte
		keep bool
	}{
		{"v4 udp to port", false, udpHeader(false, 17, port, 0, 20), true},
		{"v4 udp to port, IP options", false, udpHeader(false, 17, port, 0, 24), true},
		{"v4 first fragment", false, udpHeader(false, 17, port, 0x2000, 20), true}, // MF set, offset 0
		{"v4 later fragment", false, udpHeader(false, 17, port, 0x2010, 20), false},
		{"v4 udp to other port", false, udpHeader(false, 17, port+1, 0, 20), false},
		{"v4 tcp to port", false, udpHeader(false, 6, port, 0, 20), false},
		{"v6 udp to port", true, udpHeader(true, 17, port, 0, 0), true},
		{"v6 udp to other port", true, udpHeader(true, 17, 53, 0, 0), false},
		{"v6 tcp to port", true, udpHeader(true, 6, port, 0, 0), false},
	}
	for _, c := range cases {
		vm, err := bpf.NewVM(udpPortProgram(port, c.v6))
		if err != nil {
			t.Fatal(err)
		}
		n, err := vm.Run(c.pkt)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if kept := n > 0; kept != c.keep {
			t.Errorf("%s: filter kept %d bytes, want keep=%v", c.name, n, c.keep)
		}
		if c.keep {
			src, dst, ok := packetAddrs(c.pkt[:min(n, len(c.pkt))], c.v6)
			if !ok || src == nil || !isBroadcastDst(dst, []net.IP{net.IPv4(10, 0, 0, 255)}) {
				t.Errorf("%s: addresses %v -> %v (ok=%v)", c.name, src, dst, ok)
			}
		}
	}
}

func TestBroadcastCountBounded(t *testing.T) {
	c := newBroadcastCount(net.IPv4zero, nil)
	for i := range 100 {
		c.add(net.IPv4(10, 0, 0, byte(i)), net.IPv4bcast, false)
	}
	c.add(net.IPv4(10, 0, 0, 1), net.IPv4(10, 0, 0, 9), false)
	f := c.facts
	if f.Datagrams != 100 || f.Unicast != 1 || len(f.Senders) != maxBroadcastSenders {
		t.Fatalf("facts %+v", f)
	}
}

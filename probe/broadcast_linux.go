//go:build linux

package probe

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/net/bpf"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
	"golang.org/x/sys/unix"
)

// watchBroadcast counts datagrams to the check's port until ctx's deadline,
// as the check's mode says: on its own socket when the port is free (auto,
// bind), else with a packet socket (auto with the port taken, packet).
func watchBroadcast(ctx context.Context, t Target, c *broadcastCount) error {
	port, v6, mode := t.Check.Port, t.Addr.To4() == nil, t.Check.GetBroadcast().Mode
	if mode == BroadcastPacket {
		err := watchPacket(ctx, port, v6, c)
		if err == nil {
			return nil
		}
		if errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.EACCES) {
			return fmt.Errorf("cannot watch udp/%d with mode: packet: a packet socket needs CAP_NET_RAW, which connprobe lacks (%v); "+
				"grant it, or use mode: bind where no other process uses the port", port, err)
		}
		return fmt.Errorf("cannot watch udp/%d with mode: packet: the packet socket failed: %w", port, err)
	}
	bound, err := watchBound(ctx, port, v6, c)
	if bound || err == nil {
		return err
	}
	bindErr := err
	if !errors.Is(bindErr, syscall.EADDRINUSE) && !errors.Is(bindErr, syscall.EACCES) {
		return fmt.Errorf("binding udp/%d: %w", port, bindErr)
	}
	if mode == BroadcastBind {
		if errors.Is(bindErr, syscall.EACCES) {
			return fmt.Errorf("cannot bind udp/%d with mode: bind: binding a port below 1024 needs CAP_NET_BIND_SERVICE (%v)", port, bindErr)
		}
		c.facts.PortHolder = udpPortHolder(ctx, port)
		return fmt.Errorf("cannot bind udp/%d with mode: bind: it is taken by %s; "+
			"use mode: packet (needs CAP_NET_RAW) to watch it without taking it from its owner", port, c.facts.PortHolder)
	}
	c.facts.PortHolder = udpPortHolder(ctx, port)
	err = watchPacket(ctx, port, v6, c)
	if err == nil {
		return nil
	}
	why := "it is taken by " + c.facts.PortHolder
	if errors.Is(bindErr, syscall.EACCES) {
		why = "binding a port below 1024 needs CAP_NET_BIND_SERVICE"
	}
	if errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.EACCES) {
		return fmt.Errorf("cannot watch udp/%d: %s, and watching it without taking it needs CAP_NET_RAW for a packet socket (%v)",
			port, why, err)
	}
	return fmt.Errorf("cannot watch udp/%d: %s, and the packet socket failed: %w", port, why, err)
}

// watchBound binds the port and counts what arrives. bound reports whether
// the bind succeeded; a bind error is returned unwrapped for the caller to
// fall back on.
func watchBound(ctx context.Context, port int, v6 bool, c *broadcastCount) (bound bool, err error) {
	network, addr := "udp4", net.JoinHostPort("0.0.0.0", strconv.Itoa(port))
	if v6 {
		network, addr = "udp6", net.JoinHostPort("::", strconv.Itoa(port)) // Go makes udp6 sockets IPv6-only
	}
	// A plain ListenConfig sets neither SO_REUSEADDR nor SO_REUSEPORT on a
	// unicast UDP bind: if anyone holds the port, even a socket bound to one
	// address, the bind fails instead of sharing (and splitting) its traffic.
	// Receiving broadcasts needs no SO_BROADCAST; that only permits sending.
	var lc net.ListenConfig
	pc, err := lc.ListenPacket(ctx, network, addr)
	if err != nil {
		return false, err
	}
	defer pc.Close()
	c.facts.Mode = "bind"
	deadline, _ := ctx.Deadline()
	if err := pc.SetReadDeadline(deadline); err != nil {
		return true, err
	}
	stop := interruptWhenDone(ctx, pc.SetReadDeadline)
	defer stop()

	// The destination address (IP_PKTINFO / IPV6_PKTINFO) tells a broadcast
	// from a unicast datagram; the socket alone cannot.
	buf := make([]byte, broadcastRead)
	var read func() (src, dst net.IP, err error)
	if v6 {
		p := ipv6.NewPacketConn(pc)
		if err := p.SetControlMessage(ipv6.FlagDst, true); err != nil {
			return true, fmt.Errorf("IPV6_RECVPKTINFO: %w", err)
		}
		read = func() (net.IP, net.IP, error) {
			_, cm, from, err := p.ReadFrom(buf)
			return udpSource(from), cmDst6(cm), err
		}
	} else {
		p := ipv4.NewPacketConn(pc)
		if err := p.SetControlMessage(ipv4.FlagDst, true); err != nil {
			return true, fmt.Errorf("IP_PKTINFO: %w", err)
		}
		read = func() (net.IP, net.IP, error) {
			_, cm, from, err := p.ReadFrom(buf)
			return udpSource(from), cmDst4(cm), err
		}
	}
	for { // ends at the deadline, set above and on cancellation
		src, dst, err := read()
		if err != nil {
			if isTimeout(err) {
				return true, nil
			}
			return true, fmt.Errorf("receiving on udp/%d: %w", port, err)
		}
		c.add(src, dst, false)
	}
}

func udpSource(a net.Addr) net.IP {
	if u, ok := a.(*net.UDPAddr); ok {
		return u.IP
	}
	return nil
}

func cmDst4(cm *ipv4.ControlMessage) net.IP {
	if cm == nil {
		return nil
	}
	return cm.Dst
}

func cmDst6(cm *ipv6.ControlMessage) net.IP {
	if cm == nil {
		return nil
	}
	return cm.Dst
}

// packetSnap is how much of each frame the kernel copies to the packet
// socket: enough for the IP (up to 60 bytes) and UDP headers, no payload.
const packetSnap = 128

// maxPacketBurst bounds the frames read per wake-up, so that the deadline is
// checked even under a flood.
const maxPacketBurst = 256

// packetPoll is the longest single wait, so that cancellation is noticed.
const packetPoll = 200 * time.Millisecond

// watchPacket counts datagrams to port with a packet socket: the kernel gives
// it copies of matching frames, so the port's owner still gets every
// datagram. Needs CAP_NET_RAW.
func watchPacket(ctx context.Context, port int, v6 bool, c *broadcastCount) error {
	ethType := uint16(unix.ETH_P_IP)
	if v6 {
		ethType = unix.ETH_P_IPV6
	}
	// Protocol 0 receives nothing until bound: the filter is in place before
	// the first frame, so no unfiltered frame is ever queued.
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, 0)
	if err != nil {
		return os.NewSyscallError("socket(AF_PACKET)", err)
	}
	defer unix.Close(fd)
	prog, err := udpPortFilter(port, v6)
	if err != nil {
		return err
	}
	fprog := unix.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]}
	if err := unix.SetsockoptSockFprog(fd, unix.SOL_SOCKET, unix.SO_ATTACH_FILTER, &fprog); err != nil {
		return os.NewSyscallError("setsockopt(SO_ATTACH_FILTER)", err)
	}
	// Bound to one EtherType (not ETH_P_ALL), the socket sees received
	// frames only, not copies of this host's own outgoing ones.
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(ethType)}); err != nil {
		return os.NewSyscallError("bind(AF_PACKET)", err)
	}
	c.facts.Mode = "packet"
	deadline, _ := ctx.Deadline()
	buf := make([]byte, packetSnap)
	for ctx.Err() == nil {
		left := time.Until(deadline)
		if left <= 0 {
			return nil
		}
		wait := min(left, packetPoll)
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		n, err := unix.Poll(fds, int(wait.Milliseconds())+1)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return os.NewSyscallError("poll", err)
		}
		if n == 0 {
			continue
		}
		for range maxPacketBurst {
			n, from, err := unix.Recvfrom(fd, buf, unix.MSG_DONTWAIT)
			if errors.Is(err, unix.EAGAIN) {
				break
			}
			if err != nil {
				return os.NewSyscallError("recvfrom(AF_PACKET)", err)
			}
			ll, _ := from.(*unix.SockaddrLinklayer)
			if ll == nil || ll.Pkttype == unix.PACKET_OTHERHOST || ll.Pkttype == unix.PACKET_OUTGOING {
				continue // another host's unicast (promiscuous NIC), or our own
			}
			src, dst, ok := packetAddrs(buf[:min(n, len(buf))], v6)
			if !ok {
				continue
			}
			c.add(src, dst, ll.Pkttype == unix.PACKET_BROADCAST || ll.Pkttype == unix.PACKET_MULTICAST)
		}
	}
	return nil
}

// packetAddrs takes the source and destination from an IP header.
func packetAddrs(b []byte, v6 bool) (src, dst net.IP, ok bool) {
	if !v6 {
		if len(b) < 20 || b[0]>>4 != 4 {
			return nil, nil, false
		}
		return net.IP(append([]byte(nil), b[12:16]...)), net.IP(append([]byte(nil), b[16:20]...)), true
	}
	if len(b) < 40 || b[0]>>4 != 6 {
		return nil, nil, false
	}
	return net.IP(append([]byte(nil), b[8:24]...)), net.IP(append([]byte(nil), b[24:40]...)), true
}

// udpPortFilter is a classic BPF program, run on the network header (the
// socket is SOCK_DGRAM), that keeps UDP datagrams to port and truncates them
// to packetSnap bytes. IPv6 extension headers are not followed: datagrams
// behind them are missed, never misattributed.
func udpPortFilter(port int, v6 bool) ([]unix.SockFilter, error) {
	raw, err := bpf.Assemble(udpPortProgram(port, v6))
	if err != nil {
		return nil, fmt.Errorf("assembling the packet filter: %w", err)
	}
	out := make([]unix.SockFilter, len(raw))
	for i, r := range raw {
		out[i] = unix.SockFilter{Code: r.Op, Jt: r.Jt, Jf: r.Jf, K: r.K}
	}
	return out, nil
}

func udpPortProgram(port int, v6 bool) []bpf.Instruction {
	if v6 {
		return []bpf.Instruction{
			bpf.LoadAbsolute{Off: 6, Size: 1}, // next header
			bpf.JumpIf{Cond: bpf.JumpEqual, Val: unix.IPPROTO_UDP, SkipFalse: 3},
			bpf.LoadAbsolute{Off: 40 + 2, Size: 2}, // UDP destination port
			bpf.JumpIf{Cond: bpf.JumpEqual, Val: uint32(port), SkipFalse: 1},
			bpf.RetConstant{Val: packetSnap},
			bpf.RetConstant{Val: 0},
		}
	}
	return []bpf.Instruction{
		bpf.LoadAbsolute{Off: 9, Size: 1}, // protocol
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: unix.IPPROTO_UDP, SkipFalse: 6},
		bpf.LoadAbsolute{Off: 6, Size: 2},                           // flags and fragment offset
		bpf.JumpIf{Cond: bpf.JumpBitsSet, Val: 0x1fff, SkipTrue: 4}, // a later fragment has no UDP header
		bpf.LoadMemShift{Off: 0},                                    // X = IP header length
		bpf.LoadIndirect{Off: 2, Size: 2},                           // UDP destination port
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: uint32(port), SkipFalse: 1},
		bpf.RetConstant{Val: packetSnap},
		bpf.RetConstant{Val: 0},
	}
}

// htons returns v in network byte order, as sockaddr_ll wants its protocol
// and sockaddr_in its port.
func htons(v uint16) uint16 {
	var b [2]byte
	binary.BigEndian.PutUint16(b[:], v)
	return binary.NativeEndian.Uint16(b[:])
}

// udpPortHolder names the sockets (and, when visible, processes) bound to
// the UDP port, for a detail line.
func udpPortHolder(ctx context.Context, port int) string {
	var socks []listenSocket
	for _, state := range []int{procStateClose, procStateEstablished} {
		for _, name := range []string{"/proc/net/udp", "/proc/net/udp6"} {
			f, err := os.Open(name)
			if err != nil {
				continue
			}
			s, _ := parseProcNet(f, state, port)
			f.Close()
			socks = append(socks, s...)
		}
	}
	if len(socks) == 0 {
		return "another socket"
	}
	inodes := make([]uint64, len(socks))
	for i, s := range socks {
		inodes[i] = s.Inode
	}
	owners := socketOwners(ctx, inodes)
	var parts []string
	for _, s := range socks {
		p := s.String()
		if o, ok := owners[s.Inode]; ok {
			p = o + " on " + p
		}
		if !containsString(parts, p) {
			parts = append(parts, p)
		}
	}
	sort.Strings(parts)
	return strings.Join(parts, ", ")
}

//go:build linux

package probe

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

func systemListenEnv() listenEnv {
	return listenEnv{sockets: procNetSockets, v6only: sockDiagV6Only, owners: socketOwners, local: hostAddrs}
}

// Socket states in /proc/net/{tcp,udp}* (include/net/tcp_states.h). A UDP
// socket in TCP_CLOSE is unconnected, so it takes datagrams from anyone; a
// connected one (TCP_ESTABLISHED) only from its peer, so it serves no peers.
const (
	procStateListen = 0x0A // TCP_LISTEN
	procStateClose  = 0x07 // TCP_CLOSE: an unconnected UDP socket
	// TCP_ESTABLISHED: a connected UDP socket; it still holds its port.
	procStateEstablished = 0x01
)

// procNetSockets lists the sockets that take new peers on port: TCP
// listeners, or unconnected UDP sockets. /proc/net follows the network
// namespace of the reading process, which is the agent's.
func procNetSockets(transport string, port int) ([]listenSocket, error) {
	state := procStateListen
	if transport == "udp" {
		state = procStateClose
	}
	var out []listenSocket
	for _, v6 := range []bool{false, true} {
		name := "/proc/net/" + transport
		if v6 {
			name += "6"
		}
		f, err := os.Open(name)
		if err != nil {
			if v6 && errors.Is(err, os.ErrNotExist) {
				continue // IPv6 disabled in this kernel
			}
			return nil, err
		}
		socks, err := parseProcNet(f, state, port)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		out = append(out, socks...)
	}
	return out, nil
}

// parseProcNet reads a /proc/net/{tcp,udp}{,6} table and returns the sockets
// in state whose local port is port (any port when port is 0).
func parseProcNet(r io.Reader, state, port int) ([]listenSocket, error) {
	var out []listenSocket
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 512), 4096) // lines are ~150 bytes
	first := true
	for sc.Scan() {
		if first { // the header
			first = false
			continue
		}
		f := strings.Fields(sc.Text())
		if len(f) < 10 {
			continue
		}
		st, err := strconv.ParseUint(f[3], 16, 8)
		if err != nil || int(st) != state {
			continue
		}
		ip, p, err := parseProcAddr(f[1])
		if err != nil {
			return nil, err
		}
		if port != 0 && p != port {
			continue
		}
		inode, err := strconv.ParseUint(f[9], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("bad inode %q", f[9])
		}
		out = append(out, listenSocket{Addr: ip, Port: p, Inode: inode})
	}
	return out, sc.Err()
}

// parseProcAddr decodes "0100007F:0035". The kernel prints each 32-bit word
// of the address as a host-order integer (%08X), so on little-endian hosts
// the bytes of each word appear reversed; the port is a plain hex number.
func parseProcAddr(s string) (net.IP, int, error) {
	h, ps, ok := strings.Cut(s, ":")
	if !ok || (len(h) != 8 && len(h) != 32) {
		return nil, 0, fmt.Errorf("bad address %q", s)
	}
	raw, err := hex.DecodeString(h)
	if err != nil {
		return nil, 0, fmt.Errorf("bad address %q", s)
	}
	ip := make(net.IP, len(raw))
	for i := 0; i < len(raw); i += 4 {
		binary.NativeEndian.PutUint32(ip[i:], binary.BigEndian.Uint32(raw[i:]))
	}
	p, err := strconv.ParseUint(ps, 16, 16)
	if err != nil {
		return nil, 0, fmt.Errorf("bad port in %q", s)
	}
	return ip, int(p), nil
}

// sock_diag (linux/inet_diag.h) layout.
const (
	sizeofInetDiagReqV2 = 56
	sizeofInetDiagMsg   = 72
	inetDiagSKV6Only    = 11 // INET_DIAG_SKV6ONLY: always sent for AF_INET6 sockets
	sockDiagTimeout     = 2 * time.Second
	maxSockDiagReads    = 1024
)

// sockDiagV6Only asks the kernel (NETLINK_SOCK_DIAG) which AF_INET6 sockets
// on port are IPv6-only, by inode. /proc/net shows [::] for both kinds, yet
// only a dual-stack one accepts IPv4 peers.
func sockDiagV6Only(transport string, port int) (map[uint64]bool, error) {
	proto, states := uint8(unix.IPPROTO_TCP), uint32(1)<<procStateListen
	if transport == "udp" {
		proto, states = unix.IPPROTO_UDP, uint32(1)<<procStateClose
	}
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, unix.NETLINK_SOCK_DIAG)
	if err != nil {
		return nil, os.NewSyscallError("socket(NETLINK_SOCK_DIAG)", err)
	}
	defer unix.Close(fd)
	// Bounds every read: a kernel without udp_diag must not hang the probe.
	tv := unix.NsecToTimeval(sockDiagTimeout.Nanoseconds())
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		return nil, os.NewSyscallError("setsockopt", err)
	}

	req := make([]byte, unix.SizeofNlMsghdr+sizeofInetDiagReqV2)
	binary.NativeEndian.PutUint32(req[0:], uint32(len(req)))
	binary.NativeEndian.PutUint16(req[4:], unix.SOCK_DIAG_BY_FAMILY)
	binary.NativeEndian.PutUint16(req[6:], unix.NLM_F_REQUEST|unix.NLM_F_DUMP)
	binary.NativeEndian.PutUint32(req[8:], 1) // sequence
	b := req[unix.SizeofNlMsghdr:]
	b[0], b[1] = unix.AF_INET6, proto
	binary.NativeEndian.PutUint32(b[4:], states)
	binary.BigEndian.PutUint16(b[8:], uint16(port)) // id.sport: the kernel filters dumps by it
	if err := unix.Sendto(fd, req, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return nil, os.NewSyscallError("sendto(sock_diag)", err)
	}

	out := map[uint64]bool{}
	buf := make([]byte, 32<<10)
	for range maxSockDiagReads {
		n, _, err := unix.Recvfrom(fd, buf, 0)
		if err != nil {
			return nil, os.NewSyscallError("recvfrom(sock_diag)", err)
		}
		msgs, err := syscall.ParseNetlinkMessage(buf[:n])
		if err != nil {
			return nil, fmt.Errorf("sock_diag: %w", err)
		}
		for _, m := range msgs {
			switch m.Header.Type {
			case unix.NLMSG_DONE:
				return out, nil
			case unix.NLMSG_ERROR:
				if len(m.Data) >= 4 {
					if errno := int32(binary.NativeEndian.Uint32(m.Data)); errno != 0 {
						return nil, fmt.Errorf("sock_diag: %w", unix.Errno(-errno))
					}
				}
				return out, nil
			case unix.SOCK_DIAG_BY_FAMILY:
				inode, only, ok := parseInetDiagMsg(m.Data, port)
				if ok {
					out[inode] = only
				}
			}
		}
	}
	return nil, errors.New("sock_diag: dump did not end")
}

// parseInetDiagMsg returns the inode and IPV6_V6ONLY of one inet_diag_msg
// for a socket on port; ok is false for other ports or without the flag.
func parseInetDiagMsg(d []byte, port int) (inode uint64, v6only, ok bool) {
	if len(d) < sizeofInetDiagMsg || int(binary.BigEndian.Uint16(d[4:])) != port {
		return 0, false, false
	}
	inode = uint64(binary.NativeEndian.Uint32(d[68:]))
	attrs := d[sizeofInetDiagMsg:]
	for len(attrs) >= unix.SizeofRtAttr {
		l := int(binary.NativeEndian.Uint16(attrs[0:]))
		typ := binary.NativeEndian.Uint16(attrs[2:])
		if l < unix.SizeofRtAttr || l > len(attrs) {
			break
		}
		if typ == inetDiagSKV6Only && l > unix.SizeofRtAttr {
			return inode, attrs[unix.SizeofRtAttr] != 0, true
		}
		next := (l + unix.RTA_ALIGNTO - 1) &^ (unix.RTA_ALIGNTO - 1)
		if next >= len(attrs) {
			break
		}
		attrs = attrs[next:]
	}
	return 0, false, false
}

// Bounds of the owner search: hosts with many processes or descriptors must
// not turn one check into a long /proc walk.
const (
	maxOwnerLinks   = 200000
	maxOwnerSearch  = time.Second
	maxProcsScanned = 1 << 16
)

// socketOwners maps socket inodes to "name[pid]" by finding the process
// holding a descriptor for each (/proc/PID/fd/N -> socket:[INODE]). Processes
// this agent may not inspect (other users, without root) are skipped, so the
// map may be incomplete; it is a fact for people, never part of a verdict.
func socketOwners(ctx context.Context, inodes []uint64) map[uint64]string {
	owners := map[uint64]string{}
	want := map[string]uint64{}
	for _, i := range inodes {
		want["socket:["+strconv.FormatUint(i, 10)+"]"] = i
	}
	if len(want) == 0 {
		return owners
	}
	proc, err := os.Open("/proc")
	if err != nil {
		return owners
	}
	pids, _ := proc.Readdirnames(maxProcsScanned)
	proc.Close()
	stop := time.Now().Add(maxOwnerSearch)
	budget := maxOwnerLinks
	for _, pid := range pids {
		if _, err := strconv.Atoi(pid); err != nil {
			continue
		}
		if ctx.Err() != nil || time.Now().After(stop) || budget <= 0 {
			break
		}
		dir := "/proc/" + pid + "/fd/"
		d, err := os.Open(dir)
		if err != nil {
			continue // gone, or not ours to see
		}
		fds, _ := d.Readdirnames(budget)
		d.Close()
		for _, fd := range fds {
			budget--
			link, err := os.Readlink(dir + fd)
			if err != nil {
				continue
			}
			inode, ok := want[link]
			if !ok {
				continue
			}
			if _, dup := owners[inode]; !dup { // forked children share it; the first is enough
				comm, _ := os.ReadFile("/proc/" + pid + "/comm")
				owners[inode] = strings.TrimSpace(string(comm)) + "[" + pid + "]"
			}
			if len(owners) == len(want) {
				return owners
			}
		}
	}
	return owners
}

//go:build linux

package probe

import (
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// sockConn is the net.Conn of a socket connectSocket connected: the
// *os.File it already registered with the runtime poller, read and written
// through its RawConn. net.FileConn, used before, dup'd the descriptor,
// registered the copy with the poller a second time, asked the socket's
// type, local and peer address, and its reads and writes went through
// syscall.Syscall, which wakes the runtime's monitor thread (see
// rawsock_linux.go): a TLS probe in BenchmarkAgentProbe made 41 system
// calls, 6.5 of them the monitor's nanosleeps; now 31 and 1.6. It behaves as the *net.TCPConn did: the same
// socket options (TCP_NODELAY, Go's keep-alive defaults), deadlines, and
// errors wrapped the same way (*net.OpError around *os.SyscallError, io.EOF
// bare, net.ErrClosed once closed), so every verdict and detail reads the
// same.
type sockConn struct {
	f            *os.File
	rc           syscall.RawConn
	laddr, raddr net.TCPAddr
	lip, rip     [net.IPv6len]byte // the addresses' IPs, in one allocation with the rest
	closed       atomic.Bool
	rd, wr       sockIO
}

// Go's keep-alive defaults for a *net.TCPConn (net/dial.go).
const (
	keepAliveIdleSecs  = 15
	keepAliveIntvlSecs = 15
	keepAliveCount     = 9
)

// newSockConn makes the socket f of address family domain, connected to
// ip and port, a net.Conn. On error f is left to the caller.
func newSockConn(f *os.File, domain int, ip net.IP, port int) (*sockConn, error) {
	// The connect's write deadline does not carry over to the connection.
	if err := f.SetWriteDeadline(time.Time{}); err != nil {
		return nil, err
	}
	rc, err := f.SyscallConn()
	if err != nil {
		return nil, err
	}
	if ip4 := ip.To4(); ip4 != nil {
		ip = ip4
	}
	c := &sockConn{f: f, rc: rc}
	c.raddr = net.TCPAddr{IP: c.rip[:copy(c.rip[:], ip)], Port: port}
	c.rd.call, c.wr.call = c.rd.read, c.wr.write
	var serr error
	cerr := rc.Control(func(fd uintptr) {
		s := int(fd)
		// Established connections behave like any client's: ICMP soft
		// errors must not become hard errors mid-stream.
		_ = setRecvErr(s, domain, false)
		// As net sets them on a *net.TCPConn, errors ignored.
		for _, o := range [...]struct{ level, opt, v int }{
			{unix.IPPROTO_TCP, unix.TCP_NODELAY, 1},
			{unix.SOL_SOCKET, unix.SO_KEEPALIVE, 1},
			{unix.IPPROTO_TCP, unix.TCP_KEEPIDLE, keepAliveIdleSecs},
			{unix.IPPROTO_TCP, unix.TCP_KEEPINTVL, keepAliveIntvlSecs},
			{unix.IPPROTO_TCP, unix.TCP_KEEPCNT, keepAliveCount},
		} {
			_ = rawSetsockoptInt(s, o.level, o.opt, o.v)
		}
		var rsa unix.RawSockaddrAny
		l := uint32(unix.SizeofSockaddrAny)
		_, _, e := unix.RawSyscall(unix.SYS_GETSOCKNAME, fd, uintptr(unsafe.Pointer(&rsa)), uintptr(unsafe.Pointer(&l)))
		if e != 0 {
			serr = os.NewSyscallError("getsockname", e)
			return
		}
		c.laddr = tcpAddrOfRaw(&rsa, &c.lip)
	})
	if cerr != nil {
		return nil, cerr
	}
	if serr != nil {
		return nil, serr
	}
	return c, nil
}

// tcpAddrOfRaw is the address rsa holds, its IP copied into ip.
func tcpAddrOfRaw(rsa *unix.RawSockaddrAny, ip *[net.IPv6len]byte) net.TCPAddr {
	switch rsa.Addr.Family {
	case unix.AF_INET:
		p := (*unix.RawSockaddrInet4)(unsafe.Pointer(rsa))
		return net.TCPAddr{IP: ip[:copy(ip[:], p.Addr[:])], Port: int(ntohs(p.Port))}
	case unix.AF_INET6:
		p := (*unix.RawSockaddrInet6)(unsafe.Pointer(rsa))
		return net.TCPAddr{IP: ip[:copy(ip[:], p.Addr[:])], Port: int(ntohs(p.Port))}
	}
	return net.TCPAddr{}
}

// ntohs turns a port in network byte order, as the kernel wrote it, into a
// number.
func ntohs(p uint16) uint16 {
	b := (*[2]byte)(unsafe.Pointer(&p))
	return uint16(b[0])<<8 | uint16(b[1])
}

// maxRW caps a single read or write, as the runtime's poller does.
const maxRW = 1 << 30

func (c *sockConn) Read(b []byte) (int, error) {
	if c.closed.Load() {
		return 0, c.opError("read", net.ErrClosed)
	}
	if len(b) == 0 {
		return 0, nil
	}
	if len(b) > maxRW {
		b = b[:maxRW]
	}
	r := &c.rd
	r.mu.Lock()
	defer r.mu.Unlock()
	r.buf, r.n, r.errno = b, 0, 0
	err := c.rc.Read(r.call)
	r.buf = nil
	switch {
	case err != nil:
		return 0, c.opError("read", c.pollErr(err))
	case r.errno != 0:
		return 0, c.opError("read", os.NewSyscallError("read", r.errno))
	case r.n == 0:
		return 0, io.EOF
	}
	return r.n, nil
}

func (c *sockConn) Write(b []byte) (int, error) {
	if c.closed.Load() {
		return 0, c.opError("write", net.ErrClosed)
	}
	w := &c.wr
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf, w.n, w.errno = b, 0, 0
	err := c.rc.Write(w.call)
	w.buf = nil
	switch {
	case err != nil:
		return w.n, c.opError("write", c.pollErr(err))
	case w.errno != 0:
		return w.n, c.opError("write", os.NewSyscallError("write", w.errno))
	case w.n < len(b):
		return w.n, c.opError("write", io.ErrUnexpectedEOF)
	}
	return w.n, nil
}

// sockIO is one direction's call to the poller, kept with the connection
// so that a Read or Write allocates nothing: call is the method value made
// once, buf, n and errno its argument and results, mu keeps them to one
// caller at a time (the poller serialises the calls too).
type sockIO struct {
	mu    sync.Mutex
	call  func(fd uintptr) bool
	buf   []byte
	n     int
	errno syscall.Errno
}

// read is a read's attempt on the non-blocking socket: false asks the
// poller to wait for data.
func (r *sockIO) read(fd uintptr) bool {
	for {
		m, e := sockRead(fd, r.buf)
		switch e {
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			return false
		case 0:
			r.n = m
		default:
			r.errno = e
		}
		return true
	}
}

// write writes all of buf, asking the poller to wait whenever the socket's
// buffer is full.
func (w *sockIO) write(fd uintptr) bool {
	for {
		p := w.buf[w.n:]
		if len(p) > maxRW {
			p = p[:maxRW]
		}
		m, e := sockWrite(fd, p)
		switch e {
		case unix.EINTR:
			continue
		case 0:
			w.n += m
		}
		switch {
		case w.n == len(w.buf):
			return true
		case e == unix.EAGAIN:
			return false
		case e != 0:
			w.errno = e
			return true
		case m == 0:
			return true // Write reports io.ErrUnexpectedEOF, as the poller does
		}
	}
}

func (c *sockConn) Close() error {
	if c.closed.Swap(true) {
		return c.opError("close", net.ErrClosed)
	}
	if err := c.f.Close(); err != nil {
		if pe, ok := err.(*os.PathError); ok {
			err = pe.Err
		}
		return c.opError("close", err)
	}
	return nil
}

// pollErr is the poller's error as a *net.TCPConn's poller says it: after
// Close, net.ErrClosed ("use of closed network connection"), not an
// *os.File's "use of closed file"; a deadline's is the same for both.
func (c *sockConn) pollErr(err error) error {
	if c.closed.Load() {
		return net.ErrClosed
	}
	return err
}

// opError wraps err as a *net.TCPConn's methods do.
func (c *sockConn) opError(op string, err error) error {
	return &net.OpError{Op: op, Net: "tcp", Source: &c.laddr, Addr: &c.raddr, Err: err}
}

func (c *sockConn) LocalAddr() net.Addr  { return &c.laddr }
func (c *sockConn) RemoteAddr() net.Addr { return &c.raddr }

func (c *sockConn) SetDeadline(t time.Time) error      { return c.setErr(c.f.SetDeadline(t)) }
func (c *sockConn) SetReadDeadline(t time.Time) error  { return c.setErr(c.f.SetReadDeadline(t)) }
func (c *sockConn) SetWriteDeadline(t time.Time) error { return c.setErr(c.f.SetWriteDeadline(t)) }

func (c *sockConn) setErr(err error) error {
	if err == nil {
		return nil
	}
	if pe, ok := err.(*os.PathError); ok {
		err = pe.Err
	}
	if c.closed.Load() {
		err = net.ErrClosed
	}
	return &net.OpError{Op: "set", Net: "tcp", Addr: &c.laddr, Err: err}
}

// SyscallConn gives the socket to callers that read its options (the path
// tracer's SYN retransmissions).
func (c *sockConn) SyscallConn() (syscall.RawConn, error) { return c.rc, nil }

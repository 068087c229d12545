package probe

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/beevik/ntp"
)

// ntpMinInterval is NTP's own minimum poll interval (2^6 s): connprobe never
// polls a server more often by default. An interval set in config wins.
const ntpMinInterval = 64 * time.Second

// defaultMaxRootDistance bounds the root distance (root delay / 2 + root
// dispersion + half the RTT) of a usable server, as ntpd and chrony's
// default maxdistance (1.5 s) do.
const defaultMaxRootDistance = 1500 * time.Millisecond

// probeNTP sends one NTP client query (or a few, keeping the lowest-RTT
// reply) on a connected UDP socket and reports three facts separately:
// reachable (a valid, matching reply came back), usable (fit to set a clock
// by) and the local clock's offset against the server. Up is reachable and
// usable.
func probeNTP(ctx context.Context, t Target) Result {
	r := newResult(t)
	samples := t.Check.GetNTP().Samples
	if samples < 1 {
		samples = 1
	}
	begin := time.Now()
	var best *ntp.Response
	var srcPort int
	var lastErr error
	for i := 0; i < samples && ctx.Err() == nil; i++ {
		resp, port, err := queryNTP(ctx, t, samples-i)
		srcPort = port
		if err != nil {
			lastErr = err
			var de *dialError
			if errors.As(err, &de) {
				break // an ICMP error or a local failure: asking again changes nothing
			}
			continue
		}
		if resp.IsKissOfDeath() {
			best, lastErr = resp, nil
			break // a kiss-o'-death asks us to stop: send no more
		}
		if best == nil || resp.RTT < best.RTT {
			best = resp
		}
	}
	r.addTiming(PhaseResponse, time.Since(begin))
	if best == nil {
		if lastErr == nil {
			lastErr = ctx.Err()
		}
		var nr *noReplyError
		if errors.As(lastErr, &nr) {
			// Silence to every sample: the detail states the whole wait.
			lastErr = &noReplyError{Waited: time.Since(begin)}
		}
		res := udpFailure(&r, lastErr, t)
		res.Facts.NTPFacts = &NTPFacts{SourcePort: srcPort}
		return res
	}
	return ntpVerdict(r, best, srcPort, t.Check.GetNTP().MaxRootDistance)
}

// queryNTP runs one query within the share of the time left for it, on a
// socket from dialUDP wrapped in an ntpConn.
func queryNTP(ctx context.Context, t Target, queriesLeft int) (*ntp.Response, int, error) {
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(5 * time.Second)
	}
	perQuery := time.Until(deadline) / time.Duration(queriesLeft)
	if perQuery <= 0 {
		return nil, 0, context.DeadlineExceeded
	}
	var nc *ntpConn
	var dialErr error
	stop := func() {}
	opts := ntp.QueryOptions{
		Timeout: perQuery,
		Dialer: func(string, string) (net.Conn, error) {
			c, err := dialUDP(ctx, t)
			if err != nil {
				dialErr = err
				return nil, err
			}
			nc = &ntpConn{UDPConn: c, ctx: ctx, begin: time.Now()}
			stop = interruptWhenDone(ctx, c.SetDeadline)
			return nc, nil
		},
	}
	resp, err := ntp.QueryWithOptions(t.HostPort(), opts)
	stop()
	srcPort := 0
	if nc != nil {
		srcPort = localPortOf(nc.UDPConn) // the ntp package has closed it
	}
	if dialErr != nil {
		return nil, srcPort, dialErr
	}
	if err == nil {
		return resp, srcPort, nil
	}
	// ntpConn's own errors say what the socket saw; anything else is the ntp
	// package rejecting a reply that did answer our query.
	var de *dialError
	var nr *noReplyError
	var pe *protocolError
	if errors.As(err, &de) || errors.As(err, &nr) || errors.As(err, &pe) {
		return nil, srcPort, err
	}
	return nil, srcPort, &protocolError{Msg: "invalid NTP reply: " + err.Error()}
}

// ntpConn is the connected socket handed to the ntp package. Its reads skip
// datagrams that do not answer our query: RFC 5905 has a client discard a
// reply whose origin timestamp is not its own transmit timestamp (stale,
// another client's, or spoofed) and keep waiting, and a spoofed kiss-o'-death
// must not throttle the check. The package alone gives up at the first such
// datagram, so any stray one would spoil the query. If the wait ends with only
// such datagrams seen, the error says so (protocol, not no_reply: something
// answered, but not our query). Send and receive errors come back classified
// (the ICMP error and its sender read from the error queue, or silence), which
// the ntp package passes through unchanged. (Wrapping the socket
// makes the package timestamp replies in user space instead of the kernel:
// microseconds, irrelevant to a connectivity verdict.)
type ntpConn struct {
	*net.UDPConn
	ctx    context.Context
	begin  time.Time
	xmit   [8]byte // our transmit timestamp, which a reply echoes as its origin
	strays int
}

// ntpHeaderLen is the size of an NTP header without extensions.
const ntpHeaderLen = 48

func (c *ntpConn) Write(b []byte) (int, error) {
	if len(b) >= ntpHeaderLen {
		copy(c.xmit[:], b[40:48])
	}
	n, err := c.UDPConn.Write(b)
	if err != nil {
		return n, &dialError{Op: "send", Err: err, ICMP: connErrQueue(c.UDPConn), Elapsed: time.Since(c.begin)}
	}
	return n, nil
}

func (c *ntpConn) Read(b []byte) (int, error) {
	for {
		n, err := c.UDPConn.Read(b)
		if err != nil {
			icmp := connErrQueue(c.UDPConn)
			if icmp == nil && isTimeout(err) {
				if c.strays > 0 {
					return 0, strayError(c.strays, time.Since(c.begin))
				}
				return 0, &noReplyError{Waited: time.Since(c.begin)}
			}
			return 0, &dialError{Op: "receive", Err: err, ICMP: icmp, Elapsed: time.Since(c.begin)}
		}
		if ntpAnswers(b[:n], c.xmit) {
			return n, nil
		}
		c.strays++
		if c.strays >= maxStrayDatagrams {
			return 0, strayError(c.strays, time.Since(c.begin))
		}
	}
}

// ntpAnswers reports whether datagram b answers the query whose transmit
// timestamp was xmit: a full header whose origin timestamp echoes it.
func ntpAnswers(b []byte, xmit [8]byte) bool {
	return len(b) >= ntpHeaderLen && bytes.Equal(b[24:32], xmit[:])
}

// SetDeadline keeps a cancelled query from waiting on: the ntp package sets
// its own deadline after dialing.
func (c *ntpConn) SetDeadline(t time.Time) error {
	if c.ctx.Err() != nil {
		t = time.Unix(1, 0)
	}
	return c.UDPConn.SetDeadline(t)
}

func ntpVerdict(r Result, resp *ntp.Response, srcPort int, maxRootDistance time.Duration) Result {
	if maxRootDistance <= 0 {
		maxRootDistance = defaultMaxRootDistance
	}
	f := &NTPFacts{
		Reachable:           true,
		OffsetSeconds:       resp.ClockOffset.Seconds(),
		RTTSeconds:          resp.RTT.Seconds(),
		Stratum:             int(resp.Stratum),
		Leap:                int(resp.Leap),
		RootDistanceSeconds: resp.RootDistance.Seconds(),
		ReferenceID:         resp.ReferenceString(),
		SourcePort:          srcPort,
	}
	r.Facts.NTPFacts = f
	r.Phase = PhaseResponse
	from := fmt.Sprintf("from source port %d", srcPort)

	if resp.IsKissOfDeath() {
		f.KissCode = resp.KissCode
		r.Reason = ReasonProtocol
		switch resp.KissCode {
		case "RATE":
			r.Throttle = ThrottleBackoff
			r.Detail = "kiss-o'-death RATE: the server asks to be polled less often; connprobe backs off"
		case "DENY", "RSTR":
			r.Throttle = ThrottleStop
			r.Detail = fmt.Sprintf("kiss-o'-death %s: the server refuses to serve this host; connprobe stops querying it until the configuration changes", resp.KissCode)
		default:
			r.Detail = fmt.Sprintf("kiss-o'-death %q: the server will not serve time now", printable([]byte(resp.KissCode)))
		}
		return r
	}

	var unfit []string
	if resp.Stratum < 1 || resp.Stratum > 15 {
		unfit = append(unfit, fmt.Sprintf("stratum %d: the server is not synchronised", resp.Stratum))
	}
	if resp.Leap == ntp.LeapNotInSync {
		unfit = append(unfit, "leap indicator 3: the server's clock is not synchronised")
	}
	// Validate reports only its first finding; stratum and leap are said
	// above in plainer words.
	if err := resp.Validate(); err != nil && !errors.Is(err, ntp.ErrInvalidStratum) && !errors.Is(err, ntp.ErrInvalidLeapSecond) {
		unfit = append(unfit, ntpValidationText(err))
	}
	if resp.RootDistance > maxRootDistance {
		unfit = append(unfit, fmt.Sprintf("root distance %s exceeds %s", resp.RootDistance.Round(time.Millisecond), maxRootDistance))
	}
	if len(unfit) > 0 {
		r.Reason = ReasonProtocol
		r.Detail = fmt.Sprintf("reachable but not usable (%s); stratum %d, offset %s %s",
			strings.Join(unfit, "; "), resp.Stratum, resp.ClockOffset.Round(time.Microsecond), from)
		return r
	}
	f.Usable = true
	r.Up, r.Reason = true, ReasonOK
	r.Detail = fmt.Sprintf("stratum %d (ref %s), offset %s, rtt %s, root distance %s %s",
		resp.Stratum, f.ReferenceID, resp.ClockOffset.Round(time.Microsecond), resp.RTT.Round(time.Microsecond),
		resp.RootDistance.Round(time.Microsecond), from)
	return r
}

// ntpValidationText says what a failed Response.Validate means.
func ntpValidationText(err error) string {
	switch {
	case errors.Is(err, ntp.ErrServerClockFreshness):
		return "the server's clock was last set more than 36 hours ago (reference time not fresh)"
	case errors.Is(err, ntp.ErrInvalidDispersion):
		return "root delay / 2 + root dispersion exceeds 16s (invalid dispersion)"
	case errors.Is(err, ntp.ErrInvalidTime):
		return "the server's transmit time is before its reference time (invalid time)"
	}
	return "invalid reply: " + err.Error()
}

package probe

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"syscall"
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
	samples := t.Check.NTP.Samples
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
		res := udpFailure(&r, lastErr, t)
		res.Facts.NTPFacts = &NTPFacts{SourcePort: srcPort}
		return res
	}
	return ntpVerdict(r, best, srcPort, t.Check.NTP.MaxRootDistance)
}

// queryNTP runs one query within the share of the time left for it. The
// socket is duplicated so its ICMP error queue can still be read after the
// ntp package has closed its side.
func queryNTP(ctx context.Context, t Target, queriesLeft int) (*ntp.Response, int, error) {
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(5 * time.Second)
	}
	perQuery := time.Until(deadline) / time.Duration(queriesLeft)
	if perQuery <= 0 {
		return nil, 0, context.DeadlineExceeded
	}
	var dup *os.File
	var srcPort int
	var dialErr error
	opts := ntp.QueryOptions{
		Timeout: perQuery,
		Dialer: func(string, string) (net.Conn, error) {
			c, err := dialUDP(ctx, t)
			if err != nil {
				dialErr = err
				return nil, err
			}
			srcPort = localPortOf(c)
			if f, err := c.File(); err == nil {
				dup = f
			}
			return c, nil
		},
	}
	resp, err := ntp.QueryWithOptions(t.HostPort(), opts)
	if dup != nil {
		defer dup.Close()
	}
	switch {
	case dialErr != nil:
		return nil, srcPort, dialErr
	case err == nil:
		return resp, srcPort, nil
	}
	var icmp *ICMPError
	if dup != nil {
		icmp = connErrQueue(dup)
	}
	if icmp != nil {
		return nil, srcPort, &DialError{Op: "receive", Err: err, ICMP: icmp}
	}
	if isTimeout(err) {
		return nil, srcPort, &NoReplyError{Waited: perQuery}
	}
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return nil, srcPort, &DialError{Op: "receive", Err: err}
	}
	// The ntp package rejects replies that do not answer our query.
	return nil, srcPort, &ProtocolError{Msg: "invalid NTP reply: " + err.Error()}
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
	if err := resp.Validate(); err != nil {
		unfit = append(unfit, err.Error())
	}
	if resp.Leap == ntp.LeapNotInSync && !containsFold(unfit, "leap") {
		unfit = append(unfit, "leap indicator 3: the server's clock is not synchronised")
	}
	if resp.Stratum < 1 || resp.Stratum > 15 {
		if !containsFold(unfit, "stratum") {
			unfit = append(unfit, fmt.Sprintf("stratum %d: the server is not synchronised", resp.Stratum))
		}
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

func containsFold(list []string, sub string) bool {
	for _, s := range list {
		if strings.Contains(strings.ToLower(s), sub) {
			return true
		}
	}
	return false
}

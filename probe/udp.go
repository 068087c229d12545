package probe

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"golang.org/x/net/dns/dnsmessage"
)

// probeUDP sends one datagram and waits for a matching reply. A reply proves
// the port is open end to end; silence proves nothing either way (no_reply).
func probeUDP(ctx context.Context, t Target) Result {
	r := newResult(t)
	req, match, describe, err := udpRequest(t.Check.GetUDP())
	if err != nil {
		r.Reason, r.Detail = ReasonInternalError, err.Error()
		return r
	}
	begin := time.Now()
	conn, err := dialUDP(ctx, t)
	if err != nil {
		r.addTiming(PhaseConnect, time.Since(begin))
		return fail(&r, PhaseConnect, err, t.Addr)
	}
	defer conn.Close()
	facts := &UDPFacts{SourcePort: localPortOf(conn)}
	r.Facts.UDPFacts = facts

	reply, rtt, err := exchangeUDP(ctx, conn, req, match)
	r.addTiming(PhaseResponse, time.Since(begin))
	if err != nil {
		return udpFailure(&r, err, t)
	}
	facts.ReplyBytes, facts.RTTSeconds = len(reply), rtt.Seconds()
	r.Up, r.Reason, r.Phase = true, ReasonOK, PhaseResponse
	r.Detail = fmt.Sprintf("%s: reply of %d bytes in %s from source port %d",
		describe(reply), len(reply), rtt.Round(time.Microsecond), facts.SourcePort)
	if len(reply) >= maxDatagram {
		r.Detail += fmt.Sprintf(" (the reply may have been longer: reads are truncated at %d bytes)", maxDatagram)
	}
	return r
}

// udpFailure classifies a failed exchange: a socket that could not be set up
// (e.g. a taken source port) stops in phase connect, a send error in phase
// request, everything after it (ICMP errors, silence) in phase response.
// Silence on a check that expects none is up, and says what it proves.
func udpFailure(r *Result, err error, t Target) Result {
	phase := PhaseResponse
	var de *dialError
	if errors.As(err, &de) {
		switch de.Op {
		case "connect":
			phase = PhaseConnect
		case "send":
			phase = PhaseRequest
		}
	}
	res := fail(r, phase, err, t.Addr)
	if res.Reason == ReasonNoReply && t.Check.GetUDP().AcceptSilence {
		res.Up = true
		res.Detail = "no reply, as configured (expect_reply: false): this proves only that nothing on the path rejected the datagram"
	}
	return res
}

// udpRequest builds the request bytes, a matcher for its reply and a short
// description of a reply, for the configured payload.
func udpRequest(o UDPOptions) (req []byte, match func([]byte) bool, describe func([]byte) string, err error) {
	switch o.Payload {
	case "echo":
		token := make([]byte, 16)
		_, _ = rand.Read(token)
		req = []byte("connprobe-echo-" + hex.EncodeToString(token))
		return req, func(b []byte) bool { return bytes.Contains(b, req) },
			func([]byte) string { return "echo token returned" }, nil
	case "stun":
		return stunRequest()
	case "dns":
		return dnsRequest(o.Query)
	case "":
		if len(o.Send) == 0 {
			return nil, nil, nil, fmt.Errorf("udp check has neither a payload nor bytes to send")
		}
		return o.Send, func([]byte) bool { return true },
			func(b []byte) string { return fmt.Sprintf("reply %q", printable(b)) }, nil
	}
	return nil, nil, nil, fmt.Errorf("unknown udp payload %q (echo, stun, dns)", o.Payload)
}

// stunMagicCookie is RFC 5389's fixed value in every STUN message.
const stunMagicCookie = 0x2112A442

func stunRequest() ([]byte, func([]byte) bool, func([]byte) string, error) {
	req := make([]byte, 20)
	binary.BigEndian.PutUint16(req[0:2], 0x0001) // Binding Request
	binary.BigEndian.PutUint16(req[2:4], 0)      // no attributes
	binary.BigEndian.PutUint32(req[4:8], stunMagicCookie)
	_, _ = rand.Read(req[8:20]) // transaction ID
	match := func(b []byte) bool {
		if len(b) < 20 || binary.BigEndian.Uint32(b[4:8]) != stunMagicCookie || !bytes.Equal(b[8:20], req[8:20]) {
			return false
		}
		typ := binary.BigEndian.Uint16(b[0:2])
		return typ == 0x0101 || typ == 0x0111 // success or error response
	}
	describe := func(b []byte) string {
		if binary.BigEndian.Uint16(b[0:2]) == 0x0111 {
			return "STUN error response (the server answered)"
		}
		return "STUN binding success"
	}
	return req, match, describe, nil
}

func dnsRequest(name string) ([]byte, func([]byte) bool, func([]byte) string, error) {
	if name == "" {
		name = "."
	}
	if name[len(name)-1] != '.' {
		name += "."
	}
	qname, err := dnsmessage.NewName(name)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("dns query name %q: %w", name, err)
	}
	var idb [2]byte
	_, _ = rand.Read(idb[:])
	id := binary.BigEndian.Uint16(idb[:])
	qtype := dnsmessage.TypeA
	if name == "." {
		qtype = dnsmessage.TypeNS
	}
	msg := dnsmessage.Message{
		Header:    dnsmessage.Header{ID: id, RecursionDesired: true},
		Questions: []dnsmessage.Question{{Name: qname, Type: qtype, Class: dnsmessage.ClassINET}},
	}
	req, err := msg.Pack()
	if err != nil {
		return nil, nil, nil, err
	}
	match := func(b []byte) bool {
		var p dnsmessage.Parser
		h, err := p.Start(b)
		return err == nil && h.Response && h.ID == id
	}
	describe := func(b []byte) string {
		var p dnsmessage.Parser
		h, _ := p.Start(b)
		return fmt.Sprintf("DNS answer (rcode %s)", dnsRCodeName(h.RCode))
	}
	return req, match, describe, nil
}

// dnsRCodeName is the usual mnemonic of a DNS response code (RFC 6895).
func dnsRCodeName(rc dnsmessage.RCode) string {
	switch rc {
	case dnsmessage.RCodeSuccess:
		return "NOERROR"
	case dnsmessage.RCodeFormatError:
		return "FORMERR"
	case dnsmessage.RCodeServerFailure:
		return "SERVFAIL"
	case dnsmessage.RCodeNameError:
		return "NXDOMAIN"
	case dnsmessage.RCodeNotImplemented:
		return "NOTIMP"
	case dnsmessage.RCodeRefused:
		return "REFUSED"
	}
	return fmt.Sprintf("%d", rc)
}

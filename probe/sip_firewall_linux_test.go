//go:build linux

package probe_test

import (
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/connprobe/connprobe/internal/netlab"
	"github.com/connprobe/connprobe/probe"
)

// SIP over UDP through a router, against real packets: the same verdicts as
// the udp kind, since SIP over UDP gets only silence or ICMP back when
// something on the path filters it. Needs root (else skips).

// sipLabResponder answers every OPTIONS on the server with 200 OK, echoing
// the fields a response must echo; it returns the check that targets it.
func sipLabResponder(t *testing.T, lab *netlab.Lab) *probe.Check {
	t.Helper()
	pc := lab.ListenUDP(lab.Server(), net.JoinHostPort(lab.ServerIP().String(), "0"))
	go func() {
		buf := make([]byte, 8192)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return // closed on cleanup
			}
			out := []string{"SIP/2.0 200 OK"}
			for _, l := range strings.Split(string(buf[:n]), "\r\n")[1:] {
				k, _, _ := strings.Cut(l, ":")
				switch strings.ToLower(k) {
				case "via", "from", "to", "call-id", "cseq":
					out = append(out, l)
				}
			}
			out = append(out, "Server: NetlabPBX", "Content-Length: 0", "", "")
			_, _ = pc.WriteTo([]byte(strings.Join(out, "\r\n")), from)
		}
	}()
	return &probe.Check{
		Name: "fw", Kind: "sip", Transport: "udp", Host: lab.ServerIP().String(),
		Port: pc.LocalAddr().(*net.UDPAddr).Port, Timeout: 2 * time.Second,
	}
}

func TestSIPFirewall(t *testing.T) {
	var cases []fwCase
	for _, tc := range []struct {
		name            string
		rule            []string // router FORWARD rule for the SIP port, if any
		reason          probe.Reason
		detail          func(lab *netlab.Lab) string
		atLeast, atMost time.Duration
	}{
		{
			name:   "open",
			reason: probe.ReasonOK,
			detail: func(*netlab.Lab) string { return `SIP 200 OK (server "NetlabPBX") over UDP` },
			atMost: time.Second,
		},
		{
			name:   "router_drop",
			rule:   []string{"-j", "DROP"},
			reason: probe.ReasonNoReply,
			detail: func(*netlab.Lab) string { return "OPTIONS sends and no ICMP error within" },
			// It waits out the whole timeout, resending.
			atLeast: 1900 * time.Millisecond, atMost: 3500 * time.Millisecond,
		},
		{
			name:   "router_reject_admin_prohibited",
			rule:   []string{"-j", "REJECT", "--reject-with", "icmp-admin-prohibited"},
			reason: probe.ReasonRejected,
			detail: func(lab *netlab.Lab) string {
				return "(communication administratively prohibited) from " + lab.RouterClientSideIP().String() + ", a device on the path"
			},
			atMost: time.Second,
		},
	} {
		cases = append(cases, fwCase{
			name: tc.name,
			setup: func(t *testing.T, lab *netlab.Lab) *probe.Check {
				c := sipLabResponder(t, lab)
				if tc.rule != nil {
					lab.IPTables(lab.Router(), append([]string{"-A", "FORWARD", "-p", "udp", "--dport", strconv.Itoa(c.Port)}, tc.rule...)...)
				}
				return c
			},
			reason: tc.reason, phase: probe.PhaseResponse,
			detail:  func(lab *netlab.Lab) []string { return []string{tc.detail(lab)} },
			atLeast: tc.atLeast, atMost: tc.atMost,
		})
	}
	runFwCases(t, cases)
}

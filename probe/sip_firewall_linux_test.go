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
	if err := netlab.Available(); err != nil {
		t.Skipf("netlab: %v", err)
	}
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
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			lab := netlab.New(t)
			c := sipLabResponder(t, lab)
			if tc.rule != nil {
				lab.IPTables(lab.Router(), append([]string{"-A", "FORWARD", "-p", "udp", "--dport", strconv.Itoa(c.Port)}, tc.rule...)...)
			}
			r := fwRun(t, lab, c)
			t.Logf("%s -> %s (phase %s, %s): %s", tc.name, r.Reason, r.Phase, r.Duration.Round(time.Millisecond), r.Detail)
			if r.Reason != tc.reason || r.Phase != probe.PhaseResponse || r.Up != (tc.reason == probe.ReasonOK) {
				t.Errorf("got up=%v reason %q phase %q, want reason %q phase response", r.Up, r.Reason, r.Phase, tc.reason)
			}
			if want := tc.detail(lab); !strings.Contains(r.Detail, want) {
				t.Errorf("detail %q does not contain %q", r.Detail, want)
			}
			if tc.atLeast > 0 && r.Duration < tc.atLeast {
				t.Errorf("took %s, want at least %s", r.Duration, tc.atLeast)
			}
			if tc.atMost > 0 && r.Duration > tc.atMost {
				t.Errorf("took %s, want at most %s", r.Duration, tc.atMost)
			}
		})
	}
}

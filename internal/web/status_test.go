package web

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/connprobe/connprobe/internal/results"
	"github.com/connprobe/connprobe/probe"
)

func TestStatusPageDemoSite(t *testing.T) {
	srv := newDemoSite(t).server(t)
	resp, err := client.Get(srv.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/html; charset=utf-8" {
		t.Errorf("content type %q", ct)
	}
	// No script may run, and nothing may be loaded from elsewhere: the agent
	// has no internet.
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") || strings.Contains(csp, "unsafe") {
		t.Errorf("Content-Security-Policy %q does not forbid scripts and external assets", csp)
	}
	code, body := get(t, http.MethodGet, srv.URL+"/")
	if code != http.StatusOK {
		t.Fatalf("status page: %d", code)
	}
	for _, bad := range []string{"<script", "http://", "https://", "@import"} {
		if strings.Contains(body, bad) {
			t.Errorf("the page contains %q: it must need no script and no external asset", bad)
		}
	}
	text := visibleText(body)
	for _, want := range []string{
		`<meta http-equiv="refresh" content="30">`,
		`name="viewport"`,
		`title="14:23:06 CET rejected"`, // a strip cell names its time and zone
	} {
		if !strings.Contains(body, want) {
			t.Errorf("the page lacks %s", want)
		}
	}
	for _, want := range []string{
		"updated 2026-12-05 14:37:00 CET",
		"clover NOT READY 2 of 3 essential checks fail: cloud-https rejected; ntp no_reply 1 warning",
		"Custom checks INCOMPLETE 1 of 2 essential checks not checked: 1 not run yet",
		"since 2026-12-05 14:23:06 CET (13 min)",
		"ICMP destination unreachable (net unreachable) from 192.168.1.1",
		"1 192.168.1.1 0.4 ms net unreachable",
		"1 192.168.1.1 0.5 ms time exceeded 2 * 3 *",
		"set --param clover.emv_host=... (the payment processor's EMV endpoint)",
		"e.g. port 10007: ipv4 192.168.1.40 no_reply (no answer) in response",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("the page text lacks %q", want)
		}
	}
	assertOrder(t, text, "Failing essential checks", demoFailHTTPS, demoFailNTP,
		"Warnings", demoWarnHTTP, demoWarnRange, "Not checked", demoPending, demoSkipped, "Working", demoOK)
	// The headline cards come in config order, custom checks last.
	assertOrder(t, text, "clover NOT READY", "timesensor-legal-365-client READY", "Custom checks INCOMPLETE")
	// Twenty cells per strip: a check that ran 20 times draws no empty cell.
	if n := strings.Count(body, `<span class="none"`); n != 0 {
		t.Errorf("%d empty strip cells for checks with a full history", n)
	}
}

// page renders the status page of store and status at demoNow.
func page(t *testing.T, store *results.Store, st AgentStatus) string {
	t.Helper()
	opts := (&demoSite{store: store, status: st}).handlerOptions()
	srv := httptest.NewServer(New(opts))
	t.Cleanup(srv.Close)
	code, body := get(t, http.MethodGet, srv.URL+"/")
	if code != http.StatusOK {
		t.Fatalf("status page: %d", code)
	}
	return body
}

func tcpCheck(profile, name string, essential bool) *probe.Check {
	return &probe.Check{Profile: profile, Name: name, Kind: "tcp", Host: "192.0.2.1", Port: 443, Network: "tcp", Essential: essential}
}

func result(c *probe.Check, reason probe.Reason) []probe.Result {
	return []probe.Result{{Check: c, Address: "192.0.2.1", IPFamily: probe.FamilyIPv4, Up: reason == probe.ReasonOK, Reason: reason}}
}

func TestHeadlineStates(t *testing.T) {
	for _, tc := range []struct {
		name    string
		setup   func(s *results.Store) AgentStatus
		want    string
		notWant string
	}{
		{"all pass", func(s *results.Store) AgentStatus {
			a, b := tcpCheck("p", "a", true), tcpCheck("p", "b", false)
			s.SetChecks([]*probe.Check{a, b})
			s.Put(a, result(a, probe.ReasonOK))
			s.Put(b, result(b, probe.ReasonRefused))
			return AgentStatus{}
		}, "p READY its essential check passes 1 warning", "NOT READY"},
		{"a failing essential wins over a pending one", func(s *results.Store) AgentStatus {
			a, b := tcpCheck("p", "a", true), tcpCheck("p", "b", true)
			s.SetChecks([]*probe.Check{a, b})
			s.Put(a, result(a, probe.ReasonTimeout))
			return AgentStatus{}
		}, "p NOT READY 1 of 2 essential checks fails: a timeout", "INCOMPLETE"},
		{"a skipped essential check is incomplete", func(s *results.Store) AgentStatus {
			a := tcpCheck("p", "a", true)
			s.SetChecks([]*probe.Check{a})
			s.Put(a, result(a, probe.ReasonOK))
			return AgentStatus{Skipped: []Skipped{{Profile: "p", Check: "emv", Essential: true, Detail: "set it"}}}
		}, "p INCOMPLETE 1 of 2 essential checks not checked: 1 skipped for a missing setting", "READY all"},
		{"a skipped informational check is not", func(s *results.Store) AgentStatus {
			a := tcpCheck("p", "a", true)
			s.SetChecks([]*probe.Check{a})
			s.Put(a, result(a, probe.ReasonOK))
			return AgentStatus{Skipped: []Skipped{{Profile: "p", Check: "sip", Detail: "set it"}}}
		}, "p READY its essential check passes", "INCOMPLETE"},
		{"no essential checks", func(s *results.Store) AgentStatus {
			a := tcpCheck("", "a", false)
			s.SetChecks([]*probe.Check{a})
			s.Put(a, result(a, probe.ReasonOK))
			return AgentStatus{}
		}, "Custom checks READY no essential checks", "NOT READY"},
		{"nothing configured", func(s *results.Store) AgentStatus { return AgentStatus{} }, "No checks configured", "READY"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := results.New()
			st := tc.setup(s)
			text := visibleText(page(t, s, st))
			if !strings.Contains(text, tc.want) {
				t.Errorf("page lacks %q:\n%s", tc.want, text)
			}
			if strings.Contains(text, tc.notWant) {
				t.Errorf("page has %q:\n%s", tc.notWant, text)
			}
		})
	}
}

func TestStatusPageEscapesEverything(t *testing.T) {
	s := results.New()
	evil := `<script>alert("x")</script>`
	c := &probe.Check{Profile: evil, Name: "n" + evil, Kind: "tcp", Host: "h" + evil, Port: 1, Network: "tcp", Essential: true,
		Meta: &probe.CheckMeta{Purpose: evil}}
	s.SetChecks([]*probe.Check{c})
	s.Put(c, []probe.Result{{Check: c, Address: evil, IPFamily: evil, Reason: probe.Reason(evil), Phase: probe.Phase(evil),
		Detail: "server said " + evil, Path: &probe.Path{Location: probe.PathLocation(evil), Address: evil,
			Hops: []probe.PathHop{{Hop: 1, Address: evil, ICMP: evil}}}}})
	body := page(t, s, AgentStatus{ReloadError: evil, Skipped: []Skipped{{Profile: evil, Check: evil, Essential: true, Detail: evil}},
		Uplink: &Uplink{Location: probe.PathUpstream, Gateway: evil, Address: evil, Hop: 2, Detail: evil}})
	if strings.Contains(body, "<script") {
		t.Error("an unescaped <script> from a check, result or status reached the page")
	}
	if n := strings.Count(body, "&lt;script&gt;"); n < 10 {
		t.Errorf("only %d escaped copies of the script tag; the hostile strings were dropped, not shown", n)
	}
}

func TestStatusPageBoundedWithTenThousandChecks(t *testing.T) {
	s := results.New()
	var checks []*probe.Check
	// 5,000 single checks, half failing essential; 50 ranges of 100 ports.
	for i := range 5000 {
		checks = append(checks, &probe.Check{Name: fmt.Sprintf("c%d", i), Kind: "tcp", Host: "192.0.2.1", Port: 1 + i,
			Network: "tcp", Essential: true})
	}
	for r := range 50 {
		for p := range 100 {
			checks = append(checks, &probe.Check{Name: fmt.Sprintf("r%d", r), Kind: "udp", Host: "192.0.2.2", Port: 20000 + r*100 + p,
				Network: "udp", Range: fmt.Sprintf("%d-%d", 20000+r*100, 20099+r*100)})
		}
	}
	s.SetChecks(checks)
	detail := strings.Repeat("x", 10000)
	for range 3 {
		for i, c := range checks {
			reason := probe.ReasonOK
			if i%2 == 0 {
				reason = probe.ReasonRefused
			}
			rs := result(c, reason)
			rs[0].Detail = detail
			rs[0].Path = &probe.Path{Location: probe.PathUpstream, Hop: 40, Hops: make([]probe.PathHop, 40)}
			s.Put(c, rs)
		}
	}
	start := time.Now()
	body := page(t, s, AgentStatus{ReloadError: strings.Repeat("e", 100000)})
	elapsed := time.Since(start)
	if len(body) > 1<<20 {
		t.Errorf("the page is %d bytes with 10,000 checks; want at most 1 MiB", len(body))
	}
	text := visibleText(body)
	for _, want := range []string{
		"Custom checks NOT READY 2500 of 5000 essential checks fail",
		"and 2300 more not listed here", // 2,500 failing, 200 listed
		"50 of 100 ports fail 50 refused, 50 ok",
		"refused (refused by the target): 20000, 20002, 20004",
		"… 26 more", // 50 failing ports, 24 named
		"24 more hops",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	if strings.Contains(body, strings.Repeat("x", maxDetail+1)) {
		t.Error("a 10,000-byte detail was not cut")
	}
	t.Logf("page with 10,000 checks: %d bytes in %v", len(body), elapsed)
}

func TestFoldPorts(t *testing.T) {
	for _, tc := range []struct {
		ports []int
		limit int
		want  string
	}{
		{[]int{5}, 3, "5"},
		{[]int{3, 1, 2, 7, 9, 10}, 3, "1-3, 7, 9-10"},
		{[]int{1, 3, 5, 7, 9}, 2, "1, 3, … 3 more"},
	} {
		if got := foldPorts(tc.ports, tc.limit); got != tc.want {
			t.Errorf("foldPorts(%v, %d) = %q, want %q", tc.ports, tc.limit, got, tc.want)
		}
	}
}

// The page shows the path in probe.Path's own words, the one rendering.
func TestPathWords(t *testing.T) {
	for _, pa := range []*probe.Path{
		{Location: probe.PathThisHost},
		{Location: probe.PathGateway, Hop: 1, Address: "192.0.2.254", Rejected: true},
		{Location: probe.PathUpstream, Hop: 3, Address: "198.51.100.9", Hops: []probe.PathHop{{Hop: 1, Address: "192.0.2.254"}}},
		{Location: probe.PathUnknown},
	} {
		got, want := pathOf(pa).Where, pa.Phrase()
		if !strings.EqualFold(got, want) || got == "" {
			t.Errorf("%s reads %q, want %q", pa.Location, got, want)
		}
	}
}

package oneshot

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/connprobe/connprobe/probe"
	"github.com/connprobe/connprobe/targets"
)

// render prints the table of an outcome as `probe check` does.
func render(t *testing.T, checks []*probe.Check, out Outcome, skipped []targets.Skipped, opts TableOptions) string {
	t.Helper()
	var buf bytes.Buffer
	tb := NewTable(&buf, checks, opts)
	if err := tb.Open(); err != nil {
		t.Fatal(err)
	}
	if opts.Stream {
		for _, c := range checks {
			var rs []probe.Result
			for _, r := range out.Results {
				if r.Check == c {
					rs = append(rs, r)
				}
			}
			if !containsCheck(out.NotRun, c) {
				tb.Finished(c, rs)
			}
		}
	}
	if err := tb.Close(NewReport(out, skipped)); err != nil {
		t.Fatal(err)
	}
	return buf.String()
}

func containsCheck(cs []*probe.Check, c *probe.Check) bool {
	for _, x := range cs {
		if x == c {
			return true
		}
	}
	return false
}

func checksOf(results []probe.Result) []*probe.Check {
	var out []*probe.Check
	for _, r := range results {
		if !containsCheck(out, r.Check) {
			out = append(out, r.Check)
		}
	}
	return out
}

func TestTableRowsFamilyAndSummary(t *testing.T) {
	c1 := &probe.Check{Name: "https", Kind: "tls", Host: "a.example", Port: 443, Network: "tcp", Essential: true}
	c2 := &probe.Check{Name: "web", Kind: "tcp", Host: "b.example", Port: 80, Network: "tcp", Essential: false}
	results := []probe.Result{
		{Check: c1, Address: "192.0.2.1", IPFamily: probe.FamilyIPv4, Reason: probe.ReasonTimeout, Phase: probe.PhaseConnect,
			Detail: "no answer\nsecond line", Duration: 5 * time.Second},
		{Check: c1, Address: "2001:db8::1", IPFamily: probe.FamilyIPv6, Up: true, Reason: probe.ReasonOK, Phase: probe.PhaseTLS},
		{Check: c2, Address: "192.0.2.2", IPFamily: probe.FamilyIPv4, Reason: probe.ReasonRefused, Phase: probe.PhaseConnect},
	}
	out := render(t, checksOf(results), Outcome{Results: results}, nil, TableOptions{})
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	want := []string{
		"VERDICT  PROFILE  CHECK  KIND  TARGET             ADDRESS      FAMILY  REASON   PHASE    LATENCY  DETAIL",
		"FAIL     -        https  tls   a.example:443/tcp  192.0.2.1    ipv4    timeout  connect  5s       no answer second line",
		"OK       -        https  tls   a.example:443/tcp  2001:db8::1  ipv6    ok       tls      -",
		"WARN     -        web    tcp   b.example:80/tcp   192.0.2.2    ipv4    refused  connect  -",
		"",
		// Two checks, three results: both counts, so 2 failed results do not read as 2 checks.
		"checks:  0 ok, 2 failed (1 essential), 0 not run",
		"results: 1 ok, 2 failed (1 essential), 0 not run (one per port and address family)",
		"",
		"custom checks: NOT READY (1 of 1 essential checks fail: https 443/tcp timeout)",
	}
	if !reflect.DeepEqual(lines, want) {
		t.Errorf("table:\n%s\nwant:\n%s", out, strings.Join(want, "\n"))
	}
	if strings.Contains(out, "\x1b[") {
		t.Error("colours without Color")
	}
}

// rangeOutcome is a 10-port UDP range: 7 refused, 2 no_reply, 1 never run.
func rangeOutcome() ([]*probe.Check, Outcome) {
	var checks []*probe.Check
	var out Outcome
	for port := 23100; port < 23110; port++ {
		c := &probe.Check{Profile: "kaspersky", Name: "nagent", Kind: "udp", Host: "ksc.lan", Port: port, Network: "udp",
			Range: "23100-23109", Essential: true}
		checks = append(checks, c)
		r := probe.Result{Check: c, Address: "192.0.2.7", IPFamily: probe.FamilyIPv4, Reason: probe.ReasonRefused,
			Phase: probe.PhaseResponse, Detail: fmt.Sprintf("port %d unreachable", port), Duration: time.Millisecond}
		switch port {
		case 23104, 23105:
			r.Reason, r.Detail, r.Duration = probe.ReasonNoReply, "no reply", 2*time.Second
		case 23109:
			r = notRunResult(c)
			out.NotRun = append(out.NotRun, c)
		}
		out.Results = append(out.Results, r)
	}
	return checks, out
}

func TestRangeFoldsIntoOneRowPerVerdict(t *testing.T) {
	checks, out := rangeOutcome()
	table := render(t, checks, out, nil, TableOptions{})
	rows := strings.Split(table, "\n")[1:4]
	for i, want := range []string{
		"ksc.lan:23100-23109/udp  192.0.2.7  ipv4    refused  response  1ms      23100-23103,23106-23108: 7 refused",
		"ksc.lan:23100-23109/udp  192.0.2.7  ipv4    no_reply  response  2s       23104-23105: 2 no_reply",
		"23109: not run: interrupted",
	} {
		if !strings.Contains(strings.Join(strings.Fields(rows[i]), " "), strings.Join(strings.Fields(want), " ")) {
			t.Errorf("row %d = %q, want it to hold %q", i, rows[i], want)
		}
	}
	if !strings.HasPrefix(rows[2], "NOT RUN") {
		t.Errorf("not-run row %q", rows[2])
	}
	for _, want := range []string{
		"checks:  0 ok, 1 failed (1 essential), 0 not run\n",
		"results: 0 ok, 9 failed (9 essential), 1 not run (",
		"kaspersky: NOT READY (1 of 1 essential checks fail: nagent 23100-23109/udp refused,no_reply (9 of 10 ports))\n",
	} {
		if !strings.Contains(table, want) {
			t.Errorf("table lacks %q:\n%s", want, table)
		}
	}

	// --wide: one row per port.
	wide := render(t, checks, out, nil, TableOptions{Wide: true})
	if n := strings.Count(wide, "ksc.lan:231"); n != 10 {
		t.Errorf("wide table has %d port rows, want 10:\n%s", n, wide)
	}
}

func TestPortList(t *testing.T) {
	for _, tc := range []struct {
		ports []int
		want  string
	}{
		{[]int{5}, "5"},
		{[]int{3, 1, 2}, "1-3"},
		{[]int{1, 2, 4, 6, 7, 7}, "1-2,4,6-7"},
	} {
		if got := portList(tc.ports); got != tc.want {
			t.Errorf("portList(%v) = %q, want %q", tc.ports, got, tc.want)
		}
	}
}

var skippedEMV = targets.Skipped{Profile: "clover", Check: "emv-udp", Level: "essential", Essential: true,
	Missing: []string{"emv_host"}, Hint: "--param clover.emv_host=emv.processor.example.com",
	Detail: "set --param clover.emv_host=... (the payment processor's EMV endpoint)"}

// Exit codes: 0 only when every essential check ran and passed; 1 wins over
// 130 (interrupted), 130 over 3 (an essential check skipped).
func TestExitCodesAndReadiness(t *testing.T) {
	ess := &probe.Check{Profile: "clover", Name: "cloud-https", Kind: "tls", Host: "api.clover.com", Port: 443, Network: "tcp", Essential: true}
	opt := &probe.Check{Profile: "clover", Name: "web", Kind: "tcp", Host: "h", Port: 80, Network: "tcp"}
	ok := func(c *probe.Check) probe.Result { return probe.Result{Check: c, Up: true, Reason: probe.ReasonOK} }
	bad := func(c *probe.Check) probe.Result { return probe.Result{Check: c, Reason: probe.ReasonRefused} }
	notRun := func(c *probe.Check) Outcome {
		return Outcome{Results: []probe.Result{notRunResult(c)}, NotRun: []*probe.Check{c}}
	}
	join := func(os ...Outcome) Outcome {
		var out Outcome
		for _, o := range os {
			out.Results = append(out.Results, o.Results...)
			out.NotRun = append(out.NotRun, o.NotRun...)
		}
		return out
	}
	res := func(rs ...probe.Result) Outcome { return Outcome{Results: rs} }
	for _, tc := range []struct {
		name      string
		out       Outcome
		skipped   []targets.Skipped
		code      int
		readiness string
	}{
		{"all pass", res(ok(ess), bad(opt)), nil, ExitOK, Ready},
		{"essential fails", res(bad(ess), ok(opt)), nil, ExitFailed, NotReady},
		{"essential skipped", res(ok(ess)), []targets.Skipped{skippedEMV}, ExitIncomplete, Incomplete},
		{"interrupted", join(res(ok(ess)), notRun(opt)), nil, ExitInterrupted, Ready},
		{"essential not run", notRun(ess), nil, ExitInterrupted, Incomplete},
		{"interrupted and skipped", join(res(ok(ess)), notRun(opt)), []targets.Skipped{skippedEMV}, ExitInterrupted, Incomplete},
		{"failure wins", join(res(bad(ess)), notRun(opt)), []targets.Skipped{skippedEMV}, ExitFailed, NotReady},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := NewReport(tc.out, tc.skipped).Summary()
			if s.ExitCode != tc.code {
				t.Errorf("exit code %d, want %d", s.ExitCode, tc.code)
			}
			if len(s.Profiles) != 1 || s.Profiles[0].Readiness != tc.readiness {
				t.Errorf("profiles %+v, want clover %s", s.Profiles, tc.readiness)
			}
		})
	}
}

// Skipped profile checks follow the profile lines, and make the profile
// incomplete.
func TestTableSkipped(t *testing.T) {
	c := &probe.Check{Profile: "clover", Name: "cloud-https", Kind: "tls", Host: "api.clover.com", Port: 443, Network: "tcp", Essential: true}
	results := []probe.Result{{Check: c, Address: "192.0.2.1", Up: true, Reason: probe.ReasonOK}}
	out := render(t, []*probe.Check{c}, Outcome{Results: results}, []targets.Skipped{skippedEMV}, TableOptions{})
	lines := strings.Split(strings.TrimSpace(out), "\n")
	want := []string{
		"checks:  1 ok, 0 failed (0 essential), 0 not run, 1 skipped (a required --param is not set)",
		"results: 1 ok, 0 failed (0 essential), 0 not run (one per port and address family)",
		"",
		"clover: INCOMPLETE (1 of 2 essential checks did not run: emv-udp (skipped: set --param clover.emv_host))",
		"skipped: clover/emv-udp: set --param clover.emv_host=... (the payment processor's EMV endpoint)",
	}
	if len(lines) < len(want) || !reflect.DeepEqual(lines[len(lines)-len(want):], want) {
		t.Errorf("table ends with\n%s\nwant\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}
}

func TestJSONSummarySkippedAndMeta(t *testing.T) {
	c := &probe.Check{Profile: "clover", Name: "cloud-https", Kind: "tls", Host: "api.clover.com", Port: 443, Network: "tcp", Essential: true,
		Meta: &probe.CheckMeta{Direction: "out", Level: "essential", Purpose: "HTTPS to the cloud", Source: `doc.txt, table clover, row "443/TCP"`}}
	custom := &probe.Check{Name: "web", Kind: "tcp", Host: "b.example", Port: 80, Network: "tcp", Essential: true}
	results := []probe.Result{{Check: c, Up: true, Reason: probe.ReasonOK}, {Check: custom, Reason: probe.ReasonNoReply}}
	var buf bytes.Buffer
	if err := NewReport(Outcome{Results: results}, []targets.Skipped{skippedEMV}).WriteJSON(&buf); err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Results []map[string]any `json:"results"`
		Skipped []map[string]any `json:"skipped"`
		Summary map[string]any   `json:"summary"`
	}
	if err := json.Unmarshal(buf.Bytes(), &doc); err != nil {
		t.Fatalf("invalid JSON: %v\n%s", err, buf.String())
	}
	r0 := doc.Results[0]
	if r0["direction"] != "out" || r0["level"] != "essential" || r0["purpose"] != "HTTPS to the cloud" || r0["source"] != `doc.txt, table clover, row "443/TCP"` {
		t.Errorf("profile result meta: %v", r0)
	}
	if _, ok := doc.Results[1]["level"]; ok {
		t.Errorf("a custom check has a level: %v", doc.Results[1])
	}
	if _, ok := doc.Results[1]["not_run"]; ok {
		t.Errorf("a result that ran says not_run: %v", doc.Results[1])
	}
	want := []map[string]any{{"profile": "clover", "check": "emv-udp", "level": "essential", "essential": true,
		"missing": []any{"emv_host"}, "hint": "--param clover.emv_host=emv.processor.example.com"}}
	if !reflect.DeepEqual(doc.Skipped, want) {
		t.Errorf("skipped %v\nwant    %v", doc.Skipped, want)
	}
	// The summary, by its public names: the custom check failed (one result
	// no_reply), the clover profile is incomplete (emv-udp skipped).
	wantSummary := map[string]any{
		"checks":  map[string]any{"total": 3.0, "ok": 1.0, "failed": 1.0, "essential_failed": 1.0, "not_run": 0.0, "skipped": 1.0},
		"results": map[string]any{"total": 2.0, "ok": 1.0, "failed": 1.0, "essential_failed": 1.0, "not_run": 0.0},
		"profiles": []any{
			map[string]any{"profile": "clover", "readiness": "incomplete", "essential": 2.0, "essential_ok": 1.0,
				"essential_failed": 0.0, "essential_not_run": 0.0, "essential_skipped": 1.0, "failing": []any{},
				"missing": []any{"emv-udp (skipped: set --param clover.emv_host)"}},
			map[string]any{"profile": "", "readiness": "not_ready", "essential": 1.0, "essential_ok": 0.0,
				"essential_failed": 1.0, "essential_not_run": 0.0, "essential_skipped": 0.0,
				"failing": []any{"web 80/tcp no_reply"}, "missing": []any{}},
		},
		"exit_code": 1.0,
	}
	if !reflect.DeepEqual(doc.Summary, wantSummary) {
		got, _ := json.MarshalIndent(doc.Summary, "", "  ")
		t.Errorf("summary:\n%s", got)
	}

	// Without skipped checks the list is there, empty.
	buf.Reset()
	if err := NewReport(Outcome{Results: results[:1]}, nil).WriteJSON(&buf); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), `"skipped": []`) {
		t.Errorf("no empty skipped list:\n%s", buf.String())
	}
}

// ansi matches the colour codes the table writes.
func stripANSI(s string) string {
	for _, code := range []string{ansiReset, ansiGreen, ansiYellow, ansiRedB, ansiDim} {
		s = strings.ReplaceAll(s, code, "")
	}
	return s
}

func TestTableFitsTerminalWidth(t *testing.T) {
	c := &probe.Check{Profile: "a-rather-long-profile", Name: "a-long-check-name", Kind: "https", Host: "portal.vendor.example.com",
		Port: 443, Network: "tcp", Essential: true}
	results := []probe.Result{{Check: c, Address: "192.0.2.1", IPFamily: probe.FamilyIPv4, Reason: probe.ReasonTLSUntrusted,
		Phase: probe.PhaseTLS, Detail: strings.Repeat("certificate signed by an unknown authority ", 5), Duration: time.Second}}
	for _, width := range []int{60, 80, 120, 200} {
		out := render(t, []*probe.Check{c}, Outcome{Results: results}, nil, TableOptions{Width: width, Stream: true, Color: true})
		rows := strings.Split(out, "\n\n")[0]
		for _, line := range strings.Split(rows, "\n") {
			if n := runeLen(stripANSI(line)); n > width {
				t.Errorf("width %d: a %d-column row: %q", width, n, line)
			}
		}
		if !strings.Contains(rows, "FAMILY") && width >= 120 {
			t.Errorf("width %d dropped the family column:\n%s", width, rows)
		}
		if !strings.Contains(rows, ":443/tcp") {
			t.Errorf("width %d: the target lost its port:\n%s", width, rows)
		}
		if !strings.Contains(rows, "certi") || (width >= 80 && !strings.Contains(rows, "certificate signed by")) ||
			(width < 200 && !strings.Contains(rows, "…")) {
			t.Errorf("width %d: the detail is not shown cut to fit:\n%s", width, rows)
		}
	}
}

// When streaming (a terminal), a check's rows print as it finishes, a range
// when its last port does; the checks that never ran print at Close.
func TestStreamPrintsRowsAsChecksFinish(t *testing.T) {
	checks, out := rangeOutcome()
	single := &probe.Check{Name: "web", Kind: "tcp", Host: "b.example", Port: 80, Network: "tcp", Essential: true}
	other := &probe.Check{Name: "late", Kind: "tcp", Host: "c.example", Port: 80, Network: "tcp", Essential: false}
	all := append(append([]*probe.Check{single}, checks...), other)
	var buf bytes.Buffer
	tb := NewTable(&buf, all, TableOptions{Stream: true, Color: true})
	if err := tb.Open(); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(buf.String(), "VERDICT") {
		t.Fatalf("no header at Open: %q", buf.String())
	}
	tb.Finished(other, []probe.Result{{Check: other, Reason: probe.ReasonRefused, IPFamily: probe.FamilyIPv4}})
	if !strings.Contains(buf.String(), "c.example:80/tcp") || !strings.Contains(buf.String(), ansiYellow+"WARN") {
		t.Fatalf("the finished check's row is not printed at once, in colour:\n%s", buf.String())
	}
	for _, r := range out.Results[:8] {
		tb.Finished(r.Check, []probe.Result{r})
	}
	if strings.Contains(buf.String(), "ksc.lan") {
		t.Fatalf("a range printed before its last port finished:\n%s", buf.String())
	}
	tb.Finished(out.Results[8].Check, []probe.Result{out.Results[8]})
	if strings.Contains(buf.String(), "ksc.lan") {
		t.Fatalf("a range with a port still out printed:\n%s", buf.String())
	}
	tb.Finished(single, []probe.Result{{Check: single, Up: true, Reason: probe.ReasonOK, IPFamily: probe.FamilyIPv4}})
	if !strings.Contains(buf.String(), ansiGreen+"OK") {
		t.Fatalf("no green OK:\n%s", buf.String())
	}
	// Interrupted: port 23109 never ran; Close prints the range with it.
	rep := Outcome{NotRun: out.NotRun}
	rep.Results = append(append([]probe.Result{{Check: single, Up: true, Reason: probe.ReasonOK}}, out.Results...),
		probe.Result{Check: other, Reason: probe.ReasonRefused})
	if err := tb.Close(NewReport(rep, nil)); err != nil {
		t.Fatal(err)
	}
	text := stripANSI(buf.String())
	lines := strings.Split(text, "\n")
	order := []string{"c.example", "b.example", "ksc.lan", "ksc.lan", "ksc.lan"}
	for i, want := range order {
		if !strings.Contains(lines[i+1], want) {
			t.Errorf("row %d = %q, want %s (rows in the order checks finished)", i+1, lines[i+1], want)
		}
	}
	if !strings.Contains(buf.String(), ansiDim+"NOT RUN") || !strings.Contains(buf.String(), ansiRedB+"NOT READY"+ansiReset) {
		t.Errorf("no dim NOT RUN or red NOT READY:\n%q", buf.String())
	}
}

// The profile line says where a traced failure stopped.
func TestProfileLineNamesWhereItStopped(t *testing.T) {
	api := &probe.Check{Profile: "clover", Name: "api", Kind: "tls", Host: "api.clover.com", Port: 443, Network: "tcp", Essential: true}
	ntp := &probe.Check{Profile: "clover", Name: "ntp", Kind: "ntp", Host: "pool.ntp.org", Port: 123, Network: "udp", Essential: true}
	fw := &probe.Check{Profile: "clover", Name: "fw", Kind: "tcp", Host: "h", Port: 8443, Network: "tcp", Essential: true}
	results := []probe.Result{
		{Check: api, Reason: probe.ReasonRejected, Path: &probe.Path{Location: probe.PathGateway, Hop: 1, Address: "192.168.1.1", Rejected: true}},
		{Check: ntp, Reason: probe.ReasonNoReply, Path: &probe.Path{Location: probe.PathUpstream, Hop: 2, Address: "198.51.100.9"}},
		{Check: fw, Reason: probe.ReasonTimeout, Path: &probe.Path{Location: probe.PathThisHost}},
	}
	s := NewReport(Outcome{Results: results}, nil).Summary()
	want := []string{"api 443/tcp rejected by 192.168.1.1", "ntp 123/udp no_reply after hop 2 (198.51.100.9)", "fw 8443/tcp timeout by this host"}
	if !reflect.DeepEqual(s.Profiles[0].Failing, want) {
		t.Errorf("failing %q\nwant    %q", s.Profiles[0].Failing, want)
	}
	if line := profileLine(s.Profiles[0], false); line != "clover: NOT READY (3 of 3 essential checks fail: "+strings.Join(want, ", ")+")" {
		t.Errorf("line %q", line)
	}
}

// A folded range, and its profile line, name the place when every failing
// port stopped at the same one, and none when they differ.
func TestFoldedRangeNamesACommonPlace(t *testing.T) {
	var checks []*probe.Check
	var out Outcome
	for port := 10000; port < 10004; port++ {
		c := &probe.Check{Profile: "clover", Name: "emv-udp", Kind: "udp", Host: "emv.example", Port: port, Network: "udp",
			Range: "10000-10003", Essential: true}
		checks = append(checks, c)
		out.Results = append(out.Results, probe.Result{Check: c, Address: "192.0.2.10", IPFamily: probe.FamilyIPv4,
			Reason: probe.ReasonRejected, Path: &probe.Path{Location: probe.PathGateway, Hop: 1, Address: "192.168.1.1", Rejected: true}})
	}
	table := render(t, checks, out, nil, TableOptions{})
	for _, want := range []string{"10000-10003: 4 rejected by 192.168.1.1\n",
		"emv-udp 10000-10003/udp rejected by 192.168.1.1 (4 of 4 ports)"} {
		if !strings.Contains(table, want) {
			t.Errorf("table lacks %q:\n%s", want, table)
		}
	}
	out.Results[2].Path = nil // one port not traced: no common place
	table = render(t, checks, out, nil, TableOptions{})
	if strings.Contains(table, "by 192.168.1.1") {
		t.Errorf("a place generalised over a port that was not traced:\n%s", table)
	}
}

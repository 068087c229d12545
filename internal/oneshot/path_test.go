package oneshot

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/connprobe/connprobe/probe"
)

// A traced failure carries its path in JSON (public field names) and ends
// its table detail with where it stopped, even when the detail is long; an
// untraced one has neither.
func TestPathInJSONAndTable(t *testing.T) {
	c := &probe.Check{Name: "emv", Kind: "tcp", Host: "203.0.113.5", Port: 443, Network: "tcp", Essential: true}
	c2 := &probe.Check{Name: "web", Kind: "tcp", Host: "203.0.113.6", Port: 80, Network: "tcp"}
	path := &probe.Path{Location: probe.PathUpstream, Hop: 2, Address: "198.51.100.9", Probes: 8, DurationSeconds: 5.4,
		Hops: []probe.PathHop{{Hop: 1, Address: "192.168.1.1", RTTSeconds: 0.0004, ICMP: "ICMP time exceeded"},
			{Hop: 2, Address: "198.51.100.9", RTTSeconds: 0.011, ICMP: "ICMP time exceeded"}, {Hop: 3}}}
	results := []probe.Result{
		{Check: c, Address: "203.0.113.5", IPFamily: probe.FamilyIPv4, Reason: probe.ReasonTimeout, Phase: probe.PhaseConnect,
			Detail: "no answer " + strings.Repeat("and more words ", 20), Path: path},
		{Check: c2, Address: "203.0.113.6", IPFamily: probe.FamilyIPv4, Reason: probe.ReasonRefused, Phase: probe.PhaseConnect, Detail: "refused"},
	}
	out := Outcome{Results: results}
	var buf bytes.Buffer
	if err := NewReport(out, nil).WriteJSON(&buf); err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Results []map[string]json.RawMessage `json:"results"`
	}
	if err := json.Unmarshal(buf.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	var got struct {
		Location string `json:"location"`
		Hop      int    `json:"hop"`
		Address  string `json:"address"`
		Probes   int    `json:"probes"`
		Hops     []struct {
			Hop        int     `json:"hop"`
			Address    string  `json:"address"`
			RTTSeconds float64 `json:"rtt_seconds"`
			ICMP       string  `json:"icmp"`
		} `json:"hops"`
	}
	if err := json.Unmarshal(doc.Results[0]["path"], &got); err != nil {
		t.Fatalf("path: %v in %s", err, buf.String())
	}
	if got.Location != "upstream" || got.Hop != 2 || got.Address != "198.51.100.9" || got.Probes != 8 || len(got.Hops) != 3 ||
		got.Hops[0].Address != "192.168.1.1" || got.Hops[0].RTTSeconds != 0.0004 || got.Hops[0].ICMP != "ICMP time exceeded" ||
		got.Hops[2].Address != "" {
		t.Errorf("path = %+v", got)
	}
	if _, ok := doc.Results[1]["path"]; ok {
		t.Errorf("an untraced result has a path: %s", doc.Results[1]["path"])
	}

	table := render(t, []*probe.Check{c, c2}, out, nil, TableOptions{})
	lines := strings.Split(table, "\n")
	if !strings.HasSuffix(strings.TrimSpace(lines[1]), "; stopped after hop 2 (198.51.100.9), beyond your gateway 192.168.1.1") {
		t.Errorf("row = %q", lines[1])
	}
	if strings.Contains(lines[2], "hop") {
		t.Errorf("untraced row = %q", lines[2])
	}
}

package oneshot

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/connprobe/connprobe/internal/gateway"
	"github.com/connprobe/connprobe/internal/uplink"
	"github.com/connprobe/connprobe/probe"
)

func TestUplinkJSON(t *testing.T) {
	gws := []gateway.Gateway{{Family: "ipv4", Address: "192.168.1.1", Interface: "eth0", Neighbour: gateway.NeighbourReachable}}
	cases := []struct {
		name string
		v    uplink.Verdict
		want string
	}{
		{"none", uplink.Verdict{Gateway: "192.168.1.1", Gateways: gws}, `null`},
		{"down", uplink.Verdict{State: uplink.StateDown, Location: probe.PathGateway, Hop: 1, Address: "192.168.1.1",
			Gateway: "192.168.1.1", Detail: "your gateway 192.168.1.1 has no route to the internet", Gateways: gws},
			`{"up":false,"state":"down","location":"gateway","hop":1,"address":"192.168.1.1","gateway":"192.168.1.1",` +
				`"detail":"your gateway 192.168.1.1 has no route to the internet",` +
				`"gateways":[{"family":"ipv4","address":"192.168.1.1","interface":"eth0","neighbour":"reachable"}]}`},
		{"down nowhere answering", uplink.Verdict{State: uplink.StateDown, Location: probe.PathUnknown, Detail: "d", GatewayErr: "not on Linux"},
			`{"up":false,"state":"down","location":"unknown","hop":0,"address":"","gateway":"","detail":"d","gateways":[],"gateway_error":"not on Linux"}`},
		{"up", uplink.Verdict{State: uplink.StateUp, Gateway: "192.168.1.1", Detail: "2 destination(s) answered"},
			`{"up":true,"state":"up","gateway":"192.168.1.1","detail":"2 destination(s) answered","gateways":[]}`},
		{"unknown", uplink.Verdict{State: uplink.StateUnknown, Detail: "d"},
			`{"up":null,"state":"unknown","gateway":"","detail":"d","gateways":[]}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b, err := json.Marshal(UplinkJSON(tc.v))
			if err != nil {
				t.Fatal(err)
			}
			if string(b) != tc.want {
				t.Errorf("\n got %s\nwant %s", b, tc.want)
			}
		})
	}
}

func TestUplinkLine(t *testing.T) {
	if got := uplinkLine(uplink.Verdict{State: uplink.StateUnknown, Detail: "x"}, false); got != "" {
		t.Fatalf("unknown: %q, want nothing", got)
	}
	v := uplink.Verdict{State: uplink.StateDown, Detail: "your gateway 192.168.1.1 has no route to the internet\x1b[2J"}
	want := "uplink down: your gateway 192.168.1.1 has no route to the internet [2J; the failures below are not port blocks"
	if got := uplinkLine(v, false); got != want {
		t.Errorf("\n got %q\nwant %q", got, want)
	}
	if got := uplinkLine(v, true); !strings.HasSuffix(got, "the failures above are not port blocks") {
		t.Errorf("streamed rows are above the line: %q", got)
	}

	// In the table: above the header when piped, below the rows when
	// streamed to a terminal.
	c := &probe.Check{Name: "web", Kind: "tcp", Host: "a.example", Port: 443, Network: "tcp", Essential: true}
	out := Outcome{Results: []probe.Result{{Check: c, Reason: probe.ReasonTimeout, IPFamily: probe.FamilyIPv4}}}
	rep := NewReport(out, nil)
	rep.Uplink = v
	for _, stream := range []bool{false, true} {
		var buf bytes.Buffer
		tb := NewTable(&buf, []*probe.Check{c}, TableOptions{Stream: stream})
		if err := tb.Open(); err != nil {
			t.Fatal(err)
		}
		if stream {
			tb.Finished(c, out.Results)
		}
		if err := tb.Close(rep); err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(buf.String(), "\n")
		if !stream && (!strings.HasPrefix(lines[0], "uplink down: ") || lines[1] != "" || !strings.HasPrefix(lines[2], "VERDICT")) {
			t.Errorf("piped: the uplink line is not above the table:\n%s", buf.String())
		}
		if stream && (!strings.HasPrefix(lines[0], "VERDICT") || !strings.HasPrefix(lines[3], "uplink down: ")) {
			t.Errorf("streamed: the uplink line is not right below the rows:\n%s", buf.String())
		}
	}
}

// TestJSONReportUplinkField: the report always has the key, null without a verdict.
func TestJSONReportUplinkField(t *testing.T) {
	var buf bytes.Buffer
	if err := NewReport(Outcome{}, nil).WriteJSON(&buf); err != nil {
		t.Fatal(err)
	}
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(buf.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	if got, ok := doc["uplink"]; !ok || string(got) != "null" {
		t.Errorf(`"uplink" = %s (present %v), want null`, got, ok)
	}
}

package catalogue

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/connprobe/connprobe/targets"
)

// The test profiles only: the built-in ones change as vendors do.
func testProfiles(t *testing.T) []targets.Profile {
	t.Helper()
	profs, err := targets.LoadProfiles("../../targets/testdata/profiles")
	if err != nil {
		t.Fatal(err)
	}
	return profs
}

func find(t *testing.T, name string) *targets.Profile {
	t.Helper()
	p, err := targets.FindProfile(testProfiles(t), name)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestListTable(t *testing.T) {
	var buf bytes.Buffer
	if err := List(&buf, testProfiles(t), FormatTable); err != nil {
		t.Fatal(err)
	}
	want := `NAME      CHECKS  DESCRIPTION                    PARAMS
plain     1       A profile without params       -
switches  3       A test profile with switches.  emv_host*,sip,sip_host*,watch
vendor    2       A test vendor                  cloud_host*,port,region

* required: the checks that use it are skipped until it is set.
probe profiles show NAME lists a profile's checks and params.
`
	if got := buf.String(); got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
}

func TestListJSON(t *testing.T) {
	var buf bytes.Buffer
	if err := List(&buf, testProfiles(t), FormatJSON); err != nil {
		t.Fatal(err)
	}
	var doc map[string][]map[string]any
	if err := json.Unmarshal(buf.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"name": "switches", "description": "A test profile with switches.", "file": "../../targets/testdata/profiles/switches.yml",
		"checks": 3.0, "params": []any{"emv_host", "sip", "sip_host", "watch"}, "required_params": []any{"emv_host", "sip_host"},
	}
	if len(doc["profiles"]) != 3 || !reflect.DeepEqual(doc["profiles"][1], want) {
		t.Errorf("profiles %v\nwant [1] %v", doc["profiles"], want)
	}
	if got := doc["profiles"][0]["params"]; !reflect.DeepEqual(got, []any{}) {
		t.Errorf("a profile without params: params %#v, want []", got)
	}
}

func TestShowTable(t *testing.T) {
	var buf bytes.Buffer
	if err := Show(&buf, find(t, "switches"), FormatTable); err != nil {
		t.Fatal(err)
	}
	want := `Profile switches
  A test profile with switches. Its second line.
  file:   ../../targets/testdata/profiles/switches.yml
  source: switches-ports.txt

Params
  emv_host (string, required, e.g. emv.example.com)
      the EMV endpoint
  sip (bool, default false)
      the site uses SIP
  sip_host (string, required, e.g. sip.example.com)
      the SIP server
  watch (bool, default true)
      watch the gateway

Checks
  emv: udp ${emv_host}:10000-10002/udp, out, essential
      purpose: nothing rejects datagrams to the EMV range
      source: switches-ports.txt, table ports, row "10000-10100/UDP"
  sip: sip ${sip_host}:5060/tcp, out, conditional, only with sip=true
      purpose: the SIP server answers OPTIONS
      source: switches-ports.txt, table ports, row "5060/TCP"
  gateway: tcp gw.switches.test:443/tcp, out, recommended, only with watch=true
      purpose: the gateway answers
      source: note: not in the document; the gateway is the site's own

Not covered
  table ports, row "20/TCP": active FTP cannot be probed from here
`
	if got := buf.String(); got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}

	// A default's source is shown under the param, wrapped.
	buf.Reset()
	if err := Show(&buf, find(t, "vendor"), FormatTable); err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{
		`  port (string, default "443")`,
		`      default from: the vendor's port list`,
		`  api: tls ${cloud_host}:${port}/tcp, out, essential`,
		`  gateway: tcp gw.${region}.vendor.test:23100-23102/tcp, out, recommended`,
	} {
		if !strings.Contains(buf.String(), line+"\n") {
			t.Errorf("no line %q in:\n%s", line, buf.String())
		}
	}
}

func TestShowJSON(t *testing.T) {
	var buf bytes.Buffer
	if err := Show(&buf, find(t, "switches"), FormatJSON); err != nil {
		t.Fatal(err)
	}
	var doc JSONProfile
	dec := json.NewDecoder(&buf)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&doc); err != nil {
		t.Fatal(err)
	}
	if doc.Name != "switches" || doc.Source != (JSONSource{Document: "switches-ports.txt"}) || len(doc.Checks) != 3 || len(doc.Params) != 4 {
		t.Fatalf("doc %+v", doc)
	}
	wantSIP := JSONCheck{Name: "sip", Kind: "sip", Host: "${sip_host}", Port: "5060", Protocol: "tcp", Direction: "out",
		Level: "conditional", Essential: true, When: "sip", Purpose: "the SIP server answers OPTIONS",
		Source: JSONSource{Document: "switches-ports.txt", Table: "ports", Row: "5060/TCP"}}
	if doc.Checks[1] != wantSIP {
		t.Errorf("sip %+v\nwant %+v", doc.Checks[1], wantSIP)
	}
	if doc.Checks[2].Essential || doc.Checks[2].Source.Note == "" {
		t.Errorf("gateway %+v", doc.Checks[2])
	}
	if p := doc.Params[1]; p != (JSONParam{Name: "sip", Type: "bool", Default: "false", Description: "the site uses SIP"}) {
		t.Errorf("sip param %+v", p)
	}
	if p := doc.Params[0]; !p.Required || p.Example != "emv.example.com" {
		t.Errorf("emv_host param %+v", p)
	}
	if want := []JSONNotCovered{{Table: "ports", Row: "20/TCP", Why: "active FTP cannot be probed from here"}}; !reflect.DeepEqual(doc.NotCovered, want) {
		t.Errorf("not covered %+v", doc.NotCovered)
	}
}

func TestHint(t *testing.T) {
	profs := testProfiles(t)
	got := Hint(profs[1:]) // switches first: its default checks need emv_host
	want := "Pick your own with --config.file FILE or --profile NAME. Profiles: switches, vendor.\n" +
		"  `probe profiles` lists them, `probe profiles show NAME` shows a profile's checks and params. For example:\n" +
		"  probe check --profile switches --param switches.emv_host=emv.example.com"
	if got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
	if got := Hint(nil); !strings.Contains(got, "--config.file") {
		t.Errorf("empty catalogue: %q", got)
	}
}

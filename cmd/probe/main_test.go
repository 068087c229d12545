package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeFile(t *testing.T, dir, name, body string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := l.Addr().(*net.TCPAddr).Port
	l.Close()
	return p
}

func TestCheckExitCodesAgreeWithResults(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	open := l.Addr().(*net.TCPAddr).Port
	closed := freePort(t)
	dir := t.TempDir()

	allUp := writeFile(t, dir, "up.yml", fmt.Sprintf("checks:\n  - {name: open, kind: tcp, host: 127.0.0.1, port: %d, timeout: 1s}\n", open))
	essentialDown := writeFile(t, dir, "down.yml", fmt.Sprintf(
		"checks:\n  - {name: open, kind: tcp, host: 127.0.0.1, port: %d, timeout: 1s}\n  - {name: closed, kind: tcp, host: 127.0.0.1, port: %d, timeout: 1s}\n", open, closed))
	optionalDown := writeFile(t, dir, "optional.yml", fmt.Sprintf(
		"checks:\n  - {name: closed, kind: tcp, host: 127.0.0.1, port: %d, timeout: 1s, essential: false}\n", closed))
	broken := writeFile(t, dir, "broken.yml", "checks:\n  - {name: x, kind: tcp, host: 127.0.0.1, port: 70000}\n")

	cases := []struct {
		name     string
		args     []string
		wantCode int
		wantOut  string
		wantErr  string
	}{
		{"all up", []string{"check", "--config.file", allUp}, 0, "1 ok, 0 failed", ""},
		{"essential down", []string{"check", "--config.file", essentialDown}, 1, "refused", ""},
		{"optional down", []string{"check", "--config.file", optionalDown}, 0, "WARN", ""},
		{"broken config", []string{"check", "--config.file", broken}, 2, "", "broken.yml:2"},
		{"bad output", []string{"check", "--config.file", allUp, "-o", "xml"}, 2, "", "table or json"},
		{"unknown flag", []string{"check", "--nope"}, 2, "", "unknown flag"},
		{"help on stdout", []string{"check", "--help"}, 0, "--wide", ""},
		{"help lists exit codes", []string{"check", "-h"}, 0, "130  interrupted", ""},
		{"agent help", []string{"--help"}, 0, "--web.listen-address", ""},
		{"unknown subcommand", []string{"frobnicate"}, 2, "", "unknown subcommand"},
		{"validate ok", []string{"validate", "--config.file", essentialDown}, 0, "valid, 2 checks", ""},
		{"validate broken", []string{"validate", "--config.file", broken}, 2, "", "70000"},
		{"version", []string{"version"}, 0, "connprobe", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			code := run(tc.args, &out, &errb)
			if code != tc.wantCode {
				t.Errorf("exit code %d, want %d\nstdout: %s\nstderr: %s", code, tc.wantCode, out.String(), errb.String())
			}
			if tc.wantOut != "" && !strings.Contains(out.String(), tc.wantOut) {
				t.Errorf("stdout lacks %q:\n%s", tc.wantOut, out.String())
			}
			if tc.wantErr != "" && !strings.Contains(errb.String(), tc.wantErr) {
				t.Errorf("stderr lacks %q:\n%s", tc.wantErr, errb.String())
			}
		})
	}
}

func TestCheckJSONOutput(t *testing.T) {
	closed := freePort(t)
	cfg := writeFile(t, t.TempDir(), "c.yml", fmt.Sprintf("checks:\n  - {name: closed, kind: tcp, host: 127.0.0.1, port: %d, timeout: 1s}\n", closed))
	var out, errb bytes.Buffer
	if code := run([]string{"check", "--config.file", cfg, "-o", "json"}, &out, &errb); code != 1 {
		t.Fatalf("exit code %d, want 1; stderr %s", code, errb.String())
	}
	var doc struct {
		Results []struct {
			Check    string `json:"check"`
			Port     int    `json:"port"`
			Up       bool   `json:"up"`
			Reason   string `json:"reason"`
			Phase    string `json:"phase"`
			Protocol string `json:"protocol"`
		} `json:"results"`
		Uplink *struct {
			Up    *bool  `json:"up"`
			State string `json:"state"`
		} `json:"uplink"`
	}
	if err := json.Unmarshal(out.Bytes(), &doc); err != nil {
		t.Fatalf("stdout is not JSON: %v\n%s", err, out.String())
	}
	if len(doc.Results) != 1 {
		t.Fatalf("%d results", len(doc.Results))
	}
	r := doc.Results[0]
	if r.Check != "closed" || r.Port != closed || r.Up || r.Reason != "refused" || r.Phase != "connect" || r.Protocol != "tcp" {
		t.Errorf("result = %+v", r)
	}
	// A check of this host itself says nothing of the uplink: no verdict.
	if doc.Uplink != nil {
		t.Errorf("uplink = %+v, want null for a loopback check", doc.Uplink)
	}
	if !strings.Contains(out.String(), `"uplink": null`) {
		t.Errorf(`stdout lacks "uplink": null:
%s`, out.String())
	}
}

// labProfile has one check against a local listener and one that needs a
// param nobody set.
const labProfile = `name: lab
description: A local test profile
params:
  - name: port
    description: the open port
    required: true
    example: "8080"
  - name: emv_host
    description: the payment processor's EMV endpoint
    required: true
    example: emv.processor.example.com
checks:
  - name: open
    kind: tcp
    host: 127.0.0.1
    port: ${port}
    timeout: 1s
    direction: out
    level: essential
    purpose: the local port answers
    source: {note: a test}
  - name: emv-range
    kind: udp
    host: ${emv_host}
    ports: "10000-10002"
    send: x
    direction: out
    level: essential
    purpose: nothing rejects datagrams
    source: {note: a test}
`

// A skipped essential check is listed, in the table and in JSON, and makes
// the run incomplete: exit code 3, never 0.
func TestCheckPrintsSkipped(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	open := l.Addr().(*net.TCPAddr).Port
	dir := t.TempDir()
	writeFile(t, dir, "lab.yml", labProfile)
	args := []string{"check", "--profiles.dir", dir, "--profile", "lab", "--param", fmt.Sprintf("lab.port=%d", open)}

	var out, errb bytes.Buffer
	if code := run(args, &out, &errb); code != 3 {
		t.Fatalf("exit code %d, want 3\nstdout: %s\nstderr: %s", code, out.String(), errb.String())
	}
	for _, want := range []string{
		"checks:  1 ok, 0 failed (0 essential), 0 not run, 1 skipped (a required --param is not set)\n",
		"lab: INCOMPLETE (1 of 2 essential checks did not run: emv-range (skipped: set --param lab.emv_host))\n",
		"skipped: lab/emv-range: set --param lab.emv_host=... (the payment processor's EMV endpoint)\n",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("stdout lacks %q:\n%s", want, out.String())
		}
	}

	out.Reset()
	if code := run(append(args, "-o", "json"), &out, &errb); code != 3 {
		t.Fatalf("json: exit code %d, want 3; stderr %s", code, errb.String())
	}
	var doc struct {
		Results []struct {
			Check string `json:"check"`
			Level string `json:"level"`
		} `json:"results"`
		Skipped []struct {
			Profile   string   `json:"profile"`
			Check     string   `json:"check"`
			Essential bool     `json:"essential"`
			Missing   []string `json:"missing"`
			Hint      string   `json:"hint"`
		} `json:"skipped"`
		Summary struct {
			ExitCode int `json:"exit_code"`
			Profiles []struct {
				Profile   string `json:"profile"`
				Readiness string `json:"readiness"`
			} `json:"profiles"`
		} `json:"summary"`
	}
	if err := json.Unmarshal(out.Bytes(), &doc); err != nil {
		t.Fatalf("stdout is not JSON: %v\n%s", err, out.String())
	}
	if len(doc.Results) != 1 || doc.Results[0].Check != "open" || doc.Results[0].Level != "essential" {
		t.Errorf("results %+v", doc.Results)
	}
	if len(doc.Skipped) != 1 || doc.Skipped[0].Check != "emv-range" || !doc.Skipped[0].Essential ||
		strings.Join(doc.Skipped[0].Missing, ",") != "emv_host" || doc.Skipped[0].Hint != "--param lab.emv_host=emv.processor.example.com" {
		t.Errorf("skipped %+v", doc.Skipped)
	}
	if s := doc.Summary; s.ExitCode != 3 || len(s.Profiles) != 1 || s.Profiles[0].Profile != "lab" || s.Profiles[0].Readiness != "incomplete" {
		t.Errorf("summary %+v", s)
	}

	// validate lists them too.
	out.Reset()
	if code := run([]string{"validate", "--profiles.dir", dir, "--profile", "lab", "--param", "lab.port=1"}, &out, &errb); code != 0 {
		t.Fatalf("validate: exit code %d; stderr %s", code, errb.String())
	}
	if want := "command line: valid, 1 checks, 1 skipped\nskipped: lab/emv-range: set --param lab.emv_host=... (the payment processor's EMV endpoint)\n"; out.String() != want {
		t.Errorf("validate:\n%s\nwant:\n%s", out.String(), want)
	}
}

// validate checks every file in --profiles.dir, enabled or not.
func TestValidateChecksProfilesDir(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "lab.yml", labProfile)
	writeFile(t, dir, "broken.yml", "name: broken\nchecks:\n  - {name: a, kind: tcp, host: h, port: 1, level: vital, direction: out, purpose: p, source: {note: n}}\n")
	cfg := writeFile(t, t.TempDir(), "c.yml", "checks:\n  - {name: a, kind: tcp, host: 127.0.0.1, port: 1}\n")
	var out, errb bytes.Buffer
	if code := run([]string{"validate", "--config.file", cfg, "--profiles.dir", dir}, &out, &errb); code != 2 {
		t.Fatalf("exit code %d, want 2\nstdout: %s\nstderr: %s", code, out.String(), errb.String())
	}
	if want := filepath.Join(dir, "broken.yml") + `:3: level of check "a" must be essential, recommended or conditional, got "vital"`; !strings.Contains(errb.String(), want) {
		t.Errorf("stderr lacks %q:\n%s", want, errb.String())
	}
}

func TestProfilesCommand(t *testing.T) {
	const dir = "../../targets/testdata/profiles"
	cases := []struct {
		name     string
		args     []string
		wantCode int
		wantOut  string
		wantErr  string
	}{
		{"list", []string{"profiles", "--profiles.dir", dir}, 0, "emv_host*,sip,sip_host*,watch\n", ""},
		{"list json", []string{"profiles", "--profiles.dir", dir, "-o", "json"}, 0, `"required_params": [`, ""},
		{"show", []string{"profiles", "show", "switches", "--profiles.dir", dir}, 0, "  sip: sip ${sip_host}:5060/tcp, out, conditional, only with sip=true\n", ""},
		{"show json", []string{"profiles", "show", "--profiles.dir", dir, "switches", "-o", "json"}, 0, `"when": "sip"`, ""},
		{"show unknown", []string{"profiles", "show", "swtiches", "--profiles.dir", dir}, 2, "", `unknown profile "swtiches" (did you mean "switches"?)`},
		{"show without name", []string{"profiles", "show"}, 2, "", "usage: connprobe profiles"},
		{"list with an argument", []string{"profiles", "clover"}, 2, "", "usage: connprobe profiles"},
		{"bad output", []string{"profiles", "-o", "yaml"}, 2, "", "table or json"},
		{"broken dir", []string{"profiles", "--profiles.dir", "no-such-dir"}, 2, "", "profiles dir"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			code := run(tc.args, &out, &errb)
			if code != tc.wantCode {
				t.Errorf("exit code %d, want %d\nstdout: %s\nstderr: %s", code, tc.wantCode, out.String(), errb.String())
			}
			if tc.wantOut != "" && !strings.Contains(out.String(), tc.wantOut) {
				t.Errorf("stdout lacks %q:\n%s", tc.wantOut, out.String())
			}
			if tc.wantErr != "" && !strings.Contains(errb.String(), tc.wantErr) {
				t.Errorf("stderr lacks %q:\n%s", tc.wantErr, errb.String())
			}
		})
	}
}

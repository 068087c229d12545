package probe

import (
	"bufio"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// Tests that no part of a password reaches a result when a hostile server
// echoes it in a reply longer than the reader's cap, placed so that a cut
// (the reader's buffer, or the 32/64 bytes a detail quotes) falls inside it.

// lbPlanted is the planted secret: no run of 4 of its bytes may show.
const lbPlanted = "Zq7kP9vX2mL4wR8tY6nB"

// lbNoSecretRun fails when any run of lbSecretRun or more bytes of secret
// shows in the detail, the JSON of the result or its Go rendering.
func lbNoSecretRun(t testing.TB, r Result, secret string) {
	t.Helper()
	b, err := json.Marshal(struct {
		R Result
		F Facts
	}{r, r.Facts})
	if err != nil {
		t.Fatal(err)
	}
	if run := secretRun([]string{r.Detail, string(b), fmt.Sprintf("%+v", r)}, secret, scrubMin); run != "" {
		t.Errorf("%q of the password shows in the result (detail: %s)", run, r.Detail)
	}
}

// secretRun returns the first run of at least n bytes of secret found in
// any of outs, or "".
func secretRun(outs []string, secret string, n int) string {
	for i := 0; i+n <= len(secret); i++ {
		for _, o := range outs {
			if strings.Contains(o, secret[i:i+n]) {
				return secret[i : i+n]
			}
		}
	}
	return ""
}

// lbLongEcho is a reply of code, then pad bytes, then echo, then enough
// filler to pass limit, then CRLF.
func lbLongEcho(code string, pad int, echo string, limit int) string {
	s := code + " " + strings.Repeat("-", pad) + echo
	return s + strings.Repeat("y", limit+100-len(s)) + "\r\n"
}

// lbCutOffsets are where the echoed password starts: straddling the 32 and
// 64 bytes a detail quotes, and the reader's cap.
func lbCutOffsets(limit int) []int { return []int{20, 52, 60, limit - 12} }

func TestFTPPasswordNeverLeaksThroughACut(t *testing.T) {
	for _, off := range lbCutOffsets(ftpMaxLine) {
		t.Run(fmt.Sprint(off), func(t *testing.T) {
			port := lbRawServer(t, func(c net.Conn) {
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(10 * time.Second))
				br := bufio.NewReader(c)
				_, _ = io.WriteString(c, "220 ftp ready\r\n")
				for {
					line, err := br.ReadString('\n')
					if err != nil {
						return
					}
					switch verb, arg, _ := strings.Cut(strings.TrimSpace(line), " "); verb {
					case "USER":
						_, _ = io.WriteString(c, "331 password please\r\n")
					case "PASS":
						_, _ = io.WriteString(c, lbLongEcho("530", off-4, arg, ftpMaxLine))
					default:
						_, _ = io.WriteString(c, "500 no\r\n")
					}
				}
			})
			c := &Check{Name: "t", Kind: "ftp", Host: "127.0.0.1", Port: port, Timeout: 3 * time.Second,
				Credentials: &Credentials{User: "alice", PasswordFile: lbFTPPasswordFile(t, lbPlanted)}}
			r, _ := lbFTPRun(t, c)
			lbExpect(t, r, false, ReasonProtocol, PhaseLogin, "longer than 8192 bytes")
			lbNoSecretRun(t, r, lbPlanted)
		})
	}
}

func TestMailPasswordNeverLeaksThroughACut(t *testing.T) {
	p := lbPKI(t)
	token := base64.StdEncoding.EncodeToString([]byte("\x00probe\x00" + lbPlanted))
	cases := []struct {
		kind, greeting string
		answer         func(off int) func(string) string
	}{
		{"smtps", "220 mail.test ESMTP\r\n", func(off int) func(string) string {
			return func(line string) string {
				verb, arg, _ := strings.Cut(line, " ")
				switch verb {
				case "EHLO":
					return "250-mail.test\r\n250 AUTH PLAIN\r\n"
				case "AUTH":
					dec, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix(arg, "PLAIN "))
					_, pw, _ := strings.Cut(string(dec[1:]), "\x00")
					return lbLongEcho("535", off-4, pw, mailMaxLine)
				}
				return ""
			}
		}},
		{"imaps", "* OK IMAP ready\r\n", func(off int) func(string) string {
			return func(line string) string {
				tag, rest, _ := strings.Cut(line, " ")
				if strings.HasPrefix(rest, "LOGIN ") {
					args := strings.Fields(rest)
					return tag + lbLongEcho(" NO", off-len(tag)-4, strings.Trim(args[2], `"`), mailMaxLine)
				}
				return ""
			}
		}},
		{"pop3s", "+OK POP3 ready\r\n", func(off int) func(string) string {
			return func(line string) string {
				verb, arg, _ := strings.Cut(line, " ")
				switch verb {
				case "USER":
					return "+OK\r\n"
				case "PASS":
					return lbLongEcho("-ERR", off-5, arg, mailMaxLine)
				}
				return ""
			}
		}},
	}
	for _, tc := range cases {
		for _, off := range lbCutOffsets(mailMaxLine) {
			t.Run(fmt.Sprintf("%s/%d", tc.kind, off), func(t *testing.T) {
				answer := tc.answer(off)
				port, _ := lbMailTLSServer(t, p.good, tc.greeting, func() func(string) string { return answer })
				r := lbRun1(t, lbMailWithLogin(t, lbMailCheck(t, tc.kind, port), lbPlanted))
				lbExpect(t, r, false, ReasonProtocol, PhaseLogin, "longer than 4096 bytes")
				lbNoSecretRun(t, r, lbPlanted)
				lbNoSecretRun(t, r, token)
			})
		}
	}
}

func TestScrubber(t *testing.T) {
	sc := newScrubber("Zq7kP9vX", "ab")
	for _, tc := range []struct{ in, want string }{
		{"no secret here", "no secret here"},
		{"530 Zq7kP9vX wrong", "530 [redacted] wrong"},
		{"cut Zq7kP", "cut [redacted]"},     // a prefix left by a cut
		{"kP9vX2 tail", "[redacted]2 tail"}, // a suffix
		{"Zq7 short", "Zq7 short"},          // under 4 bytes: kept
		{"x ab y", "x [redacted] y"},        // a short form, whole
		{"Zq7kP9vXZq7kP9vX", "[redacted]"},  // runs merge into one mark
		{"P9vX and Zq7k", "[redacted] and [redacted]"},
	} {
		if got := sc.scrub(tc.in); got != tc.want {
			t.Errorf("scrub(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	// Rendering can make a run: the escape of 0x82 before "P9v" reads
	// "2P9v"... so a result is scrubbed once more when it is done (found by
	// FuzzMailReplies; its input is kept in testdata/fuzz).
	sc2 := newScrubber("X2mL4wR8")
	shown := cleanText("\x82mL4", 64)
	if !strings.Contains(shown, "2mL4") {
		t.Fatalf("the rendering %q no longer makes the run this case is about", shown)
	}
	if got := sc2.result(Result{Detail: "the server sent \"" + shown + "\""}).Detail; strings.Contains(got, "2mL4") {
		t.Errorf("the rendered result shows the run: %q", got)
	}
	if got := (*scrubber)(nil).scrub("Zq7kP9vX"); got != "Zq7kP9vX" {
		t.Errorf("a nil scrubber changed %q", got)
	}
	if newScrubber("", "") != nil {
		t.Error("a scrubber of nothing is not nil")
	}
}

package probe

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
)

// Bounds on what an SSH server may send before its identification
// (RFC 4253 section 4.2 allows other lines first).
const (
	// sshMaxIDLine is the longest identification line, CR LF included.
	sshMaxIDLine = 255
	// sshMaxLine bounds any line read, so a longer pre-identification line
	// fails without the reader growing.
	sshMaxLine = 1024
	// sshMaxPrelude bounds all bytes before and including the identification.
	sshMaxPrelude = 8 << 10
	// sshMaxLines bounds the lines before the identification.
	sshMaxLines = 32
)

// sshSilentHint follows a silentError: what silence on an SSH port means.
const sshSilentHint = ": not an SSH server, or one waiting for the client as a TLS port does"

// probeSSH connects and reads the server's identification line without
// sending anything: an SSH server speaks first, so the banner alone proves an
// SSH server answers, and the probe never starts a key exchange (or shows up
// in the server's log as a failed login). It closes right after.
func probeSSH(ctx context.Context, t Target) Result {
	r := newResult(t)
	begin := time.Now()
	conn, err := dialTCP(ctx, t)
	r.addTiming(PhaseConnect, time.Since(begin))
	if err != nil {
		return fail(&r, PhaseConnect, err, t.Addr)
	}
	defer conn.Close()
	stop := watchConn(ctx, conn)
	defer stop()

	ready := time.Now()
	lr := newBoundedLineReader(conn, sshMaxLine)
	lr.greets = "SSH"
	id, pre, err := readSSHIdentification(lr)
	r.addTiming(PhaseBanner, time.Since(ready))
	if err != nil {
		err = lr.silenceOr(ctx, err, ready, " (an OpenSSH server over its MaxStartups limit, or a TCP wrapper, closes like this)")
		res := fail(&r, PhaseBanner, err, t.Addr)
		var se *silentError
		if errors.As(err, &se) {
			res.Detail += sshSilentHint
		}
		return res
	}
	r.Facts.GreetingFacts = &GreetingFacts{Greeting: cleanText(id.line, sshMaxIDLine), Software: id.software}
	r.Up, r.Reason, r.Phase = true, ReasonOK, PhaseBanner
	r.Detail = fmt.Sprintf("SSH server identifies as \"%s\" (protocol %s, software %s)",
		cleanText(id.line, sshMaxIDLine), id.proto, id.software)
	if pre > 0 {
		r.Detail += fmt.Sprintf(", after %d other line(s)", pre)
	}
	return r
}

// sshIdent is a parsed identification line: SSH-protoversion-softwareversion
// [SP comments].
type sshIdent struct {
	line     string
	proto    string
	software string // sanitized
}

// readSSHIdentification reads lines until the identification line and
// returns it with the number of lines before it. Anything that cannot be an
// SSH server's preamble fails at once with what was seen.
func readSSHIdentification(lr *boundedLineReader) (sshIdent, int, error) {
	var first string
	for pre := 0; ; pre++ {
		line, err := lr.readLine()
		if err != nil {
			if errors.Is(err, io.EOF) && pre > 0 {
				return sshIdent{}, pre, &protocolError{Msg: fmt.Sprintf(
					"the server sent %d line(s) and closed the connection without an SSH identification; the first was \"%s\"",
					pre, cleanText(first, 80))}
			}
			return sshIdent{}, pre, err
		}
		if strings.HasPrefix(line, "SSH-") {
			id, err := parseSSHIdent(line)
			return id, pre, err
		}
		if pre == 0 {
			first = line // another protocol's greeting failed in readLine (greets)
		}
		if hasControl(line) {
			return sshIdent{}, pre, &protocolError{Msg: fmt.Sprintf("not an SSH server: it sent \"%s\"", cleanText(line, 64))}
		}
		if pre+1 >= sshMaxLines || lr.received() > sshMaxPrelude {
			return sshIdent{}, pre, &protocolError{Msg: fmt.Sprintf(
				"no SSH identification within %d lines or %d bytes; the server's first line was \"%s\"",
				sshMaxLines, sshMaxPrelude, cleanText(first, 80))}
		}
	}
}

// hasControl reports bytes no text line holds (RFC 4253 lines before the
// identification are text; a NUL or other control byte means a binary
// protocol or garbage). Tabs pass.
func hasControl(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < 0x20 && c != '\t') || c == 0x7f {
			return true
		}
	}
	return false
}

func parseSSHIdent(line string) (sshIdent, error) {
	shown := cleanText(line, 80)
	// The limit counts CR LF; readLine has removed the terminator.
	if len(line)+2 > sshMaxIDLine {
		return sshIdent{}, &protocolError{Msg: fmt.Sprintf("SSH identification longer than %d bytes: \"%s\"", sshMaxIDLine, shown)}
	}
	proto, rest, ok := strings.Cut(line[len("SSH-"):], "-")
	software, _, _ := strings.Cut(rest, " ")
	if !ok || proto == "" || software == "" || hasControl(line) {
		return sshIdent{}, &protocolError{Msg: fmt.Sprintf("malformed SSH identification \"%s\"", shown)}
	}
	switch {
	case proto == "2.0" || proto == "1.99": // 1.99: both versions, 2.0 among them
	case strings.HasPrefix(proto, "1."):
		return sshIdent{}, &protocolError{Msg: fmt.Sprintf("the server speaks only the obsolete SSH protocol 1: \"%s\"", shown)}
	default:
		return sshIdent{}, &protocolError{Msg: fmt.Sprintf("unknown SSH protocol version \"%s\": \"%s\"", cleanText(proto, 16), shown)}
	}
	return sshIdent{line: line, proto: proto, software: cleanText(software, 128)}, nil
}

package targets

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
)

// Limits on what a configuration or profile may hold. A file is read by the
// running agent on every reload: whatever it holds, loading it must stay
// fast and small, so that a mistake (a generated file gone wrong, the wrong
// file passed) is refused with an error instead of taking the agent down.
// The README's "Limits" section lists them; keep it in step.
const (
	// MaxFileBytes bounds a config or profile file. A thousand checks with
	// comments take about 150 KB.
	MaxFileBytes = 1 << 20

	// MaxChecks bounds the checks a configuration expands into (one per
	// port and address family), profiles included. It is ten times what
	// one agent is sized for, so that it only stops mistakes.
	MaxChecks = 20000

	// MaxNameLen bounds a check's name: it is a label value on every
	// series of the check and a column of the table.
	MaxNameLen = 128

	// MaxHostLen is the longest DNS name (RFC 1035), also enough for any
	// IP address literal.
	MaxHostLen = 253

	// MaxValueLen bounds any other string value (paths, queries, issuers,
	// descriptions): longer ones are mistakes, and every value is shown
	// in errors, the table and the status page.
	MaxValueLen = 4096

	// MaxCAFileBytes bounds a tls.ca_file: the whole Mozilla bundle is
	// about 220 KB; ca_file: /dev/zero must not be read forever.
	MaxCAFileBytes = 4 << 20

	// MaxProfileFiles bounds the profile files read from --profiles.dir.
	MaxProfileFiles = 1000

	// maxErrors caps the errors reported for one load: past it the rest
	// are counted, not listed, so that a wrong file yields a readable
	// report rather than thousands of lines.
	maxErrors = 20
)

// readLimited reads a config or profile file, refusing one larger than
// MaxFileBytes without reading it all (and reading at most one byte past the
// limit of a file that grows, or is a pipe).
func readLimited(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.Mode().IsRegular() && fi.Size() > MaxFileBytes {
		return nil, tooLarge(path, fi.Size())
	}
	data, err := io.ReadAll(io.LimitReader(f, MaxFileBytes+1))
	if err != nil {
		return nil, err
	}
	if len(data) > MaxFileBytes {
		return nil, tooLarge(path, -1)
	}
	return data, nil
}

// readFileLimited reads at most limit bytes of path, failing on more.
func readFileLimited(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("larger than %d bytes (%s), the limit", limit, sizeText(limit))
	}
	return data, nil
}

func tooLarge(path string, size int64) error {
	got := "more than that"
	if size >= 0 {
		got = fmt.Sprintf("%d bytes", size)
	}
	return &Error{File: path, Msg: fmt.Sprintf("the file is too large: %s, the limit is %d bytes (%s); is it the right file? Split a very large site over several agents", got, MaxFileBytes, sizeText(MaxFileBytes))}
}

func sizeText(n int64) string {
	return fmt.Sprintf("%d MiB", n>>20)
}

// checkSize refuses data over MaxFileBytes given by a caller of Parse or
// ParseProfile rather than read by readLimited.
func checkSize(name string, data []byte) error {
	if len(data) > MaxFileBytes {
		return tooLarge(name, int64(len(data)))
	}
	return nil
}

// valueProblem says what is wrong with a string value of at most max bytes
// (completing "<key> in <where> ..."), or "". Which characters a value may
// hold is the key's own rule (hosts: hostCharsProblem; names: validName).
func valueProblem(s string, max int) string {
	if len(s) > max {
		return fmt.Sprintf("is %d bytes long; at most %d", len(s), max)
	}
	return ""
}

// hostCharsProblem refuses a host (after params are substituted) that is
// too long or holds characters no DNS name or IP address has: HTML,
// quotes, control characters, non-ASCII (write an international name in
// its xn-- form, which is what the resolver looks up). "" when fine.
func hostCharsProblem(host string) string {
	if len(host) > MaxHostLen {
		return fmt.Sprintf("is %d characters long; a DNS name has at most %d", len(host), MaxHostLen)
	}
	for i := 0; i < len(host); i++ {
		b := host[i]
		switch {
		case isAlnum(b), strings.IndexByte(".-_:%[]", b) >= 0:
		case b >= 0x80:
			return "holds non-ASCII characters; write an international name in its ASCII (xn--) form"
		default:
			return fmt.Sprintf("holds %q, which no DNS name or IP address has (letters, digits, '.', '-', '_', and ':' in IPv6)", string(b))
		}
	}
	return ""
}

// errTooManyChecks is the error for a configuration that expands into more
// than MaxChecks checks, found as soon as the count passes it.
func errTooManyChecks(source string) error {
	return &Error{File: source, Msg: fmt.Sprintf("the configuration expands into more than %d checks (one per port and address family), the limit; narrow the port ranges or ip_family, or split the site over several agents", MaxChecks)}
}

// profileFiles lists the profile files of dir, at most MaxProfileFiles.
func profileFiles(dir string) ([]fs.DirEntry, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out []fs.DirEntry
	for _, e := range entries {
		if e.IsDir() || !isProfileFile(e.Name()) {
			continue
		}
		if len(out) == MaxProfileFiles {
			return nil, errors.New(dir + ": more than " + fmt.Sprint(MaxProfileFiles) + " profile files, the limit")
		}
		out = append(out, e)
	}
	return out, nil
}

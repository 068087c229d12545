// Package chromium drives Debian's headless Chromium for tests of the status
// page: the DOM as a browser built it, screenshots, and what the page logged
// to the console. It is a test harness, like netlab: no production code
// imports it.
package chromium

import (
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"
)

// Timeout bounds one Chromium run: it starts slowly on a loaded 2-core
// machine.
const Timeout = 120 * time.Second

// Find returns the path of Chromium. Without it the test skips, except
// under CI=true, where a skipped browser test would hide a broken page.
func Find(t testing.TB) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("chromium is not installed; CI must install it (.ci/run)")
	}
	t.Skip("chromium is not installed (apt-get install chromium): the status page is not tested in a browser")
	return ""
}

// args are the flags of every run: headless, as root (no sandbox), nothing
// fetched from the internet, console messages and script errors on stderr.
func args(profileDir string) []string {
	return []string{
		"--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
		"--no-first-run", "--no-default-browser-check", "--disable-extensions",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir=" + profileDir,
		"--enable-logging=stderr", "--v=0",
		"--hide-scrollbars", "--force-device-scale-factor=1",
	}
}

// consoleLine matches what Chromium logs for a console message, an uncaught
// script error or a resource the page's Content-Security-Policy refused.
var consoleLine = regexp.MustCompile(`(?i):CONSOLE(\(\d+\)|:\d+\])|Uncaught|Refused to (load|execute|apply)|Content Security Policy`)

// ConsoleLines returns the lines of a run's stderr that report something
// the page logged or a script error; a page without any script logs none.
func ConsoleLines(stderr string) []string {
	var out []string
	for _, line := range strings.Split(stderr, "\n") {
		if consoleLine.MatchString(line) {
			out = append(out, line)
		}
	}
	return out
}

var (
	tagRE    = regexp.MustCompile(`(?s)<style.*?</style>|<title>.*?</title>|<[^>]*>`)
	spaceRE  = regexp.MustCompile(`\s+`)
	unescape = strings.NewReplacer("&quot;", `"`, "&#34;", `"`, "&amp;", "&", "&lt;", "<", "&gt;", ">", "&#39;", "'")
)

// Text is a page's visible text: tags, styles and the title removed, entities
// decoded, spaces collapsed.
func Text(html string) string {
	return spaceRE.ReplaceAllString(unescape.Replace(tagRE.ReplaceAllString(html, " ")), " ")
}

// Order reports the first of in that does not follow the previous one in
// text, or "" when they all come in order.
func Order(text string, in ...string) (missing string) {
	at := 0
	for _, s := range in {
		i := strings.Index(text[at:], s)
		if i < 0 {
			return s
		}
		at += i + len(s)
	}
	return ""
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}

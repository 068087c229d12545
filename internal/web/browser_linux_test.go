package web

import (
	"bytes"
	"context"
	"errors"
	"image"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// updateScreenshotsEnv regenerates the README's screenshots of the page:
//
//	CONNPROBE_UPDATE_SCREENSHOTS=1 go test ./internal/web -run TestStatusPageInChromium
const updateScreenshotsEnv = "CONNPROBE_UPDATE_SCREENSHOTS"

// chromiumPath finds Debian's chromium; without it the test skips, except
// under CI=true, where a skipped browser test would hide a broken page.
func chromiumPath(t *testing.T) string {
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

// chromium runs one headless Chromium command against url and returns its
// stdout and stderr. The whole process group is killed when it overruns, so
// no renderer outlives the test.
func chromium(t *testing.T, bin, url string, args ...string) (stdout, stderr string) {
	t.Helper()
	// Generous: Chromium starts slowly on a loaded 2-core machine.
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	base := []string{
		"--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
		"--no-first-run", "--no-default-browser-check", "--disable-extensions",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir=" + t.TempDir(),
		// Console messages and script errors go to stderr.
		"--enable-logging=stderr", "--v=0",
		"--hide-scrollbars", "--force-device-scale-factor=1",
	}
	cmd := exec.CommandContext(ctx, bin, append(append(base, args...), url)...)
	cmd.Env = append(os.Environ(), "HOME="+t.TempDir())
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 10 * time.Second
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if cmd.Process != nil {
		// Helpers (zygote, GPU, utility) of a finished browser: none may stay.
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
	if err != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			t.Fatalf("chromium did not finish within 120s; stderr:\n%s", tail(errb.String(), 3000))
		}
		t.Fatalf("chromium %v: %v; stderr:\n%s", args, err, tail(errb.String(), 3000))
	}
	return out.String(), errb.String()
}

// consoleLine matches what Chromium logs for a console message or an
// uncaught script error with --enable-logging=stderr.
var consoleLine = regexp.MustCompile(`(?i):CONSOLE\(\d+\)|Uncaught|Refused to (load|execute|apply)|Content Security Policy`)

func assertNoConsoleOutput(t *testing.T, stderr string) {
	t.Helper()
	for _, line := range strings.Split(stderr, "\n") {
		if consoleLine.MatchString(line) {
			t.Errorf("the page logged to the console (a script error or a blocked resource): %s", line)
		}
	}
}

func TestStatusPageInChromium(t *testing.T) {
	bin := chromiumPath(t)
	site := newDemoSite(t)
	srv := site.server(t)

	// The DOM as the browser built it.
	dom, stderr := chromium(t, bin, srv.URL+"/", "--dump-dom", "--virtual-time-budget=2000")
	assertNoConsoleOutput(t, stderr)
	if !strings.Contains(dom, `id="headlines"`) {
		t.Fatalf("the dumped DOM is not the status page:\n%s", tail(dom, 2000))
	}
	if strings.Contains(strings.ToLower(dom), "<script") {
		t.Error("the status page has a script; it must work without any")
	}
	text := visibleText(dom)
	for _, want := range []string{
		"clover NOT READY 2 of 3 essential checks fail",
		"timesensor-legal-365-client READY its essential check passes",
		"Custom checks INCOMPLETE 1 of 2 essential checks not checked: 1 not run yet",
		"The last configuration reload failed at 2026-12-05 14:34:00 CET.",
		`unknown key "intervl" in check "printer"`,
		"The internet connection is down at your gateway 192.168.1.1.",
		"Rejected at hop 1, your gateway 192.168.1.1",
		"Stopped after hop 1, your gateway 192.168.1.1",
		"rejected (blocked by a device on the way)",
		"no_reply (no answer)",
		"since 2026-12-05 14:23:",
		"times in CET (UTC+01:00)",
		"pbx-rtp informational udp pbx.lan 10000-10099/udp",
		"6 of 100 ports fail 94 ok, 6 no_reply",
		"no_reply (no answer): 10007-10008, 10047-10048, 10087-10088.",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("the rendered page lacks %q", want)
		}
	}
	// Failing essential checks first, then warnings, then checks without a
	// verdict, then the working ones; banners above everything.
	assertOrder(t, text,
		"The last configuration reload failed", "The internet connection is down",
		"clover NOT READY",
		"Failing essential checks", demoFailHTTPS, demoFailNTP,
		"Warnings", demoWarnHTTP, demoWarnRange,
		"Not checked", demoPending, demoSkipped,
		"Working", demoOK)

	// Screenshots at a desktop and a phone width: valid, the size asked for,
	// and not blank. With the env var set they become the README's images.
	update := os.Getenv(updateScreenshotsEnv) != ""
	for _, shot := range []struct {
		file          string
		width, height int
	}{
		{"status-page.png", 1280, 1500},
		{"status-page-phone.png", 412, 2400},
	} {
		path := filepath.Join(t.TempDir(), shot.file)
		if update {
			path = filepath.Join("..", "..", "docs", shot.file)
		}
		_, stderr := chromium(t, bin, srv.URL+"/", "--screenshot="+path,
			"--window-size="+strconv.Itoa(shot.width)+","+strconv.Itoa(shot.height), "--virtual-time-budget=2000")
		assertNoConsoleOutput(t, stderr)
		assertScreenshot(t, path, shot.width, shot.height)
	}
}

func assertScreenshot(t *testing.T, path string, width, height int) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("no screenshot: %v", err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("screenshot %s is no PNG: %v", path, err)
	}
	if b := img.Bounds(); b.Dx() != width || b.Dy() != height {
		t.Errorf("screenshot %s is %dx%d, want %dx%d", path, b.Dx(), b.Dy(), width, height)
	}
	if n := colours(img, 64); n < 8 {
		t.Errorf("screenshot %s has %d colours: blank or unstyled", path, n)
	}
}

// colours counts distinct colours in a sample of the image, up to limit.
func colours(img image.Image, limit int) int {
	seen := map[[4]uint32]bool{}
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y += 7 {
		for x := b.Min.X; x < b.Max.X; x += 7 {
			r, g, bl, a := img.At(x, y).RGBA()
			seen[[4]uint32{r >> 8, g >> 8, bl >> 8, a >> 8}] = true
			if len(seen) >= limit {
				return len(seen)
			}
		}
	}
	return len(seen)
}

var (
	tagRE   = regexp.MustCompile(`(?s)<style.*?</style>|<title>.*?</title>|<[^>]*>`)
	spaceRE = regexp.MustCompile(`\s+`)
)

// visibleText is the DOM's text with tags removed and spaces collapsed.
func visibleText(dom string) string {
	text := tagRE.ReplaceAllString(dom, " ")
	for _, r := range [][2]string{{"&quot;", `"`}, {"&#34;", `"`}, {"&amp;", "&"}, {"&lt;", "<"}, {"&gt;", ">"}, {"&#39;", "'"}} {
		text = strings.ReplaceAll(text, r[0], r[1])
	}
	return spaceRE.ReplaceAllString(text, " ")
}

// assertOrder checks that each string occurs after the previous one.
func assertOrder(t *testing.T, text string, in ...string) {
	t.Helper()
	at := 0
	for _, s := range in {
		i := strings.Index(text[at:], s)
		if i < 0 {
			t.Errorf("%q does not follow %q in the page; page text:\n%s", s, text[:at], text)
			return
		}
		at += i + len(s)
	}
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}

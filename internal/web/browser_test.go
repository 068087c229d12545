package web

import (
	"image"
	"image/png"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/connprobe/connprobe/internal/chromium"
)

// updateScreenshotsEnv regenerates the README's screenshots of the page:
//
//	CONNPROBE_UPDATE_SCREENSHOTS=1 go test ./internal/web -run TestStatusPageInChromium
const updateScreenshotsEnv = "CONNPROBE_UPDATE_SCREENSHOTS"

func assertNoConsoleOutput(t *testing.T, stderr string) {
	t.Helper()
	for _, line := range chromium.ConsoleLines(stderr) {
		t.Errorf("the page logged to the console (a script error or a blocked resource): %s", line)
	}
}

func TestStatusPageInChromium(t *testing.T) {
	bin := chromium.Find(t)
	site := newDemoSite(t)
	srv := site.server(t)

	// The DOM as the browser built it.
	dom, stderr := chromium.Run(t, bin, srv.URL+"/", "--dump-dom", "--virtual-time-budget=2000")
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
		_, stderr := chromium.Run(t, bin, srv.URL+"/", "--screenshot="+path,
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

// visibleText is the page's text as a person reads it.
func visibleText(html string) string { return chromium.Text(html) }

// assertOrder checks that each string occurs after the previous one.
func assertOrder(t *testing.T, text string, in ...string) {
	t.Helper()
	if missing := chromium.Order(text, in...); missing != "" {
		t.Errorf("%q is missing or out of order (want %q in this order); page text:\n%s", missing, in, text)
	}
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}

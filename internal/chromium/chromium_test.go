package chromium

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestTextAndOrder(t *testing.T) {
	html := "<html><head><title>x</title><style>p { color: red; }</style></head>" +
		"<body><h1>A &amp; B</h1>\n<p class=\"x\">said &#34;hi&#34;</p><p>last</p></body></html>"
	text := Text(html)
	if want := ` A & B said "hi" last `; text != want {
		t.Errorf("Text = %q, want %q", text, want)
	}
	if m := Order(text, "A & B", "hi", "last"); m != "" {
		t.Errorf("in-order strings reported %q", m)
	}
	if m := Order(text, "last", "A & B"); m != "A & B" {
		t.Errorf("out-of-order strings reported %q, want %q", m, "A & B")
	}
	if m := Order(text, "nowhere"); m != "nowhere" {
		t.Errorf("a missing string reported %q", m)
	}
}

func TestConsoleLines(t *testing.T) {
	stderr := "[1205/130000.1:INFO:CONSOLE(3)] \"Uncaught ReferenceError: x\", source: http://127.0.0.1/ (3)\n" +
		"[1205/130000.2:WARNING:gpu_init.cc(1)] nothing to see\n" +
		"[1205/130000.3:INFO:CONSOLE(0)] \"Refused to load the image because it violates the Content Security Policy\"\n" +
		// Chromium 156 spells the source line after a colon.
		"[13474:13474:1205/134309.814516:INFO:CONSOLE:8] \"hello\", source: http://127.0.0.1/ (8)\n"
	if got := ConsoleLines(stderr); len(got) != 3 {
		t.Errorf("ConsoleLines found %d lines, want 3: %q", len(got), got)
	}
}

// The detector works with the real browser: a page that logs and throws is
// caught, so a clean run of the status page means something.
func TestConsoleLinesCatchARealScript(t *testing.T) {
	bin := Find(t)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write([]byte(`<!DOCTYPE html><html><body><p id="p">page</p>` +
			`<script>console.log("logged"); undefinedFunction();</script></body></html>`))
	}))
	defer srv.Close()
	dom, stderr := Run(t, bin, srv.URL+"/", "--dump-dom", "--virtual-time-budget=2000")
	if !strings.Contains(dom, `id="p"`) {
		t.Fatalf("the DOM is not the page:\n%s", dom)
	}
	lines := strings.Join(ConsoleLines(stderr), "\n")
	for _, want := range []string{"logged", "Uncaught"} {
		if !strings.Contains(lines, want) {
			t.Errorf("the console lines lack %q:\n%s\nstderr:\n%s", want, lines, tail(stderr, 3000))
		}
	}
}

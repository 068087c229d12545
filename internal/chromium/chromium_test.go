package chromium

import "testing"

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
		"[1205/130000.3:INFO:CONSOLE(0)] \"Refused to load the image because it violates the Content Security Policy\"\n"
	if got := ConsoleLines(stderr); len(got) != 2 {
		t.Errorf("ConsoleLines found %d lines, want 2: %q", len(got), got)
	}
}

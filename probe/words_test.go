package probe

import "testing"

func TestEveryReasonHasPlainWords(t *testing.T) {
	seen := map[string]Reason{}
	for _, r := range Reasons() {
		w := r.Plain()
		if w == "" || w == string(r) {
			t.Errorf("reason %q has no plain words", r)
		}
		if other, dup := seen[w]; dup {
			t.Errorf("reasons %q and %q share the words %q", other, r, w)
		}
		seen[w] = r
	}
	if got := Reason("new_reason").Plain(); got != "new_reason" {
		t.Errorf("an unknown reason reads %q, want itself", got)
	}
}

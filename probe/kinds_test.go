package probe

import "testing"

// The kind table is built once: a lookup, as every Run and every proxy
// decision makes, allocates nothing.
func TestKindTableBuiltOnce(t *testing.T) {
	if n := testing.AllocsPerRun(100, func() {
		if _, err := LookupKind("sip"); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Errorf("LookupKind allocates %v times per call; the table is rebuilt", n)
	}
	k := Kinds()
	delete(k, "sip")
	if _, err := LookupKind("sip"); err != nil {
		t.Error("changing the map Kinds returned changed the table")
	}
}

// Every kind's rules hold together: an option set a kind takes is one the
// configuration knows, and a TLS condition only on a kind that takes tls:.
func TestKindRulesConsistent(t *testing.T) {
	known := map[OptionSet]bool{OptionsTLS: true, OptionsLogin: true, OptionsSourcePort: true, OptionsRequest: true,
		OptionsNTP: true, OptionsFTP: true, OptionsHTTP: true, OptionsBroadcast: true}
	for _, k := range kindList() {
		for _, set := range k.Options {
			if !known[set] {
				t.Errorf("kind %s takes unknown option set %q", k.Name, set)
			}
		}
		if (k.TLSOnlyWith != nil || k.TLSNote != "") && !k.Takes(OptionsTLS) {
			t.Errorf("kind %s has TLS rules but does not take tls:", k.Name)
		}
		if k.PasswordOptional && !k.Takes(OptionsLogin) {
			t.Errorf("kind %s has a login rule but does not log in", k.Name)
		}
		if k.Prober == nil {
			t.Errorf("kind %s has no prober", k.Name)
		}
		if p := k.NetworkOf(""); p != NetworkTCP && p != NetworkUDP {
			t.Errorf("kind %s: network %q", k.Name, p)
		}
	}
}

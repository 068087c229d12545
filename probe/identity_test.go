package probe

import (
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

func sampleCheck() *Check {
	return &Check{
		Profile: "p", Name: "n", Kind: "sip", Host: "h.example", Port: 5060,
		Network: "udp", Transport: "udp", IPFamily: FamilyBoth, Essential: true,
		Interval: time.Minute, Timeout: time.Second,
		TLS:  &TLSOptions{ExpectIssuer: []string{"CA"}},
		UDP:  &UDPOptions{Send: []byte{1}},
		HTTP: &HTTPOptions{ExpectStatus: [][2]int{{200, 399}}},
	}
}

// leafFields lists the paths ("TLS.CAFile") of every non-struct field of t,
// descending into nested structs and the structs options point to
// (time.Duration is a leaf).
func leafFields(t reflect.Type, prefix string) []string {
	var out []string
	for i := range t.NumField() {
		f := t.Field(i)
		ft := f.Type
		if ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		if ft.Kind() == reflect.Struct {
			out = append(out, leafFields(ft, prefix+f.Name+".")...)
			continue
		}
		out = append(out, prefix+f.Name)
	}
	return out
}

// change sets the field at path of c to a value different from the one it
// has; options that are nil are allocated first.
func change(t *testing.T, c *Check, path string) {
	v := reflect.ValueOf(c).Elem()
	for name := range strings.SplitSeq(path, ".") {
		if v.Kind() == reflect.Pointer {
			if v.IsNil() {
				v.Set(reflect.New(v.Type().Elem()))
			}
			v = v.Elem()
		}
		v = v.FieldByName(name)
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(v.String() + "x")
	case reflect.Int, reflect.Int64:
		v.SetInt(v.Int() + 1)
	case reflect.Bool:
		v.SetBool(!v.Bool())
	case reflect.Slice:
		v.Set(reflect.Append(v, reflect.Zero(v.Type().Elem())))
	default:
		t.Fatalf("field %s has kind %s, which this test cannot change; teach it", path, v.Kind())
	}
}

// TestSameSettingsCoversEveryField fails when a field is added to Check (or
// its options) that SameSettings neither compares nor lists as ignored: a
// setting the scheduler would otherwise not notice on a reload.
func TestSameSettingsCoversEveryField(t *testing.T) {
	ignored := settingsIgnored()
	fields := leafFields(reflect.TypeFor[Check](), "")
	for _, path := range fields {
		c, o := sampleCheck(), sampleCheck()
		if !c.SameSettings(o) {
			t.Fatal("two equal checks differ")
		}
		change(t, o, path)
		top, _, _ := strings.Cut(path, ".")
		switch same := c.SameSettings(o); {
		case slices.Contains(ignored, top) && !same:
			t.Errorf("%s is listed as ignored but SameSettings compares it", path)
		case !slices.Contains(ignored, top) && same:
			t.Errorf("a change of %s goes unnoticed: compare it in SameSettings or list it in settingsIgnored", path)
		}
	}
	for _, name := range ignored {
		if _, ok := reflect.TypeFor[Check]().FieldByName(name); !ok {
			t.Errorf("settingsIgnored lists %s, which Check has no longer", name)
		}
	}
}

// TestKeyCoversIdentity proves that every field of Key makes a difference
// to ID, and that the group of a range drops only the port.
func TestKeyCoversIdentity(t *testing.T) {
	base := sampleCheck()
	base.Range = "5060-5070"
	for _, path := range leafFields(reflect.TypeFor[Key](), "") {
		o := *base
		change(t, &o, path)
		if o.ID() == base.ID() {
			t.Errorf("a change of %s leaves the ID %q unchanged", path, base.ID())
		}
		if path != "Port" && o.GroupID() == base.GroupID() {
			t.Errorf("a change of %s leaves the group ID %q unchanged", path, base.GroupID())
		}
	}
	other := *base
	other.Port++
	if other.GroupID() != base.GroupID() || other.ID() == base.ID() {
		t.Errorf("ports of one range: IDs %q %q, groups %q %q", base.ID(), other.ID(), base.GroupID(), other.GroupID())
	}
	single := *base
	single.Range = ""
	if single.GroupID() != single.ID() {
		t.Errorf("a single check's group %q is not its ID %q", single.GroupID(), single.ID())
	}
	if single.ID() == base.ID() || single.ID() == base.GroupID() {
		t.Errorf("a single port and a range member share an ID: %q", single.ID())
	}
}

// TestKeyTransport is the identity half of the stale-series defect: a sip
// check over udp and the same check over tcp are different checks.
func TestKeyTransport(t *testing.T) {
	udp, tcp := sampleCheck(), sampleCheck()
	tcp.Transport, tcp.Network = "tcp", "tcp"
	if udp.ID() == tcp.ID() {
		t.Fatalf("udp and tcp variants share ID %q", udp.ID())
	}
	if got, want := udp.ID(), "p/n/sip+udp/h.example/5060"; got != want {
		t.Errorf("ID = %q, want %q", got, want)
	}
}

// TestKeyUnambiguous: separators inside fields cannot make two keys spell
// the same.
func TestKeyUnambiguous(t *testing.T) {
	a := Key{Profile: "a/b", Name: "c", Kind: "tcp", Host: "h", Port: 1}
	b := Key{Profile: "a", Name: "b/c", Kind: "tcp", Host: "h", Port: 1}
	c := Key{Profile: "a", Name: "b", Kind: "tcp+udp", Host: "h", Port: 1}
	d := Key{Profile: "a", Name: "b", Kind: "tcp", Transport: "udp", Host: "h", Port: 1}
	seen := map[string]Key{}
	for _, k := range []Key{a, b, c, d} {
		if prev, ok := seen[k.String()]; ok {
			t.Errorf("%+v and %+v both spell %q", prev, k, k.String())
		}
		seen[k.String()] = k
	}
}

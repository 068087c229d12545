package fdlimit

import "testing"

func TestFit(t *testing.T) {
	for _, c := range []struct {
		requested int
		limit     uint64
		want      int
	}{
		{16, 0, 16},          // unknown: as asked
		{16, 1 << 20, 16},    // plenty
		{64, 64, 8},          // (64-32)/4
		{1000, 1024, 248},    // (1024-32)/4
		{16, 100, 16},        // (100-32)/4 = 17 >= 16
		{16, 20, 1},          // below the reserve: still probes
		{0, 1024, 1},         // a nonsense request is at least 1
		{16, Reserve + 5, 1}, // (37-32)/4 = 1
	} {
		if got := Fit(c.requested, c.limit); got != c.want {
			t.Errorf("Fit(%d, %d) = %d, want %d", c.requested, c.limit, got, c.want)
		}
	}
}

func TestSizeRaisesAndFits(t *testing.T) {
	s, err := Size(16)
	if err != nil {
		t.Fatal(err)
	}
	if s.Effective < 1 || s.Effective > 16 {
		t.Errorf("Size(16) = %+v", s)
	}
	if s.Soft != 0 && s.Soft < s.Hard {
		t.Errorf("soft limit %d left below the hard %d", s.Soft, s.Hard)
	}
}

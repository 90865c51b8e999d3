package stripe

import "testing"

func TestFor(t *testing.T) {
	m := New(64)
	if m.For("tc1:a:1") != m.For("tc1:a:1") {
		t.Fatal("one key got two mutexes")
	}
	seen := map[any]bool{}
	for i := range 1000 {
		seen[m.For(string(rune('a'+i%26))+string(rune(i)))] = true
	}
	if len(seen) < 32 {
		t.Errorf("1000 keys used %d of 64 mutexes, want them spread", len(seen))
	}
	if one := New(0); one.For("x") != one.For("y") {
		t.Error("New(0) should have one mutex")
	}
}

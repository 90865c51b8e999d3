package embedded

import (
	"slices"
	"testing"
	"time"
)

func TestDueIndex(t *testing.T) {
	base := time.Unix(1000, 0)
	at := func(s int) time.Time { return base.Add(time.Duration(s) * time.Second) }
	d := newDueIndex()
	d.set("c", at(3), 1, false)
	d.set("a", at(1), 1, false)
	d.set("b", at(2), 1, false)
	d.set("late", at(100), 1, false)
	tests := []struct {
		name  string
		t     time.Time
		limit int
		want  []string
	}{
		{"earliest first", at(3), 0, []string{"a", "b", "c"}},
		{"limit", at(3), 2, []string{"a", "b"}},
		{"nothing due", at(0), 0, nil},
		{"repeatable", at(3), 0, []string{"a", "b", "c"}},
	}
	for _, tt := range tests {
		if got := d.due(tt.t, tt.limit); !slices.Equal(got, tt.want) {
			t.Errorf("%s: due(%v, %d) = %v, want %v", tt.name, tt.t.Sub(base), tt.limit, got, tt.want)
		}
	}

	// A newer change moves an entry; an older one arriving late is ignored.
	d.set("a", at(50), 5, false)
	d.set("a", at(1), 4, false)
	if got, want := d.due(at(3), 0), []string{"b", "c"}; !slices.Equal(got, want) {
		t.Errorf("after moving a: due = %v, want %v", got, want)
	}
	// Zero NextAt: not due. Removed: not due, and a late older change
	// cannot bring it back.
	d.set("b", time.Time{}, 2, false)
	d.set("c", time.Time{}, 7, true)
	d.set("c", at(1), 6, false)
	if got := d.due(at(60), 0); !slices.Equal(got, []string{"a"}) {
		t.Errorf("after clearing b and removing c: due = %v, want [a]", got)
	}

	// Stale heap entries are dropped by a rebuild; live ones survive it.
	for i := 0; i < 5000; i++ {
		d.set("a", at(10+i), uint64(10+i), false)
	}
	if n := len(d.mu.heap); n > 2*len(d.mu.at)+1024 {
		t.Errorf("heap holds %d entries for %d globals; want it rebuilt", n, len(d.mu.at))
	}
	if got := d.due(at(10000), 0); !slices.Equal(got, []string{"late", "a"}) {
		t.Errorf("after many moves: due = %v, want [late a]", got)
	}
}

package undo

import (
	"errors"
	"testing"
)

func TestPairState(t *testing.T) {
	a := Row{{"id", Int(1)}, {"v", Int(1)}}
	b := Row{{"id", Int(1)}, {"v", Int(2)}}
	c := Row{{"id", Int(1)}, {"v", Int(3)}}
	tests := []struct {
		name    string
		pair    Pair
		current Row
		want    State
	}{
		{"insert still there", Pair{After: a}, a, Pending},
		{"insert already deleted", Pair{After: a}, nil, Undone},
		{"insert changed since", Pair{After: a}, b, Dirty},
		{"delete still gone", Pair{Before: a}, nil, Pending},
		{"delete already restored", Pair{Before: a}, a, Undone},
		{"delete key reused", Pair{Before: a}, b, Dirty},
		{"update as left", Pair{Before: a, After: b}, b, Pending},
		{"update already undone", Pair{Before: a, After: b}, a, Undone},
		{"update changed since", Pair{Before: a, After: b}, c, Dirty},
		{"update row deleted since", Pair{Before: a, After: b}, nil, Dirty},
		{"no-op update", Pair{Before: a, After: a}, a, Undone},
	}
	for _, tt := range tests {
		if got := tt.pair.State(tt.current); got != tt.want {
			t.Errorf("%s: State() = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestCheck(t *testing.T) {
	row := func(id, v int64) Row { return Row{{"id", Int(id)}, {"v", Int(v)}} }
	rec := Record{Table: "t", Op: OpUpdate, PrimaryKey: []string{"id"},
		Before: []Row{row(1, 10), row(2, 20), row(3, 30)},
		After:  []Row{row(1, 11), row(2, 21), row(3, 31)},
	}
	todo, err := rec.Check([]Row{row(3, 31), row(1, 11), row(2, 20)})
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, p := range todo {
		keys = append(keys, p.Key)
	}
	if got, want := keys, []string{"t:1", "t:3"}; len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("pending keys = %q, want %q", got, want)
	}

	_, err = rec.Check([]Row{row(1, 11), row(2, 99), row(3, 31)})
	var de *DirtyError
	if !errors.As(err, &de) || !errors.Is(err, ErrDirty) {
		t.Fatalf("Check(dirty) = %v, want a *DirtyError", err)
	}
	if got, want := de.Key, "t:2"; got != want {
		t.Errorf("DirtyError.Key = %q, want %q", got, want)
	}
	if got, want := de.Column, "v"; got != want {
		t.Errorf("DirtyError.Column = %q, want %q", got, want)
	}
	if got, want := de.Error(), "undo: t row t:2: row was changed after the branch wrote it (column v)"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}

	_, err = rec.Check([]Row{row(1, 11), row(3, 31)})
	if !errors.As(err, &de) || de.Column != "" || de.Key != "t:2" {
		t.Errorf("Check(missing row) = %v, want a *DirtyError for t:2 without column", err)
	}
}

//go:build failpoints

package failpoint

import (
	"strings"
	"syscall"
	"testing"
	"time"
)

// The switches of these tests, and a point of their own, registered as a
// test binary does (the library has neither).
func init() {
	Register(Switch, "test/skip-a", "a test switch")
	Register(Switch, "test/skip-b", "a test switch, armed on@N")
	Register(Switch, "test/skip-c", "a test switch never armed")
	Register(Point, "test/point", "a test binary's own point")
}

func TestArm(t *testing.T) {
	tests := []struct {
		spec    string
		wantErr bool
	}{
		{"", false},
		{"tc/decide/after-decision=crash", false},
		{"tc/decide/after-decision=crash@3; tc/phase2/after-send=crash", false},
		{"datasource/commit/after-register=pause", false},
		{"datasource/commit/after-register=pause@2", false},
		{"test/skip-a=on", false},
		{"test/skip-b=on@1", false},
		{"no/such/point=crash", true},
		{"no/such/switch=on", true},
		{"tc/decide/after-decision", true},
		{"tc/decide/after-decision=explode", true},
		{"tc/decide/after-decision=crash@0", true},
		{"tc/decide/after-decision=on", true}, // a point is not a switch
		{"test/skip-a=crash", true},           // a switch is not a point
		{"test/skip-a=on@x", true},            // bad count
		{"test/skip-a=skip", true},            // unknown action
		{"test/skip-a=pause", true},           // a switch does not pause
		{"datasource/commit/after-register", true},
		{"test/point=crash@2", false}, // registered by this test binary
		{"test/point=on", true},
	}
	for _, tt := range tests {
		err := Arm(tt.spec)
		if (err != nil) != tt.wantErr {
			t.Errorf("Arm(%q) = %v, want error %v", tt.spec, err, tt.wantErr)
		}
	}
	// A point armed for a later hit does not fire on earlier ones.
	if err := Arm("tc/phase2/after-send=crash@1000"); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 10; i++ {
		Hit("tc/phase2/after-send")
		Hit("tc/begin/after-store")
	}
	Arm("")
	if armed.Load() {
		t.Error("Arm(\"\") left failpoints armed")
	}
}

func TestPointNames(t *testing.T) {
	for name, doc := range Points {
		if doc == "" || strings.ContainsAny(name, "=;@ ") {
			t.Errorf("point %q: bad name or no doc", name)
		}
		if strings.HasPrefix(name, "it/") || strings.HasPrefix(name, "test/") {
			t.Errorf("point %q: a test's point listed by the library (Register it from the test)", name)
		}
	}
}

func TestRegisterRefuses(t *testing.T) {
	tests := []struct {
		kind      Kind
		name, doc string
	}{
		{Point, "tc/decide/after-decision", "a library point again"},
		{Switch, "test/skip-a", "registered twice"},
		{Point, "test/new", ""},
		{Point, "test/bad name", "a space"},
		{Switch, "test/x=on", "an action in the name"},
		{Kind(7), "test/kind", "no such kind"},
	}
	for _, tt := range tests {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("Register(%v, %q, %q) did not panic", tt.kind, tt.name, tt.doc)
				}
			}()
			Register(tt.kind, tt.name, tt.doc)
		}()
	}
}

func TestSwitches(t *testing.T) {
	defer Arm("")
	if On("test/skip-a") {
		t.Fatal("On of an unarmed switch = true")
	}
	if err := Arm("test/skip-a=on; test/skip-b=on@2"); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		if !On("test/skip-a") {
			t.Errorf("On(skip-at-commit) call %d = false, want true", i+1)
		}
	}
	var got []bool
	for i := 0; i < 4; i++ {
		got = append(got, On("test/skip-b"))
	}
	if want := []bool{false, true, false, false}; !equal(got, want) {
		t.Errorf("On(skip-at-rollback=on@2) = %v, want %v", got, want)
	}
	if On("test/skip-c") {
		t.Error("On of a switch not armed = true")
	}
	// A switch name given to Hit does nothing (and a point to On).
	Hit("test/skip-a")
	if On("tc/phase2/after-send") {
		t.Error("On of a point = true")
	}
}

func TestPause(t *testing.T) {
	defer Arm("")
	if err := Arm("datasource/commit/after-register=pause@2"); err != nil {
		t.Fatal(err)
	}
	Hit("datasource/commit/after-register") // first hit: passes
	done := make(chan struct{})
	go func() {
		Hit("datasource/commit/after-register")
		close(done)
	}()
	select {
	case <-done:
		t.Fatal("the second hit did not pause")
	case <-time.After(100 * time.Millisecond):
	}
	// SIGUSR1 may race with the hit reaching its wait; send until it
	// resumes.
	for {
		syscall.Kill(syscall.Getpid(), syscall.SIGUSR1)
		select {
		case <-done:
			Hit("datasource/commit/after-register") // later hits pass
			return
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func equal(a, b []bool) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

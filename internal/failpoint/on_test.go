package failpoint

import (
	"strings"
	"syscall"
	"testing"
	"time"
)

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
		{"it/rm/skip-at-commit=on", false},
		{"it/rm/skip-at-rollback=on@1", false},
		{"no/such/point=crash", true},
		{"no/such/switch=on", true},
		{"tc/decide/after-decision", true},
		{"tc/decide/after-decision=explode", true},
		{"tc/decide/after-decision=crash@0", true},
		{"tc/decide/after-decision=on", true}, // a point is not a switch
		{"it/rm/skip-at-commit=crash", true},  // a switch is not a point
		{"it/rm/skip-at-commit=on@x", true},   // bad count
		{"it/rm/skip-at-commit=skip", true},   // unknown action
		{"it/rm/skip-at-commit=pause", true},  // a switch does not pause
		{"datasource/commit/after-register", true},
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

func TestNamesDoNotOverlap(t *testing.T) {
	for name := range Switches {
		if _, ok := Points[name]; ok {
			t.Errorf("%q is both a point and a switch", name)
		}
	}
	for name, doc := range Points {
		if doc == "" || strings.ContainsAny(name, "=;@ ") {
			t.Errorf("point %q: bad name or no doc", name)
		}
	}
	for name, doc := range Switches {
		if doc == "" || strings.ContainsAny(name, "=;@ ") {
			t.Errorf("switch %q: bad name or no doc", name)
		}
	}
}

func TestSwitches(t *testing.T) {
	defer Arm("")
	if On("it/rm/skip-at-commit") {
		t.Fatal("On of an unarmed switch = true")
	}
	if err := Arm("it/rm/skip-at-commit=on; it/rm/skip-at-rollback=on@2"); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		if !On("it/rm/skip-at-commit") {
			t.Errorf("On(skip-at-commit) call %d = false, want true", i+1)
		}
	}
	var got []bool
	for i := 0; i < 4; i++ {
		got = append(got, On("it/rm/skip-at-rollback"))
	}
	if want := []bool{false, true, false, false}; !equal(got, want) {
		t.Errorf("On(skip-at-rollback=on@2) = %v, want %v", got, want)
	}
	if On("it/rm/drop-phase2") {
		t.Error("On of a switch not armed = true")
	}
	// A switch name given to Hit does nothing (and a point to On).
	Hit("it/rm/skip-at-commit")
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

package failpoint

import "testing"

func TestArm(t *testing.T) {
	tests := []struct {
		spec    string
		wantErr bool
	}{
		{"", false},
		{"tc/decide/after-decision=crash", false},
		{"tc/decide/after-decision=crash@3; tc/phase2/after-send=crash", false},
		{"no/such/point=crash", true},
		{"tc/decide/after-decision", true},
		{"tc/decide/after-decision=explode", true},
		{"tc/decide/after-decision=crash@0", true},
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

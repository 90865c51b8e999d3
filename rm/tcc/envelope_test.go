package tcc

import (
	"errors"
	"testing"

	"github.com/xact-io/xact/rm"
)

func TestDecodeEnvelope(t *testing.T) {
	_, good, err := encodeRequest(Reserve{SKU: "apple", N: 2})
	if err != nil {
		t.Fatal(err)
	}
	raw, _, _ := encodeRequest(Reserve{SKU: "pear", N: 1})
	failed := failedEnvelope(raw, errors.New("out of pears"))
	tests := []struct {
		name       string
		data       string
		wantReq    Reserve
		wantFailed bool
		wantErr    error // errors.Is; nil: success
		wantPerm   bool
	}{
		{"good", string(good), Reserve{SKU: "apple", N: 2}, false, nil, false},
		{"failed try", string(failed), Reserve{SKU: "pear", N: 1}, true, nil, false},
		{"unknown fields are ignored", `{"v":1,"req":{"sku":"a","n":1,"x":2},"later":true}`, Reserve{SKU: "a", N: 1}, false, nil, false},
		{"empty", ``, Reserve{}, false, ErrActionContext, true},
		{"not json", `xyz`, Reserve{}, false, ErrActionContext, true},
		{"no request", `{"v":1}`, Reserve{}, false, ErrActionContext, true},
		{"wrong request type", `{"v":1,"req":"apple"}`, Reserve{}, false, ErrActionContext, true},
		{"newer version", `{"v":2,"req":{}}`, Reserve{}, false, nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env, req, err := decodeEnvelope[Reserve]("res", []byte(tt.data))
			if tt.name == "newer version" {
				// Not understood, but not permanent: another RM may know it.
				if err == nil || rm.IsPermanent(err) {
					t.Fatalf("decode = %v, want a retryable error", err)
				}
				return
			}
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
				t.Fatalf("decode error = %v, want %v", err, tt.wantErr)
			}
			if got := rm.IsPermanent(err); got != tt.wantPerm {
				t.Errorf("IsPermanent = %v, want %v", got, tt.wantPerm)
			}
			if err != nil {
				return
			}
			if req != tt.wantReq {
				t.Errorf("req = %+v, want %+v", req, tt.wantReq)
			}
			if env.TryFailed != tt.wantFailed {
				t.Errorf("TryFailed = %v, want %v", env.TryFailed, tt.wantFailed)
			}
		})
	}
}

// FuzzDecodeEnvelope: decoding arbitrary application data never panics,
// and every failure but an unknown version is permanent.
func FuzzDecodeEnvelope(f *testing.F) {
	_, good, _ := encodeRequest(Reserve{SKU: "apple", N: 2})
	f.Add(good)
	f.Add([]byte(`{"v":1,"req":null}`))
	f.Add([]byte(`{"v":1,"req":{"n":"x"}}`))
	f.Add([]byte(`{"v":2}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		env, _, err := decodeEnvelope[Reserve]("res", data)
		if err != nil && !rm.IsPermanent(err) && env.V == envelopeVersion {
			t.Errorf("decode(%q) = %v: not permanent although the version is known", data, err)
		}
	})
}

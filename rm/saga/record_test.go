package saga

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/xact-io/xact/rm"
)

type state struct {
	N int `json:"n"`
}

func TestDecodeRecord(t *testing.T) {
	tests := []struct {
		name     string
		data     string
		wantIn   state
		wantOut  *state
		wantErr  error // errors.Is; nil: success
		wantPerm bool
	}{
		{"started", `{"v":1,"saga":"s","step":"a","state":"started","in":{"n":1}}`, state{1}, nil, nil, false},
		{"done", `{"v":1,"saga":"s","step":"a","state":"done","in":{"n":1},"out":{"n":2}}`, state{1}, &state{2}, nil, false},
		{"failed", `{"v":1,"saga":"s","step":"a","state":"failed","in":{"n":1},"err":"x"}`, state{1}, nil, nil, false},
		{"output ignored unless done", `{"v":1,"state":"failed","in":{"n":1},"out":{"n":2}}`, state{1}, nil, nil, false},
		{"empty", ``, state{}, nil, ErrRecord, true},
		{"not json", `[`, state{}, nil, ErrRecord, true},
		{"no input", `{"v":1,"state":"started"}`, state{}, nil, ErrRecord, true},
		{"bad input", `{"v":1,"in":"x"}`, state{}, nil, ErrRecord, true},
		{"bad output", `{"v":1,"state":"done","in":{},"out":[1]}`, state{}, nil, ErrRecord, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, in, out, err := decodeRecord[state]("s/a", []byte(tt.data))
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
				t.Fatalf("decode error = %v, want %v", err, tt.wantErr)
			}
			if got := rm.IsPermanent(err); got != tt.wantPerm {
				t.Errorf("IsPermanent = %v, want %v", got, tt.wantPerm)
			}
			if err != nil {
				return
			}
			if in != tt.wantIn {
				t.Errorf("in = %+v, want %+v", in, tt.wantIn)
			}
			if (out == nil) != (tt.wantOut == nil) || out != nil && *out != *tt.wantOut {
				t.Errorf("out = %v, want %v", out, tt.wantOut)
			}
		})
	}
	// A newer version is not understood but not permanent either.
	if _, _, _, err := decodeRecord[state]("s/a", []byte(`{"v":2}`)); err == nil || rm.IsPermanent(err) {
		t.Errorf("decode of version 2 = %v, want a retryable error", err)
	}
}

// FuzzDecodeRecord: decoding arbitrary application data never panics, and
// every failure of a known version is permanent.
func FuzzDecodeRecord(f *testing.F) {
	f.Add([]byte(`{"v":1,"saga":"s","step":"a","state":"done","in":{"n":1},"out":{"n":2}}`))
	f.Add([]byte(`{"v":1,"in":null}`))
	f.Add([]byte(`{"v":3}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, _, _, err := decodeRecord[state]("s/a", data)
		if err != nil && !rm.IsPermanent(err) && r == nil {
			// Only an unknown version may be retryable.
			var probe struct {
				V int `json:"v"`
			}
			if jsonErr := json.Unmarshal(data, &probe); jsonErr == nil && probe.V == recordVersion {
				t.Errorf("decode(%q) = %v: not permanent although the version is known", data, err)
			}
		}
	})
}

package badger

import (
	"encoding/hex"
	"errors"
	"flag"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/xact-io/xact/protocol/xactpb"
	"github.com/xact-io/xact/storage"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata")

func sampleGlobal() *storage.Global {
	at := time.Date(2031, 5, 6, 7, 8, 9, 123456789, time.UTC)
	return &storage.Global{
		XID:       "node-1:42",
		Name:      "place-order",
		Status:    xactpb.GlobalStatus_GLOBAL_STATUS_COMMIT_RETRYING,
		Timeout:   90 * time.Second,
		BeganAt:   at,
		Deadline:  at.Add(90 * time.Second),
		NextAt:    at.Add(time.Second + time.Nanosecond),
		Attempts:  3,
		BranchSeq: 2,
		Parked:    true,
		Reason:    "rm unreachable",
		UpdatedAt: at.Add(2 * time.Second),
		History:   []storage.Event{{At: at, What: "commit"}, {}, {At: at.Add(time.Second), What: "retry"}},
	}
}

func sampleBranch() *storage.Branch {
	return &storage.Branch{
		XID:          "node-1:42",
		ID:           2,
		Resource:     "db:3306/orders",
		Type:         xactpb.BranchType_BRANCH_TYPE_TCC,
		Status:       xactpb.BranchStatus_BRANCH_STATUS_PHASE_ONE_DONE,
		LockKeys:     []string{"orders:1", "", "orders:\x00"},
		AppData:      []byte{0, 1, 2, 0xff},
		RegisteredAt: time.Date(2031, 5, 6, 7, 8, 9, 1, time.UTC),
		Reason:       "ok",
		Attempts:     1,
	}
}

func TestGlobalRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		g    *storage.Global
	}{
		{"full", sampleGlobal()},
		{"zero", &storage.Global{}},
		{"tombstone", &storage.Global{XID: "x", Status: xactpb.GlobalStatus_GLOBAL_STATUS_COMMITTED, Finished: true}},
		{"epoch and pre-1970", &storage.Global{BeganAt: time.Unix(0, 0).UTC(), Deadline: time.Date(1600, 1, 1, 0, 0, 0, 5, time.UTC)}},
		{"far future", &storage.Global{NextAt: time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC)}},
		{"negatives", &storage.Global{Status: -1, Attempts: -2, Timeout: -3, BranchSeq: math.MinInt64}},
		{"max", &storage.Global{Attempts: math.MaxInt32, Timeout: math.MaxInt64, BranchSeq: math.MaxInt64}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := decodeGlobal(encodeGlobal(tt.g))
			if err != nil {
				t.Fatalf("decodeGlobal(encodeGlobal(g)) = %v", err)
			}
			if !reflect.DeepEqual(got, tt.g) {
				t.Errorf("decodeGlobal(encodeGlobal(g)) = %+v, want %+v", got, tt.g)
			}
		})
	}
}

func TestBranchRoundTrip(t *testing.T) {
	for _, b := range []*storage.Branch{sampleBranch(), {}, {LockKeys: []string{""}, ID: -1}} {
		got, err := decodeBranch(encodeBranch(b))
		if err != nil {
			t.Fatalf("decodeBranch(encodeBranch(%+v)) = %v", b, err)
		}
		if !reflect.DeepEqual(got, b) {
			t.Errorf("decodeBranch(encodeBranch(b)) = %+v, want %+v", got, b)
		}
	}
	for _, h := range []holder{{}, {xid: "x", branchID: 7}} {
		got, err := decodeHolder(encodeHolder(h))
		if err != nil || got != h {
			t.Errorf("decodeHolder(encodeHolder(%+v)) = %+v, %v", h, got, err)
		}
	}
}

// TestGolden pins the on-disk encoding: a change here makes existing data
// unreadable, so it must be deliberate (run with -update).
func TestGolden(t *testing.T) {
	tests := []struct {
		file string
		enc  []byte
	}{
		{"global.hex", encodeGlobal(sampleGlobal())},
		{"branch.hex", encodeBranch(sampleBranch())},
		{"holder.hex", encodeHolder(holder{xid: "node-1:42", branchID: 2})},
	}
	for _, tt := range tests {
		path := filepath.Join("testdata", tt.file)
		got := hex.EncodeToString(tt.enc) + "\n"
		if *update {
			if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("reading golden file: %v (run with -update to create it)", err)
		}
		if got != string(want) {
			t.Errorf("encoding of %s = %s, want %s", tt.file, got, want)
		}
	}
}

func TestDecodeErrors(t *testing.T) {
	tests := []struct {
		name string
		b    []byte
	}{
		{"truncated length", []byte{0x0a, 0x05, 'a'}},
		{"truncated varint", []byte{0x18, 0x80}},
		{"bad tag", []byte{0x00}},
		{"wrong wire type for string", []byte{0x08, 0x01}},                     // field 1 as varint
		{"wrong wire type for varint", []byte{0x1a, 0x00}},                     // field 3 as bytes
		{"status overflows int32", []byte{0x18, 0x80, 0x80, 0x80, 0x80, 0x10}}, // 1<<32
		{"trailing junk", []byte{0x2a, 0x02, 0x10, 0x7f, 0x2a}},                // field 5 {nanos: 127}, then a tag without value
		{"nanos out of range", []byte{0x2a, 0x06, 0x10, 0x80, 0x94, 0xeb, 0xdc, 0x03}},
		{"bad history", []byte{0x6a, 0x01, 0xff}},
		{"end group", []byte{0x0c}},
	}
	for _, tt := range tests {
		if _, err := decodeGlobal(tt.b); !errors.Is(err, ErrCorrupt) {
			t.Errorf("decodeGlobal(%s) = %v, want %v", tt.name, err, ErrCorrupt)
		}
	}
	if _, err := decodeBranch([]byte{0x32, 0x09}); !errors.Is(err, ErrCorrupt) {
		t.Errorf("decodeBranch(truncated) = %v, want %v", err, ErrCorrupt)
	}
	if _, err := decodeHolder([]byte{0x10}); !errors.Is(err, ErrCorrupt) {
		t.Errorf("decodeHolder(truncated) = %v, want %v", err, ErrCorrupt)
	}
}

// Unknown fields are skipped, so a newer version may add fields.
func TestDecodeSkipsUnknownFields(t *testing.T) {
	b := encodeGlobal(&storage.Global{XID: "x"})
	b = append(b, 0xf8, 0x01, 0x05)           // field 31 varint 5
	b = append(b, 0xfa, 0x01, 0x02, 'h', 'i') // field 31 bytes "hi"
	b = append(b, 0xfd, 0x01, 1, 2, 3, 4)     // field 31 fixed32
	g, err := decodeGlobal(b)
	if err != nil || g.XID != "x" {
		t.Errorf("decodeGlobal(with unknown fields) = %+v, %v, want XID x", g, err)
	}
}

func FuzzDecodeGlobal(f *testing.F) {
	f.Add(encodeGlobal(sampleGlobal()))
	f.Add(encodeGlobal(&storage.Global{}))
	f.Add([]byte{0x6a, 0x01, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		g, err := decodeGlobal(b)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("decodeGlobal error %v does not wrap ErrCorrupt", err)
			}
			return
		}
		// Whatever decodes re-encodes to something that decodes the same.
		again, err := decodeGlobal(encodeGlobal(g))
		if err != nil || !reflect.DeepEqual(again, g) {
			t.Fatalf("re-decode = %+v, %v, want %+v", again, err, g)
		}
	})
}

func FuzzDecodeBranch(f *testing.F) {
	f.Add(encodeBranch(sampleBranch()))
	f.Add(encodeHolder(holder{xid: "x", branchID: 1}))
	f.Fuzz(func(t *testing.T, b []byte) {
		br, err := decodeBranch(b)
		if err == nil {
			again, err := decodeBranch(encodeBranch(br))
			if err != nil || !reflect.DeepEqual(again, br) {
				t.Fatalf("re-decode = %+v, %v, want %+v", again, err, br)
			}
		}
		if _, err := decodeHolder(b); err != nil && !errors.Is(err, ErrCorrupt) {
			t.Fatalf("decodeHolder error %v does not wrap ErrCorrupt", err)
		}
	})
}

func TestEscaped(t *testing.T) {
	for _, s := range []string{"", "a", "\x00", "\x00\x01", "a\x00b", "\xff\x00\xff", strings.Repeat("\x00", 5)} {
		enc := appendEscaped(nil, s)
		got, rest, err := consumeEscaped(append(enc, "tail"...))
		if err != nil || got != s || string(rest) != "tail" {
			t.Errorf("consumeEscaped(appendEscaped(%q)+tail) = %q, %q, %v; want %q, tail, nil", s, got, rest, err, s)
		}
	}
	for _, b := range [][]byte{{}, {'a'}, {0}, {0, 2}, {'a', 0, 0}} {
		if _, _, err := consumeEscaped(b); err == nil {
			t.Errorf("consumeEscaped(%q) = nil error, want one", b)
		}
	}
}

// FuzzKeys checks the key encodings: lock keys of distinct (resource, key)
// pairs differ and parse back; an xid's branch and lock-index prefixes are
// never a prefix of another xid's keys; order is kept.
func FuzzKeys(f *testing.F) {
	f.Add("ab", "c", "a", "bc")
	f.Add("a\x00", "x", "a", "\x00x")
	f.Add("p", "", "p\x00", "")
	f.Fuzz(func(t *testing.T, r1, k1, r2, k2 string) {
		l1, l2 := lockKey(r1, k1), lockKey(r2, k2)
		if (r1 == r2 && k1 == k2) != (string(l1) == string(l2)) {
			t.Fatalf("lockKey(%q,%q)=%q vs lockKey(%q,%q)=%q: equality does not match", r1, k1, l1, r2, k2, l2)
		}
		if r, k, err := parseLockKey(l1); err != nil || r != r1 || k != k1 {
			t.Fatalf("parseLockKey(lockKey(%q, %q)) = %q, %q, %v", r1, k1, r, k, err)
		}
		// Order: by resource, then key.
		want := strings.Compare(r1, r2)
		if want == 0 {
			want = strings.Compare(k1, k2)
		}
		if got := strings.Compare(string(l1), string(l2)); got != want {
			t.Fatalf("order of lockKey(%q,%q) vs lockKey(%q,%q) = %d, want %d", r1, k1, r2, k2, got, want)
		}
		// xids r1 and r2: one's prefixes never cover the other's keys.
		if r1 != r2 {
			if strings.HasPrefix(string(branchKey(r2, 1)), string(branchPrefix(r1))) {
				t.Fatalf("branchPrefix(%q) covers branchKey(%q, 1)", r1, r2)
			}
			if strings.HasPrefix(string(heldKey(r2, 1, k1, k2)), string(heldPrefix(r1))) {
				t.Fatalf("heldPrefix(%q) covers a held key of %q", r1, r2)
			}
		}
		hk := heldKey(r1, 9, k1, k2)
		id, res, key, err := parseHeldKey(hk[len(heldPrefix(r1)):])
		if err != nil || id != 9 || res != k1 || key != k2 {
			t.Fatalf("parseHeldKey(heldKey(%q, 9, %q, %q)) = %d, %q, %q, %v", r1, k1, k2, id, res, key, err)
		}
	})
}

package embedded

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
	released := sampleBranch()
	released.LocksReleased = true
	for _, b := range []*storage.Branch{sampleBranch(), released, {}, {LockKeys: []string{""}, ID: -1}} {
		got, err := decodeBranch(encodeBranch(b))
		if err != nil {
			t.Fatalf("decodeBranch(encodeBranch(%+v)) = %v", b, err)
		}
		if !reflect.DeepEqual(got, b) {
			t.Errorf("decodeBranch(encodeBranch(b)) = %+v, want %+v", got, b)
		}
	}
}

func releasedGlobal() *storage.Global {
	g := sampleGlobal()
	g.LocksReleased = true
	return g
}

func releasedBranch() *storage.Branch {
	b := sampleBranch()
	b.LocksReleased = true
	return b
}

// goldens are the records pinned in testdata. global.hex and branch.hex
// were written by format version 1 (before the LocksReleased fields); they
// must keep decoding, and records without the new fields keep encoding to
// them. The *_released.hex files pin the fields format version 2 added.
var goldens = []struct {
	file   string
	enc    func() []byte
	decode func([]byte) (any, error)
	want   any
}{
	{"global.hex", func() []byte { return encodeGlobal(sampleGlobal()) },
		func(b []byte) (any, error) { return decodeGlobal(b) }, sampleGlobal()},
	{"branch.hex", func() []byte { return encodeBranch(sampleBranch()) },
		func(b []byte) (any, error) { return decodeBranch(b) }, sampleBranch()},
	{"global_released.hex", func() []byte { return encodeGlobal(releasedGlobal()) },
		func(b []byte) (any, error) { return decodeGlobal(b) }, releasedGlobal()},
	{"branch_released.hex", func() []byte { return encodeBranch(releasedBranch()) },
		func(b []byte) (any, error) { return decodeBranch(b) }, releasedBranch()},
	// The value of a format-1 lock row, which the migration tests write.
	{"holder.hex", func() []byte { return encodeLegacyHolder("node-1:42", 2) }, nil, nil},
	// Format version 3: the stored values, sealed with their keys.
	{"global_sealed.hex", func() []byte { return seal(globalKey("node-1:42"), encodeGlobal(releasedGlobal())) },
		func(b []byte) (any, error) {
			msg, err := unseal(globalKey("node-1:42"), b)
			if err != nil {
				return nil, err
			}
			return decodeGlobal(msg)
		}, releasedGlobal()},
	{"branch_sealed.hex", func() []byte { return seal(branchKey("node-1:42", 2), encodeBranch(releasedBranch())) },
		func(b []byte) (any, error) {
			msg, err := unseal(branchKey("node-1:42", 2), b)
			if err != nil {
				return nil, err
			}
			return decodeBranch(msg)
		}, releasedBranch()},
}

// TestSeal checks that the seal catches every flipped bit, a value under
// another key, and a value cut short or without a seal.
func TestSeal(t *testing.T) {
	key := branchKey("node-1:42", 2)
	msg := encodeBranch(sampleBranch())
	sealed := seal(key, append([]byte(nil), msg...))
	if got, err := unseal(key, sealed); err != nil || string(got) != string(msg) {
		t.Fatalf("unseal(seal(m)) = %x, %v; want %x", got, err, msg)
	}
	for i := range len(sealed) * 8 {
		b := append([]byte(nil), sealed...)
		b[i/8] ^= 1 << (i % 8)
		if _, err := unseal(key, b); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("unseal with bit %d flipped = %v, want %v", i, err, ErrCorrupt)
		}
	}
	if _, err := unseal(branchKey("node-1:42", 3), sealed); !errors.Is(err, ErrCorrupt) {
		t.Errorf("unseal under another key = %v, want %v", err, ErrCorrupt)
	}
	for _, b := range [][]byte{nil, sealed[:sealLen-1], sealed[:len(sealed)-1], msg} {
		if _, err := unseal(key, b); !errors.Is(err, ErrCorrupt) {
			t.Errorf("unseal(%x) = %v, want %v", b, err, ErrCorrupt)
		}
	}
}

func readGolden(t *testing.T, file string) []byte {
	t.Helper()
	want, err := os.ReadFile(filepath.Join("testdata", file))
	if err != nil {
		t.Fatalf("reading golden file: %v (run with -update to create it)", err)
	}
	return want
}

// TestGolden pins the on-disk encoding: a change here makes existing data
// unreadable, so it must be deliberate (run with -update).
func TestGolden(t *testing.T) {
	for _, tt := range goldens {
		got := hex.EncodeToString(tt.enc()) + "\n"
		if *update {
			if err := os.WriteFile(filepath.Join("testdata", tt.file), []byte(got), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if want := readGolden(t, tt.file); got != string(want) {
			t.Errorf("encoding of %s = %s, want %s", tt.file, got, want)
		}
	}
}

// TestGoldenDecode decodes every golden record, old and new, to the value
// it was written from.
func TestGoldenDecode(t *testing.T) {
	for _, tt := range goldens {
		if tt.decode == nil {
			continue
		}
		b, err := hex.DecodeString(strings.TrimSpace(string(readGolden(t, tt.file))))
		if err != nil {
			t.Fatalf("%s: %v", tt.file, err)
		}
		got, err := tt.decode(b)
		if err != nil || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("decoding %s = %+v, %v; want %+v", tt.file, got, err, tt.want)
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
	f.Add(encodeBranch(releasedBranch()))
	f.Fuzz(func(t *testing.T, b []byte) {
		br, err := decodeBranch(b)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("decodeBranch error %v does not wrap ErrCorrupt", err)
			}
			return
		}
		again, err := decodeBranch(encodeBranch(br))
		if err != nil || !reflect.DeepEqual(again, br) {
			t.Fatalf("re-decode = %+v, %v, want %+v", again, err, br)
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

// FuzzKeys checks the key encodings: an xid's branch prefix is never a
// prefix of another xid's keys, branch keys keep registration order, and
// the format-1 lock-index keys the migration reads parse back.
func FuzzKeys(f *testing.F) {
	f.Add("ab", "c", "a", "bc")
	f.Add("a\x00", "x", "a", "\x00x")
	f.Add("p", "", "p\x00", "")
	f.Fuzz(func(t *testing.T, x1, k1, x2, k2 string) {
		if x1 != x2 {
			if strings.HasPrefix(string(branchKey(x2, 1)), string(branchPrefix(x1))) {
				t.Fatalf("branchPrefix(%q) covers branchKey(%q, 1)", x1, x2)
			}
		}
		if a, b := branchKey(x1, 255), branchKey(x1, 256); strings.Compare(string(a), string(b)) >= 0 {
			t.Fatalf("branchKey(%q, 255) sorts after branchKey(%q, 256)", x1, x1)
		}
		hk := legacyHeldKey(x1, 9, k1, k2)
		xid, id, err := parseLegacyHeld(hk)
		if err != nil || xid != x1 || id != 9 {
			t.Fatalf("parseLegacyHeld(legacyHeldKey(%q, 9, %q, %q)) = %q, %d, %v", x1, k1, k2, xid, id, err)
		}
	})
}

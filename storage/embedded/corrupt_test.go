package embedded

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/xact-io/xact/protocol/xactpb"
	"github.com/xact-io/xact/storage"
)

// The corruption matrix: damage each file of a data directory that holds
// unfinished globals of every status (flip a bit, overwrite a range,
// truncate, delete) and check that Open either refuses, naming the damage,
// or recovers everything exactly. A store that opens and serves less than
// was stored is the failure this guards against (issue 10).
//
// Two directories are damaged: one closed cleanly (tables, value log,
// MANIFEST, key registry, discard stats, state file) and one copied from a
// running store, as a crash leaves it (the same plus WAL files holding
// acknowledged writes not yet in a table).
//
// `go test` runs a sample of positions per file (a few seconds); with
// XACT_CORRUPTION_MATRIX=long (make soak) every position is tried, up to a
// cap per file. FuzzCorruptDataDir damages the same directories at fuzzed
// positions.

// matrixOpts keeps Badger small: 1 MiB memtables, values of 64 KiB and
// more in the value log.
var matrixOpts = []Option{smallTables(1 << 20)}

var unfinished = []struct {
	status storage.Status
	parked bool
}{
	{xactpb.GlobalStatus_GLOBAL_STATUS_BEGIN, false},
	{xactpb.GlobalStatus_GLOBAL_STATUS_COMMITTING, false},
	{xactpb.GlobalStatus_GLOBAL_STATUS_COMMIT_RETRYING, false},
	{xactpb.GlobalStatus_GLOBAL_STATUS_ROLLBACKING, false},
	{xactpb.GlobalStatus_GLOBAL_STATUS_ROLLBACK_RETRYING, false},
	{xactpb.GlobalStatus_GLOBAL_STATUS_TIMEOUT_ROLLBACKING, false},
	{xactpb.GlobalStatus_GLOBAL_STATUS_TIMEOUT_ROLLBACK_RETRYING, false},
	{xactpb.GlobalStatus_GLOBAL_STATUS_ASYNC_COMMITTING, false},
	{xactpb.GlobalStatus_GLOBAL_STATUS_COMMIT_FAILED, true},
	{xactpb.GlobalStatus_GLOBAL_STATUS_ROLLBACK_FAILED, true},
	{xactpb.GlobalStatus_GLOBAL_STATUS_TIMEOUT_ROLLBACK_FAILED, true},
	{xactpb.GlobalStatus_GLOBAL_STATUS_COMMIT_RETRY_TIMEOUT, true},
	{xactpb.GlobalStatus_GLOBAL_STATUS_ROLLBACK_RETRY_TIMEOUT, true},
}

func commitSide(st storage.Status) bool {
	switch st {
	case xactpb.GlobalStatus_GLOBAL_STATUS_COMMITTING, xactpb.GlobalStatus_GLOBAL_STATUS_COMMIT_RETRYING,
		xactpb.GlobalStatus_GLOBAL_STATUS_ASYNC_COMMITTING, xactpb.GlobalStatus_GLOBAL_STATUS_COMMIT_FAILED,
		xactpb.GlobalStatus_GLOBAL_STATUS_COMMIT_RETRY_TIMEOUT:
		return true
	}
	return false
}

// fillStore writes round r's globals: one of every unfinished status with
// three branches (one carrying a value-log-sized payload in round 0),
// fillers, and finished ones (tombstones).
func fillStore(tb testing.TB, s *Store, round int) {
	tb.Helper()
	ctx := context.Background()
	now := time.Date(2031, 1, 2, 3, 4, 5, 0, time.UTC)
	rng := rand.New(rand.NewPCG(uint64(round), 7))
	must := func(err error) {
		tb.Helper()
		if err != nil {
			tb.Fatal(err)
		}
	}
	register := func(xid string, n int) {
		for b := range n {
			br := &storage.Branch{XID: xid, Resource: fmt.Sprintf("db-%d", b%2), Type: xactpb.BranchType_BRANCH_TYPE_AT,
				LockKeys: []string{fmt.Sprintf("t:%s:%d:a", xid, b), fmt.Sprintf("t:%s:%d:b", xid, b)},
				AppData:  []byte(fmt.Sprintf("undo %d of %s %x", b, xid, rng.Uint64()))}
			if round == 0 && xid == "r0-g-4" && b == 1 {
				br.AppData = make([]byte, 100<<10) // to the value log
				for i := range br.AppData {
					br.AppData[i] = byte(rng.Uint32())
				}
			}
			_, err := addBranch(ctx, s, br)
			must(err)
		}
	}
	for i, u := range unfinished {
		xid := fmt.Sprintf("r%d-g-%d", round, i)
		must(s.CreateGlobal(ctx, &storage.Global{XID: xid, Name: "matrix", Status: begin, Timeout: time.Hour,
			BeganAt: now, Deadline: now.Add(time.Hour), NextAt: now.Add(time.Hour)}, storage.Durable))
		register(xid, 3)
		if u.status == begin {
			continue
		}
		_, err := s.UpdateGlobal(ctx, xid, func(g *storage.Global) error {
			g.Status, g.Parked, g.Attempts, g.UpdatedAt = u.status, u.parked, 2, now
			g.NextAt = now.Add(time.Duration(i) * time.Second)
			if u.parked {
				g.NextAt, g.Reason = time.Time{}, "parked by the matrix"
			}
			g.History = append(g.History, storage.Event{At: now, What: "attempt 1"})
			g.LocksReleased = commitSide(u.status)
			return nil
		}, storage.Durable)
		must(err)
		if !commitSide(u.status) {
			// The last branch's undo is done: its rows are free.
			_, err := s.UpdateBranch(ctx, xid, 3, func(b *storage.Branch) error {
				b.Status, b.LocksReleased = xactpb.BranchStatus_BRANCH_STATUS_PHASE_TWO_ROLLBACKED, true
				return nil
			}, storage.Durable)
			must(err)
		}
	}
	for i := range 40 {
		xid := fmt.Sprintf("r%d-f-%02d", round, i)
		must(s.CreateGlobal(ctx, &storage.Global{XID: xid, Status: begin, Deadline: now.Add(time.Hour), NextAt: now.Add(time.Hour)}, storage.Durable))
		register(xid, 1+i%3)
		if i%4 == 0 {
			must(s.FinishGlobal(ctx, xid, committed, storage.Durable)) // a tombstone
		}
	}
}

// storeImage is everything a store serves.
type storeImage struct {
	Globals    []*storage.Global
	Branches   map[string][]*storage.Branch
	Locks      []storage.Lock
	Tombstones map[string]*storage.Global
}

func imageOf(s *Store) (*storeImage, error) {
	ctx := context.Background()
	img := &storeImage{Branches: map[string][]*storage.Branch{}, Tombstones: map[string]*storage.Global{}}
	var err error
	if img.Globals, err = s.ListGlobals(ctx, storage.Filter{}); err != nil {
		return nil, err
	}
	for _, g := range img.Globals {
		if img.Branches[g.XID], err = s.Branches(ctx, g.XID); err != nil {
			return nil, err
		}
	}
	if img.Locks, err = locksOf(ctx, s, ""); err != nil {
		return nil, err
	}
	for round := range 2 {
		for i := 0; i < 40; i += 4 {
			xid := fmt.Sprintf("r%d-f-%02d", round, i)
			g, err := s.GetGlobal(ctx, xid)
			if errors.Is(err, storage.ErrNotFound) {
				continue
			}
			if err != nil {
				return nil, err
			}
			img.Tombstones[xid] = g
		}
	}
	return img, nil
}

// matrixDir is a reference directory and what it holds.
type matrixDir struct {
	dir string
	img *storeImage
}

var (
	matrixOnce sync.Once
	matrixRoot string                // removed by TestMain
	matrixDirs map[string]*matrixDir // "clean", "crash"
	matrixErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if matrixRoot != "" {
		os.RemoveAll(matrixRoot)
	}
	os.Exit(code)
}

// matrixRefs builds the reference directories once per test binary.
func matrixRefs(tb testing.TB) map[string]*matrixDir {
	tb.Helper()
	matrixOnce.Do(func() {
		root, err := os.MkdirTemp("", "xact-matrix-")
		if err != nil {
			matrixErr = err
			return
		}
		matrixRoot = root
		matrixDirs = map[string]*matrixDir{}
		for _, kind := range []string{"clean", "crash"} {
			dir := filepath.Join(root, kind)
			s, err := Open(dir, matrixOpts...)
			if err != nil {
				matrixErr = err
				return
			}
			fillStore(tb, s, 0)
			if err := s.Close(); err != nil {
				matrixErr = err
				return
			}
			if s, err = Open(dir, matrixOpts...); err != nil {
				matrixErr = err
				return
			}
			fillStore(tb, s, 1)
			img, err := imageOf(s)
			if err != nil {
				matrixErr = err
				return
			}
			if kind == "crash" {
				// What a crash leaves: the files of a running store, the
				// second round's writes only in its WAL.
				crash := dir + "-image"
				if err := copyDir(crash, dir); err != nil {
					matrixErr = err
					return
				}
				s.Close()
				dir = crash
			} else if err := s.Close(); err != nil {
				matrixErr = err
				return
			}
			matrixDirs[kind] = &matrixDir{dir: dir, img: img}
		}
	})
	if matrixErr != nil {
		tb.Fatalf("building the matrix directories: %v", matrixErr)
	}
	return matrixDirs
}

func copyDir(dst, src string) error {
	if err := os.MkdirAll(dst, 0o700); err != nil {
		return err
	}
	entries, err := os.ReadDir(src)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if err := copyFile(filepath.Join(dst, e.Name()), filepath.Join(src, e.Name())); err != nil {
			return err
		}
	}
	return nil
}

// copyFile copies src, keeping it sparse past its last data extent
// (Badger's logs are sized far beyond what they hold).
func copyFile(dst, src string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	fi, err := in.Stat()
	if err != nil {
		return err
	}
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, io.NewSectionReader(in, 0, dataEnd(in, fi.Size()))); err != nil {
		out.Close()
		return err
	}
	if err := out.Truncate(fi.Size()); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// damage is one way to damage a file.
type damage struct {
	name  string
	apply func(path string) error
}

func flipBit(off int64, bit uint) damage {
	return damage{fmt.Sprintf("flip bit %d at %d", bit, off), func(path string) error {
		return patch(path, off, func(b []byte) { b[0] ^= 1 << bit }, 1)
	}}
}

func overwrite(off int64, n int, fill func(i int) byte, what string) damage {
	return damage{fmt.Sprintf("overwrite %d bytes at %d with %s", n, off, what), func(path string) error {
		return patch(path, off, func(b []byte) {
			for i := range b {
				b[i] = fill(i)
			}
		}, n)
	}}
}

func truncateTo(n int64) damage {
	return damage{fmt.Sprintf("truncate to %d", n), func(path string) error { return os.Truncate(path, n) }}
}

var deleteFile = damage{"delete", os.Remove}

func patch(path string, off int64, fn func([]byte), n int) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	b := make([]byte, n)
	if _, err := f.ReadAt(b, off); err != nil && err != io.EOF {
		return err
	}
	fn(b)
	_, err = f.WriteAt(b, off)
	return err
}

// damagesFor lists what the matrix does to a file of size n whose
// non-zero bytes end before used.
func damagesFor(n, used int64, long bool) []damage {
	if n == 0 {
		return []damage{deleteFile}
	}
	var offs []int64
	if long {
		step := max(used/4096, 1)
		for o := int64(0); o < used; o += step {
			offs = append(offs, o)
		}
	} else {
		for _, f := range []int64{0, 1, 2, 3, 5, 7} {
			offs = append(offs, used*f/8)
		}
		offs = append(offs, 0, 1, used-9, used-5, used-1)
	}
	if used < n {
		offs = append(offs, used, (used+n)/2, n-1) // in the zeros after the data
	}
	seen := map[int64]bool{}
	var out []damage
	for i, o := range offs {
		if o < 0 || o >= n || seen[o] {
			continue
		}
		seen[o] = true
		out = append(out, flipBit(o, uint(i*3)%8))
	}
	ranges := []int64{0, used / 2, max(used-8, 0)}
	if long {
		ranges = ranges[:0]
		for o := int64(0); o < used; o += max(used/256, 8) {
			ranges = append(ranges, o)
		}
	}
	for _, o := range ranges {
		out = append(out, overwrite(o, 8, func(int) byte { return 0xff }, "0xff"))
		out = append(out, overwrite(o, 8, func(int) byte { return 0 }, "zeros"))
	}
	rng := rand.New(rand.NewPCG(uint64(n), uint64(used)))
	junk := make([]byte, 100)
	for i := range junk {
		junk[i] = byte(rng.Uint32())
	}
	out = append(out, overwrite(used/3, 100, func(i int) byte { return junk[i] }, "100 random bytes"))
	cuts := []int64{0, 1, used / 2, used - 1, used - 8}
	if long {
		for o := int64(0); o < used; o += max(used/256, 1) {
			cuts = append(cuts, o)
		}
	}
	seen = map[int64]bool{}
	for _, c := range cuts {
		if c < 0 || c >= n || seen[c] {
			continue
		}
		seen[c] = true
		out = append(out, truncateTo(c))
	}
	return append(out, deleteFile)
}

// usedLen returns the offset after a file's last non-zero byte.
func usedLen(path string) (size, used int64, err error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return 0, 0, err
	}
	last, err := lastNonZero(f, fi.Size())
	return fi.Size(), last + 1, err
}

// checkDamaged copies ref, damages file with d and opens it: a refusal
// must name the damage, a store that opens must serve everything ref held.
func checkDamaged(t *testing.T, ref *matrixDir, file string, d damage) {
	t.Helper()
	dir := t.TempDir()
	if err := copyDir(dir, ref.dir); err != nil {
		t.Fatal(err)
	}
	if err := d.apply(filepath.Join(dir, file)); err != nil {
		t.Fatalf("%s %s: %v", d.name, file, err)
	}
	s, err := Open(dir, matrixOpts...)
	if err != nil {
		if !errors.Is(err, storage.ErrCorrupt) && !strings.Contains(err.Error(), file) {
			t.Errorf("%s: %s: Open refused with %v; want an error that names the damage (storage.ErrCorrupt or the file)", file, d.name, err)
		}
		return
	}
	img, err := imageOf(s)
	if cerr := s.Close(); cerr != nil && err == nil {
		err = cerr
	}
	switch {
	case err != nil:
		// Refused while serving: acceptable only as damage.
		if !errors.Is(err, storage.ErrCorrupt) {
			t.Errorf("%s: %s: Open succeeded, then reading failed with %v; want storage.ErrCorrupt", file, d.name, err)
		}
	case !reflect.DeepEqual(img, ref.img):
		t.Errorf("%s: %s: SILENT LOSS: Open succeeded and serves %s", file, d.name, imageDiff(img, ref.img))
	}
}

func imageDiff(got, want *storeImage) string {
	switch {
	case len(got.Globals) != len(want.Globals):
		return fmt.Sprintf("%d globals, want %d", len(got.Globals), len(want.Globals))
	case !reflect.DeepEqual(got.Globals, want.Globals):
		for i := range got.Globals {
			if !reflect.DeepEqual(got.Globals[i], want.Globals[i]) {
				return fmt.Sprintf("global %+v, want %+v", got.Globals[i], want.Globals[i])
			}
		}
	case !reflect.DeepEqual(got.Branches, want.Branches):
		for xid := range want.Branches {
			if !reflect.DeepEqual(got.Branches[xid], want.Branches[xid]) {
				return fmt.Sprintf("%d branches of %s, want %d (or different ones)", len(got.Branches[xid]), xid, len(want.Branches[xid]))
			}
		}
	case !reflect.DeepEqual(got.Locks, want.Locks):
		return fmt.Sprintf("%d locks, want %d", len(got.Locks), len(want.Locks))
	case !reflect.DeepEqual(got.Tombstones, want.Tombstones):
		return fmt.Sprintf("%d tombstones, want %d", len(got.Tombstones), len(want.Tombstones))
	}
	return "something else"
}

// matrixLong reports whether the long matrix was asked for.
func matrixLong() bool { return os.Getenv("XACT_CORRUPTION_MATRIX") == "long" }

func TestCorruptionMatrix(t *testing.T) {
	refs := matrixRefs(t)
	long := matrixLong()
	for _, kind := range []string{"clean", "crash"} {
		ref := refs[kind]
		entries, err := os.ReadDir(ref.dir)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		slices.Sort(names)
		t.Logf("%s directory: %v", kind, names)
		for _, name := range names {
			size, used, err := usedLen(filepath.Join(ref.dir, name))
			if err != nil {
				t.Fatal(err)
			}
			t.Run(kind+"/"+name, func(t *testing.T) {
				t.Parallel()
				for _, d := range damagesFor(size, used, long) {
					checkDamaged(t, ref, name, d)
				}
			})
		}
	}
}

// TestMatrixDirsOpen checks the reference directories themselves: they
// open and serve what was written.
func TestMatrixDirsOpen(t *testing.T) {
	for kind, ref := range matrixRefs(t) {
		t.Run(kind, func(t *testing.T) { checkDamaged(t, ref, "none", damage{"nothing", func(string) error { return nil }}) })
	}
}

// FuzzCorruptDataDir damages one file of a reference directory at a
// fuzzed offset: flip (op 0), overwrite with data (op 1), truncate (op 2).
// The seeds run with `go test`; `go test -fuzz FuzzCorruptDataDir` (make
// soak) explores further.
func FuzzCorruptDataDir(f *testing.F) {
	f.Add(false, uint8(0), uint32(100), uint8(0), []byte{1})
	f.Add(false, uint8(0), uint32(1000), uint8(1), []byte{0xff})
	f.Add(false, uint8(0), uint32(700), uint8(1), []byte("\xff\xff\xff\xff\xff\xff\xff\xff"))
	f.Add(true, uint8(5), uint32(300), uint8(1), []byte{0, 0, 0, 0})
	f.Add(true, uint8(3), uint32(40), uint8(2), []byte(nil))
	f.Add(true, uint8(4), uint32(64), uint8(0), []byte{0x80})
	f.Fuzz(func(t *testing.T, crash bool, fileIdx uint8, off uint32, op uint8, data []byte) {
		kind := "clean"
		if crash {
			kind = "crash"
		}
		ref := matrixRefs(t)[kind]
		entries, err := os.ReadDir(ref.dir)
		if err != nil {
			t.Fatal(err)
		}
		name := entries[int(fileIdx)%len(entries)].Name()
		size, used, err := usedLen(filepath.Join(ref.dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if size == 0 || len(data) == 0 && op%3 != 2 {
			return
		}
		// Aim mostly at the bytes that hold something.
		o := int64(off) % max(used, 1)
		var d damage
		switch op % 3 {
		case 0:
			d = flipBit(o, uint(data[0])%8)
		case 1:
			n := min(len(data), int(size-o))
			d = overwrite(o, n, func(i int) byte { return data[i] }, "fuzz data")
		default:
			d = truncateTo(o)
		}
		checkDamaged(t, ref, name, d)
	})
}

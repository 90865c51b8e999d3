package embedded

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	bdb "github.com/dgraph-io/badger/v4"

	"github.com/xact-io/xact/storage"
)

// TestBackupRestore backs up a store and restores it into a new directory
// that serves exactly what the store served.
func TestBackupRestore(t *testing.T) {
	s := openTest(t, matrixOpts...)
	fillStore(t, s, 0)
	fillStore(t, s, 1)
	want, err := imageOf(s)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	info, err := s.Backup(context.Background(), &buf)
	if err != nil {
		t.Fatalf("Backup = %v", err)
	}
	if info.Globals != uint64(len(want.Globals)) || info.Tombstones != uint64(len(want.Tombstones)) {
		t.Errorf("Backup = %+v, want %d globals and %d tombstones", info, len(want.Globals), len(want.Tombstones))
	}
	if got, err := CheckBackup(bytes.NewReader(buf.Bytes())); err != nil || got != info {
		t.Errorf("CheckBackup = %+v, %v; want %+v", got, err, info)
	}
	dir := filepath.Join(t.TempDir(), "restored")
	if got, err := Restore(dir, bytes.NewReader(buf.Bytes()), matrixOpts...); err != nil || got != info {
		t.Fatalf("Restore = %+v, %v; want %+v", got, err, info)
	}
	r := openDir(t, dir, matrixOpts...)
	got, err := imageOf(r)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("restored store serves %s", imageDiff(got, want))
	}
	// It is a working store.
	if err := r.CreateGlobal(context.Background(), &storage.Global{XID: "after-restore", Status: begin}, storage.Durable); err != nil {
		t.Errorf("CreateGlobal after restore = %v", err)
	}
}

// TestBackupWhileWriting takes backups while globals register branches
// and finish: each backup is one snapshot, so its restore passes Open's
// checks (every global's branches 1..BranchSeq, no branch without its
// global).
func TestBackupWhileWriting(t *testing.T) {
	s := openTest(t)
	ctx := context.Background()
	var stop atomic.Bool
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := 0; !stop.Load(); i++ {
				xid := fmt.Sprintf("w%d-%d", w, i)
				if err := s.CreateGlobal(ctx, &storage.Global{XID: xid, Status: begin, Deadline: time.Now().Add(time.Hour)}, storage.Durable); err != nil {
					t.Error(err)
					return
				}
				for b := range 3 {
					if _, err := addBranch(ctx, s, &storage.Branch{XID: xid, Resource: "r", LockKeys: []string{fmt.Sprintf("%s-%d", xid, b)}}); err != nil {
						t.Error(err)
						return
					}
				}
				if i%2 == 0 {
					if err := s.FinishGlobal(ctx, xid, committed, storage.Durable); err != nil {
						t.Error(err)
						return
					}
				}
			}
		})
	}
	for i := range 3 {
		time.Sleep(50 * time.Millisecond)
		var buf bytes.Buffer
		info, err := s.Backup(ctx, &buf)
		if err != nil {
			t.Fatalf("Backup %d = %v", i, err)
		}
		if _, err := Restore(filepath.Join(t.TempDir(), "r"), &buf); err != nil {
			t.Fatalf("Restore of backup %d (%+v) = %v", i, info, err)
		}
	}
	stop.Store(true)
	wg.Wait()
}

// TestBackupDamage: a backup cut short or with any damaged frame is
// refused by CheckBackup and Restore, and Restore leaves nothing behind.
func TestBackupDamage(t *testing.T) {
	s := openTest(t, matrixOpts...)
	fillStore(t, s, 0)
	var buf bytes.Buffer
	if _, err := s.Backup(context.Background(), &buf); err != nil {
		t.Fatal(err)
	}
	good := buf.Bytes()
	n := len(good)
	cases := map[string][]byte{
		"empty":         nil,
		"cut short":     good[:n/2],
		"no trailer":    good[:n-trailerBody-8],
		"data after":    append(append([]byte(nil), good...), 0),
		"not a backup":  []byte("hello, world, this is not a backup"),
		"cut in header": good[:5],
	}
	for _, off := range []int{0, 9, 14, 20, n / 3, n / 2, n - 30, n - 1} {
		b := append([]byte(nil), good...)
		b[off] ^= 0x10
		cases[fmt.Sprintf("bit flipped at %d", off)] = b
	}
	for name, b := range cases {
		if _, err := CheckBackup(bytes.NewReader(b)); err == nil {
			t.Errorf("CheckBackup(%s) = nil, want an error", name)
		}
		dir := filepath.Join(t.TempDir(), "r")
		if _, err := Restore(dir, bytes.NewReader(b)); err == nil {
			t.Errorf("Restore(%s) = nil, want an error", name)
		}
		if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("Restore(%s) failed and left %s behind (%v)", name, dir, err)
		}
	}
	if err := os.WriteFile(filepath.Join(t.TempDir(), "x"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	full := t.TempDir()
	os.WriteFile(filepath.Join(full, "something"), []byte("x"), 0o600)
	if _, err := Restore(full, bytes.NewReader(good)); err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Errorf("Restore into a directory that is not empty = %v, want a refusal", err)
	}
}

// TestBackupRefusesDamagedRecord: a backup does not carry damage along.
func TestBackupRefusesDamagedRecord(t *testing.T) {
	s := openTest(t)
	if err := s.db.Update(func(txn *bdb.Txn) error {
		return txn.Set(branchKey("x", 1), seal(branchKey("x", 2), encodeBranch(&storage.Branch{XID: "x", ID: 1})))
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Backup(context.Background(), &bytes.Buffer{}); !errors.Is(err, storage.ErrCorrupt) {
		t.Errorf("Backup of a store with a damaged record = %v, want %v", err, storage.ErrCorrupt)
	}
}

// TestVerify reports a sound directory, a damaged one (naming the file,
// leaving it as it was), and refuses a directory in use.
func TestVerify(t *testing.T) {
	dir := t.TempDir()
	s := openDir(t, dir, matrixOpts...)
	fillStore(t, s, 0)
	want, _ := imageOf(s)
	if _, err := Verify(dir); !errors.Is(err, storage.ErrLocked) {
		t.Errorf("Verify of a directory in use = %v, want %v", err, storage.ErrLocked)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	rep, err := Verify(dir, matrixOpts...)
	if err != nil || !rep.OK() || rep.Globals != uint64(len(want.Globals)) || rep.Tombstones != uint64(len(want.Tombstones)) || rep.Format != formatVersion {
		t.Fatalf("Verify = %+v, %v; want OK with %d globals and %d tombstones", rep, err, len(want.Globals), len(want.Tombstones))
	}
	// Verify leaves the directory as the server wants it: it opens.
	s = openDir(t, dir, matrixOpts...)
	if got, _ := imageOf(s); !reflect.DeepEqual(got, want) {
		t.Errorf("after Verify the store serves %s", imageDiff(got, want))
	}
	s.Close()

	sst := filepath.Join(dir, "000001.sst")
	if err := patch(sst, 100, func(b []byte) { b[0] ^= 4 }, 1); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(sst)
	rep, err = Verify(dir)
	if err != nil || rep.OK() || rep.Damage[0].File != "000001.sst" {
		t.Fatalf("Verify of a damaged directory = %+v, %v; want damage in 000001.sst", rep, err)
	}
	var out strings.Builder
	rep.WriteTo(&out)
	if !strings.Contains(out.String(), "DAMAGED") || !strings.Contains(out.String(), "000001.sst") {
		t.Errorf("report = %q, want DAMAGED and the file", out.String())
	}
	if after, _ := os.ReadFile(sst); !bytes.Equal(before, after) {
		t.Errorf("Verify changed the damaged table")
	}
}

package embedded

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	bdb "github.com/dgraph-io/badger/v4"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/xact-io/xact/protocol/xactpb"
	"github.com/xact-io/xact/storage"
)

// legacyBranch is a branch as format version 1 stored it, with the lock
// index entries version 1 had for it (the keys it took; none once it was
// released).
type legacyBranch struct {
	resource string
	keys     []string
	held     []string
}

// writeLegacy writes globals and their branches into dir as format
// version 1 did: no format key, no release flags, lock rows and lock index
// entries for what was held.
func writeLegacy(t *testing.T, dir string, globals map[string]storage.Status, branches map[string][]legacyBranch) {
	t.Helper()
	db, err := bdb.Open(bdb.DefaultOptions(dir).WithLogger(nil))
	if err != nil {
		t.Fatalf("bdb.Open = %v", err)
	}
	defer db.Close()
	err = db.Update(func(txn *bdb.Txn) error {
		for xid, st := range globals {
			bs := branches[xid]
			g := &storage.Global{XID: xid, Status: st, BranchSeq: int64(len(bs)), Deadline: time.Now().Add(time.Hour)}
			if err := txn.Set(globalKey(xid), encodeGlobal(g)); err != nil {
				return err
			}
			for i, lb := range bs {
				id := int64(i + 1)
				b := &storage.Branch{XID: xid, ID: id, Resource: lb.resource, LockKeys: lb.keys}
				if err := txn.Set(branchKey(xid, id), encodeBranch(b)); err != nil {
					return err
				}
				for _, k := range lb.held {
					if err := txn.Set(legacyLockKey(lb.resource, k), encodeLegacyHolder(xid, id)); err != nil {
						return err
					}
					if err := txn.Set(legacyHeldKey(xid, id, lb.resource, k), nil); err != nil {
						return err
					}
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("writing format-1 records = %v", err)
	}
}

// TestMigrateFromFormat1 opens a directory written by format version 1 and
// checks that the locks are the ones version 1 held, including releases
// that version 1 recorded only by deleting lock rows.
func TestMigrateFromFormat1(t *testing.T) {
	dir := t.TempDir()
	const (
		beginSt    = xactpb.GlobalStatus_GLOBAL_STATUS_BEGIN
		retrying   = xactpb.GlobalStatus_GLOBAL_STATUS_COMMIT_RETRYING
		rollbacked = xactpb.GlobalStatus_GLOBAL_STATUS_ROLLBACKING
	)
	writeLegacy(t, dir,
		map[string]storage.Status{"begin": beginSt, "retrying": retrying, "rolling": rollbacked, "covered": beginSt},
		map[string][]legacyBranch{
			// b was held by branch 1 when branch 2 registered.
			"begin": {{"r", []string{"a", "b"}, []string{"a", "b"}}, {"r", []string{"b", "c"}, []string{"c"}}},
			// The first commit round did not finish and released everything.
			"retrying": {{"r", []string{"d"}, nil}, {"s", []string{"e"}, nil}},
			// Branch 3 was rolled back and released.
			"rolling": {{"r", []string{"f"}, []string{"f"}}, {"r", []string{"g"}, []string{"g"}}, {"r", []string{"h"}, nil}},
			// Branch 2 listed only a key branch 1 held.
			"covered": {{"r", []string{"i"}, []string{"i"}}, {"r", []string{"i"}, nil}},
		})
	want := []storage.Lock{
		{Resource: "r", Key: "a", XID: "begin", BranchID: 1},
		{Resource: "r", Key: "b", XID: "begin", BranchID: 1},
		{Resource: "r", Key: "c", XID: "begin", BranchID: 2},
		{Resource: "r", Key: "f", XID: "rolling", BranchID: 1},
		{Resource: "r", Key: "g", XID: "rolling", BranchID: 2},
		{Resource: "r", Key: "i", XID: "covered", BranchID: 1},
	}
	ctx := context.Background()
	for i := range 2 { // the second Open finds format 2 and changes nothing
		s, err := Open(dir)
		if err != nil {
			t.Fatalf("Open #%d = %v", i+1, err)
		}
		got, err := locksOf(ctx, s, "")
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("Open #%d: Locks = %+v, %v; want %+v", i+1, got, err, want)
		}
		released := map[string][]bool{}
		for _, xid := range []string{"begin", "retrying", "rolling", "covered"} {
			bs, err := s.Branches(ctx, xid)
			if err != nil {
				t.Fatalf("Branches(%s) = %v", xid, err)
			}
			for _, b := range bs {
				released[xid] = append(released[xid], b.LocksReleased)
			}
		}
		wantReleased := map[string][]bool{
			"begin": {false, false}, "retrying": {true, true}, "rolling": {false, false, true}, "covered": {false, true},
		}
		if !reflect.DeepEqual(released, wantReleased) {
			t.Errorf("Open #%d: LocksReleased of the branches = %v, want %v", i+1, released, wantReleased)
		}
		var left []string
		var version []byte
		if err := s.db.View(func(txn *bdb.Txn) error {
			for _, p := range []byte{prefixLegacyLock, prefixLegacyHeld} {
				for _, k := range collectKeys(txn, []byte{p}, 100) {
					left = append(left, fmt.Sprintf("%q", k))
				}
			}
			item, err := txn.Get(formatKey)
			if err != nil {
				return err
			}
			version, err = item.ValueCopy(nil)
			return err
		}); err != nil {
			t.Fatalf("reading keys = %v", err)
		}
		if len(left) > 0 {
			t.Errorf("Open #%d: format-1 keys left: %s", i+1, strings.Join(left, " "))
		}
		if v, n := protowire.ConsumeVarint(version); n != len(version) || v != formatVersion {
			t.Errorf("Open #%d: format version %x, want %d", i+1, version, formatVersion)
		}
		if err := s.Close(); err != nil {
			t.Fatalf("Close = %v", err)
		}
	}
}

// TestMigrateInChunks migrates more branches than one transaction may
// write, and deletes more format-1 keys than that.
func TestMigrateInChunks(t *testing.T) {
	dir := t.TempDir()
	globals := map[string]storage.Status{}
	branches := map[string][]legacyBranch{}
	for i := range 10 {
		xid := fmt.Sprintf("x%d", i)
		globals[xid] = xactpb.GlobalStatus_GLOBAL_STATUS_ROLLBACKING
		for j := range 3 {
			k := fmt.Sprintf("%s-%d", xid, j)
			var held []string
			if j == 0 {
				held = []string{k}
			}
			branches[xid] = append(branches[xid], legacyBranch{"r", []string{k}, held})
		}
	}
	writeLegacy(t, dir, globals, branches)
	s := openDir(t, dir, withWriteBudget(4))
	locks, err := locksOf(context.Background(), s, "")
	if err != nil || len(locks) != 10 {
		t.Errorf("Locks after migrating in chunks = %d, %v; want 10 (branch 1 of each global)", len(locks), err)
	}
	for _, l := range locks {
		if l.BranchID != 1 {
			t.Errorf("lock %+v held by branch %d, want 1", l, l.BranchID)
		}
	}
}

func TestOpenNewerFormat(t *testing.T) {
	dir := t.TempDir()
	s := openDir(t, dir)
	if err := s.db.Update(func(txn *bdb.Txn) error {
		return txn.Set(formatKey, protowire.AppendVarint(nil, formatVersion+1))
	}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if s, err := Open(dir); err == nil || !strings.Contains(err.Error(), "format version") {
		if err == nil {
			s.Close()
		}
		t.Fatalf("Open(format %d) = %v, want a format version error", formatVersion+1, err)
	}
}

// TestMigrateFromFormat2 opens a directory of format version 2 (records
// without seals) and checks that every record is sealed, tombstones keep
// their expiry, and everything reads back as it was.
func TestMigrateFromFormat2(t *testing.T) {
	dir := t.TempDir()
	now := time.Now().UTC().Truncate(time.Second)
	g := &storage.Global{XID: "x1", Status: xactpb.GlobalStatus_GLOBAL_STATUS_ROLLBACK_RETRYING, BranchSeq: 2, NextAt: now}
	tomb := &storage.Global{XID: "x0", Status: committed, Finished: true}
	branches := []*storage.Branch{
		{XID: "x1", ID: 1, Resource: "r", LockKeys: []string{"a"}},
		{XID: "x1", ID: 2, Resource: "r", LockKeys: []string{"b"}, LocksReleased: true},
	}
	db, err := bdb.Open(bdb.DefaultOptions(dir).WithLogger(nil))
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(txn *bdb.Txn) error {
		txn.Set(formatKey, protowire.AppendVarint(nil, 2))
		txn.Set(globalKey(g.XID), encodeGlobal(g))
		txn.SetEntry(bdb.NewEntry(tombstoneKey(tomb.XID), encodeGlobal(tomb)).WithTTL(time.Hour))
		for _, b := range branches {
			txn.Set(branchKey(b.XID, b.ID), encodeBranch(b))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	db.Close()

	s := openDir(t, dir, withWriteBudget(1)) // one record per migration write
	ctx := context.Background()
	if got, err := s.GetGlobal(ctx, "x1"); err != nil || !reflect.DeepEqual(got, g) {
		t.Errorf("GetGlobal(x1) after migration = %+v, %v; want %+v", got, err, g)
	}
	if got, err := s.GetGlobal(ctx, "x0"); err != nil || !reflect.DeepEqual(got, tomb) {
		t.Errorf("GetGlobal(x0) after migration = %+v, %v; want %+v", got, err, tomb)
	}
	if got, err := s.Branches(ctx, "x1"); err != nil || !reflect.DeepEqual(got, branches) {
		t.Errorf("Branches(x1) after migration = %+v, %v; want %+v", got, err, branches)
	}
	if locks, _ := locksOf(ctx, s, ""); len(locks) != 1 || locks[0].Key != "a" {
		t.Errorf("Locks after migration = %+v, want the one on a", locks)
	}
	err = s.db.View(func(txn *bdb.Txn) error {
		if v, err := readFormat(txn); err != nil || v != formatVersion {
			t.Errorf("format after migration = %d, %v; want %d", v, err, formatVersion)
		}
		for _, k := range [][]byte{globalKey("x1"), tombstoneKey("x0"), branchKey("x1", 1), branchKey("x1", 2)} {
			item, err := txn.Get(k)
			if err != nil {
				return err
			}
			v, _ := item.ValueCopy(nil)
			if !isSealed(k, v) {
				t.Errorf("record %q after migration is not sealed", k)
			}
			if bytes.Equal(k, tombstoneKey("x0")) && item.ExpiresAt() == 0 {
				t.Errorf("tombstone lost its expiry in the migration")
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestMigrateKeepsDamage checks that the migration does not seal a record
// that does not decode: Open refuses and names it.
func TestMigrateKeepsDamage(t *testing.T) {
	dir := t.TempDir()
	db, err := bdb.Open(bdb.DefaultOptions(dir).WithLogger(nil))
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(txn *bdb.Txn) error {
		txn.Set(formatKey, protowire.AppendVarint(nil, 2))
		txn.Set(globalKey("x1"), encodeGlobal(&storage.Global{XID: "x1", Status: committing, BranchSeq: 1}))
		return txn.Set(branchKey("x1", 1), []byte{0x0a, 0xff, 0xff}) // does not decode
	})
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	s, err := Open(dir)
	if err == nil {
		s.Close()
		t.Fatal("Open of a format-2 directory with an undecodable branch = nil, want an error")
	}
	var ce *CorruptError
	if !errors.As(err, &ce) || !errors.Is(err, storage.ErrCorrupt) || !strings.Contains(err.Error(), `branch "x1"/1`) {
		t.Fatalf("Open = %v, want a *CorruptError naming branch x1/1", err)
	}
}

package tc_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/xact-io/xact/protocol/xactpb"
	"github.com/xact-io/xact/storage"
	"github.com/xact-io/xact/storage/embedded"
	"github.com/xact-io/xact/tc"
	"github.com/xact-io/xact/tc/ledger"
	"github.com/xact-io/xact/tc/tctest"
)

// damagedStore reports the branches of one global as damaged, as the
// Badger store does when a branch record fails its checksum or is missing.
type damagedStore struct {
	storage.Store
	xid   string
	reads atomic.Int64
}

func (s *damagedStore) Branches(ctx context.Context, xid string) ([]*storage.Branch, error) {
	if xid == s.xid {
		s.reads.Add(1)
		return nil, fmt.Errorf("storage/embedded: branch of %s: %w: record fails its checksum", xid, storage.ErrCorrupt)
	}
	return s.Store.Branches(ctx, xid)
}

// TestDamagedGlobalIsParked: a decided global whose branches the store
// reports damaged is parked with the reason at its first round, instead of
// being retried at every scan forever (issue 10: "a corrupt record loops
// forever").
func TestDamagedGlobalIsParked(t *testing.T) {
	ds := &damagedStore{xid: "damaged-1"}
	srv := tctest.Start(t, tctest.WithStoreWrapper(func(s storage.Store) storage.Store {
		ctx := context.Background()
		now := time.Now()
		g := &storage.Global{XID: ds.xid, Status: xactpb.GlobalStatus_GLOBAL_STATUS_COMMIT_RETRYING,
			BeganAt: now, Deadline: now.Add(time.Minute), NextAt: now, Attempts: 1, LocksReleased: true}
		if err := s.CreateGlobal(ctx, g, storage.Durable); err != nil {
			t.Fatal(err)
		}
		ds.Store = s
		return ds
	}))
	var g *storage.Global
	deadline := time.Now().Add(5 * time.Second)
	for {
		var err error
		if g, err = srv.Store().GetGlobal(context.Background(), ds.xid); err != nil {
			t.Fatal(err)
		}
		if g.Parked || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if !g.Parked || !strings.Contains(g.Reason, "damaged") || g.Status != xactpb.GlobalStatus_GLOBAL_STATUS_COMMIT_RETRYING {
		t.Fatalf("global with damaged branches = {Parked:%v Status:%v Reason:%q} after %d reads; want parked, COMMIT_RETRYING, with the damage as reason",
			g.Parked, g.Status, g.Reason, ds.reads.Load())
	}
	// Parked means left alone: no more reads at every scan.
	n := ds.reads.Load()
	time.Sleep(10 * tctest.Config().ScanInterval)
	if m := ds.reads.Load(); m != n {
		t.Errorf("branches of the parked global read %d more times in 10 scans, want 0", m-n)
	}
}

// issueDataDir writes the data directory of issue 10: one COMMIT_RETRYING
// and one ROLLBACK_RETRYING global with their branches, large enough that
// its table is over 1000 bytes, and stops the store cleanly.
func issueDataDir(t *testing.T) string {
	dir := t.TempDir()
	s, err := embedded.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	lg, err := ledger.Open(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	for i, st := range []storage.Status{xactpb.GlobalStatus_GLOBAL_STATUS_COMMIT_RETRYING, xactpb.GlobalStatus_GLOBAL_STATUS_ROLLBACK_RETRYING} {
		xid := fmt.Sprintf("xact-1:1:%d", i)
		if err := lg.CreateGlobal(ctx, &storage.Global{XID: xid, Status: xactpb.GlobalStatus_GLOBAL_STATUS_BEGIN, Deadline: now.Add(time.Hour)}, storage.Durable); err != nil {
			t.Fatal(err)
		}
		for b := range 3 {
			br := &storage.Branch{XID: xid, Resource: "127.0.0.1:3306/bank", Type: xactpb.BranchType_BRANCH_TYPE_AT,
				LockKeys: []string{fmt.Sprintf("accounts:%d", 10*i+b)}, AppData: make([]byte, 200)}
			rand.Read(br.AppData) // an undo image; random so that it does not compress
			if _, err := lg.RegisterBranch(ctx, br, now); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := lg.UpdateGlobal(ctx, xid, func(g *storage.Global) error {
			g.Status, g.NextAt = st, now.Add(time.Hour)
			g.LocksReleased = i == 0
			return nil
		}, storage.Durable); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(filepath.Join(dir, "000001.sst")); err != nil || fi.Size() <= 1000 {
		t.Fatalf("000001.sst: %v, %v; want a table over 1000 bytes", fi, err)
	}
	return dir
}

// TestDamagedDataDirRefused is issue 10's report: a data directory with a
// COMMIT_RETRYING and a ROLLBACK_RETRYING global, one byte of its table
// overwritten (or 8 bytes): the coordinator must refuse to start and name
// the file, not start with an empty list. Unharmed, it recovers both.
func TestDamagedDataDirRefused(t *testing.T) {
	for _, tt := range []struct {
		name string
		off  int64
		data []byte
	}{
		{"one byte at 1000", 1000, []byte{0xff}},
		{"8 bytes at 700", 700, []byte("\x00\x01\x02\x03\x04\x05\x06\x07")},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := issueDataDir(t)
			f, err := os.OpenFile(filepath.Join(dir, "000001.sst"), os.O_RDWR, 0)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := f.WriteAt(tt.data, tt.off); err != nil {
				t.Fatal(err)
			}
			f.Close()
			cfg := tctest.Config()
			cfg.DataDir = dir
			srv, err := tc.New(cfg)
			if err == nil {
				srv.Close()
				t.Fatal("tc.New on a damaged data directory = nil error, want a refusal")
			}
			if !errors.Is(err, storage.ErrCorrupt) || !strings.Contains(err.Error(), "000001.sst") || !strings.Contains(err.Error(), "xact store") {
				t.Errorf("tc.New on a damaged data directory = %v; want storage.ErrCorrupt naming 000001.sst and what to do", err)
			}
		})
	}
	t.Run("unharmed", func(t *testing.T) {
		cfg := tctest.Config()
		cfg.DataDir = issueDataDir(t)
		srv, err := tc.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer srv.Close()
		gs, err := srv.Store().ListGlobals(context.Background(), storage.Filter{})
		if err != nil || len(gs) != 2 {
			t.Fatalf("ListGlobals = %d globals, %v; want 2", len(gs), err)
		}
		for _, g := range gs {
			if bs, err := srv.Store().Branches(context.Background(), g.XID); err != nil || len(bs) != 3 {
				t.Errorf("Branches(%s) = %d, %v; want 3", g.XID, len(bs), err)
			}
		}
	})
}

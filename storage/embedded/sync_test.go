package embedded

import (
	"errors"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestCommitterSharesSyncs holds the first sync until every waiter has
// joined, and checks that the rest are released by one more sync.
func TestCommitterSharesSyncs(t *testing.T) {
	const waiters = 32
	var syncs atomic.Int32
	release := make(chan struct{})
	c := newCommitter(func() error {
		if syncs.Add(1) == 1 {
			<-release
		}
		return nil
	}, nil)
	defer c.stop()

	first := make(chan error)
	go func() { first <- c.wait() }()
	for syncs.Load() == 0 { // the first sync is running
		time.Sleep(time.Millisecond)
	}
	var wg sync.WaitGroup
	var joined atomic.Int32
	errs := make(chan error, waiters)
	for range waiters {
		wg.Go(func() {
			joined.Add(1)
			errs <- c.wait()
		})
	}
	for joined.Load() < waiters {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(10 * time.Millisecond) // let them block in wait
	close(release)
	if err := <-first; err != nil {
		t.Errorf("first wait = %v, want nil", err)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("wait = %v, want nil", err)
		}
	}
	if got := syncs.Load(); got != 2 {
		t.Errorf("syncs for 1 + %d waiters that arrived during the first = %d, want 2", waiters, got)
	}
}

func TestCommitterStickyError(t *testing.T) {
	errDisk := errors.New("EIO")
	var fail atomic.Bool
	var syncs atomic.Int32
	c := newCommitter(func() error {
		syncs.Add(1)
		if fail.Load() {
			return errDisk
		}
		return nil
	}, nil)
	defer c.stop()
	if err := c.wait(); err != nil {
		t.Fatalf("wait = %v, want nil", err)
	}
	fail.Store(true)
	if err := c.wait(); !errors.Is(err, errDisk) {
		t.Fatalf("wait with failing sync = %v, want %v", err, errDisk)
	}
	fail.Store(false)
	for range 3 {
		if err := c.wait(); !errors.Is(err, errDisk) {
			t.Errorf("wait after a failed sync = %v, want the sticky %v", err, errDisk)
		}
	}
	if err := c.failed(); !errors.Is(err, errDisk) {
		t.Errorf("failed() = %v, want %v", err, errDisk)
	}
	if got := syncs.Load(); got != 2 {
		t.Errorf("syncs = %d, want 2 (none after the failure)", got)
	}
}

func TestCommitterStopReleasesWaiters(t *testing.T) {
	block := make(chan struct{})
	c := newCommitter(func() error { <-block; return nil }, nil)
	done := make(chan error)
	go func() { done <- c.wait() }()
	go func() { done <- c.wait() }()
	time.Sleep(10 * time.Millisecond)
	close(block)
	for range 2 {
		if err := <-done; err != nil {
			t.Errorf("wait = %v, want nil", err)
		}
	}
	c.stop()
}

// TestWAL simulates Badger's WAL files: rotations, flushes that delete old
// files, and several rotations between two syncs.
func TestWAL(t *testing.T) {
	dir := t.TempDir()
	create := func(fid int) {
		t.Helper()
		w := &wal{dir: dir}
		if err := os.WriteFile(w.path(fid), []byte("wal"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	remove := func(fid int) {
		t.Helper()
		w := &wal{dir: dir}
		if err := os.Remove(w.path(fid)); err != nil {
			t.Fatal(err)
		}
	}
	create(3)
	w := &wal{dir: dir, active: 3}
	defer w.close()
	steps := []struct {
		name   string
		change func()
		want   int
	}{
		{"no change", func() {}, 3},
		{"one rotation", func() { create(4) }, 4},
		{"old one flushed", func() { remove(3) }, 4},
		{"two rotations", func() { create(5); create(6) }, 6},
		{"rotations and flushes past the active one", func() {
			create(7)
			create(8)
			remove(4)
			remove(5)
			remove(6)
			remove(7)
		}, 8},
		{"active flushed, successor gone too, a newer one", func() {
			create(9)
			create(10)
			remove(8)
			remove(9)
		}, 10},
	}
	for _, st := range steps {
		st.change()
		if err := w.sync(); err != nil {
			t.Fatalf("%s: sync = %v", st.name, err)
		}
		if w.active != st.want {
			t.Errorf("%s: active = %d, want %d", st.name, w.active, st.want)
		}
	}
	fids, err := walFiles(dir)
	if err != nil || len(fids) != 1 || fids[0] != 10 {
		t.Errorf("walFiles = %v, %v, want [10]", fids, err)
	}
}

package memory

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/xact-io/xact/protocol/xactpb"
	"github.com/xact-io/xact/storage"
	"github.com/xact-io/xact/storage/storetest"
)

func TestContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storage.Store {
		s := New()
		t.Cleanup(func() { s.Close() })
		return s
	})
}

func BenchmarkStore(b *testing.B) {
	storetest.Bench(b, func(b *testing.B) storage.Store {
		s := New()
		b.Cleanup(func() { s.Close() })
		return s
	})
}

// fakeClock is a settable clock for tombstone expiry.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func TestTombstoneRetention(t *testing.T) {
	ctx := context.Background()
	clock := &fakeClock{now: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}
	s := New(WithTombstoneRetention(time.Minute))
	s.now = clock.Now
	defer s.Close()

	begin := xactpb.GlobalStatus_GLOBAL_STATUS_BEGIN
	committed := xactpb.GlobalStatus_GLOBAL_STATUS_COMMITTED
	for _, xid := range []string{"a", "b"} {
		if err := s.CreateGlobal(ctx, &storage.Global{XID: xid, Status: begin}, storage.Durable); err != nil {
			t.Fatalf("CreateGlobal(%s) = %v", xid, err)
		}
	}
	if err := s.FinishGlobal(ctx, "a", committed, storage.Durable); err != nil {
		t.Fatalf("FinishGlobal(a) = %v", err)
	}
	clock.Advance(30 * time.Second)
	if err := s.FinishGlobal(ctx, "b", committed, storage.Durable); err != nil {
		t.Fatalf("FinishGlobal(b) = %v", err)
	}

	tests := []struct {
		advance time.Duration
		present map[string]bool
	}{
		{0, map[string]bool{"a": true, "b": true}},
		{29 * time.Second, map[string]bool{"a": true, "b": true}},
		{time.Second, map[string]bool{"a": false, "b": true}}, // a: exactly one minute
		{30 * time.Second, map[string]bool{"a": false, "b": false}},
	}
	for _, tt := range tests {
		clock.Advance(tt.advance)
		for xid, want := range tt.present {
			g, err := s.GetGlobal(ctx, xid)
			if got := err == nil; got != want {
				t.Errorf("at %v: GetGlobal(%s) = %v, %v; present %v, want %v", clock.Now(), xid, g, err, got, want)
			}
			if err != nil && !errors.Is(err, storage.ErrNotFound) {
				t.Errorf("GetGlobal(%s) = %v, want %v", xid, err, storage.ErrNotFound)
			}
		}
	}
	s.mu.Lock()
	if n, q := len(s.mu.tombs), len(s.mu.tombQueue); n != 0 || q != 0 {
		t.Errorf("after expiry: %d tombstones, %d queued, want 0, 0", n, q)
	}
	s.mu.Unlock()
	// An expired tombstone no longer blocks the XID.
	if err := s.CreateGlobal(ctx, &storage.Global{XID: "a", Status: begin}, storage.Durable); err != nil {
		t.Errorf("CreateGlobal(a) after tombstone expired = %v, want nil", err)
	}
}

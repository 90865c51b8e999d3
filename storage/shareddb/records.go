package shareddb

import (
	"errors"
	"fmt"
	"time"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/xact-io/xact/storage"
)

// globalRow is a row of xact_globals: a live global, or the tombstone of
// a finished one (Finished, until ExpiresAt).
type globalRow struct {
	XID           []byte `gorm:"column:xid;primaryKey"`
	Name          []byte `gorm:"column:name"`
	Status        int32  `gorm:"column:status"`
	TimeoutNs     int64  `gorm:"column:timeout_ns"`
	BeganAtS      int64  `gorm:"column:began_at_s"`
	BeganAtNs     int32  `gorm:"column:began_at_ns"`
	DeadlineS     int64  `gorm:"column:deadline_s"`
	DeadlineNs    int32  `gorm:"column:deadline_ns"`
	NextAtS       int64  `gorm:"column:next_at_s"`
	NextAtNs      int32  `gorm:"column:next_at_ns"`
	Attempts      int64  `gorm:"column:attempts"`
	BranchSeq     int64  `gorm:"column:branch_seq"`
	Parked        bool   `gorm:"column:parked"`
	Reason        []byte `gorm:"column:reason"`
	UpdatedS      int64  `gorm:"column:updated_at_s"`
	UpdatedNs     int32  `gorm:"column:updated_at_ns"`
	History       []byte `gorm:"column:history"`
	Finished      bool   `gorm:"column:finished"`
	LocksReleased bool   `gorm:"column:locks_released"`
	ExpiresAt     int64  `gorm:"column:expires_at"`
	Owner         []byte `gorm:"column:owner"`
	OwnerEpoch    int64  `gorm:"column:owner_epoch"`
}

func (globalRow) TableName() string { return "xact_globals" }

// branchRow is a row of xact_branches.
type branchRow struct {
	XID           []byte `gorm:"column:xid;primaryKey"`
	BranchID      int64  `gorm:"column:branch_id;primaryKey;autoIncrement:false"`
	Resource      []byte `gorm:"column:resource"`
	Type          int32  `gorm:"column:branch_type"`
	Status        int32  `gorm:"column:status"`
	LockKeys      []byte `gorm:"column:lock_keys"`
	AppData       []byte `gorm:"column:app_data"`
	RegisteredS   int64  `gorm:"column:registered_at_s"`
	RegisteredNs  int32  `gorm:"column:registered_at_ns"`
	Reason        []byte `gorm:"column:reason"`
	Attempts      int64  `gorm:"column:attempts"`
	LocksReleased bool   `gorm:"column:locks_released"`
}

func (branchRow) TableName() string { return "xact_branches" }

// zeroSecs is the Unix seconds of the zero time, which stands for "none".
var zeroSecs = time.Time{}.Unix()

// split and join store a time as Unix seconds and nanoseconds, exactly.
func split(t time.Time) (int64, int32) {
	if t.IsZero() {
		return zeroSecs, 0
	}
	return t.Unix(), int32(t.Nanosecond())
}

func join(s int64, ns int32) time.Time {
	if s == zeroSecs && ns == 0 {
		return time.Time{}
	}
	return time.Unix(s, int64(ns)).UTC()
}

// bytesOf never returns nil: every byte column is NOT NULL.
func bytesOf(s string) []byte { return append([]byte{}, s...) }

func rowOfGlobal(g *storage.Global) *globalRow {
	r := &globalRow{
		XID: bytesOf(g.XID), Name: bytesOf(g.Name), Status: int32(g.Status),
		TimeoutNs: int64(g.Timeout), Attempts: int64(g.Attempts), BranchSeq: g.BranchSeq,
		Parked: g.Parked, Reason: bytesOf(g.Reason),
		History: encodeHistory(g.History), Finished: g.Finished, LocksReleased: g.LocksReleased,
		Owner: []byte{},
	}
	r.BeganAtS, r.BeganAtNs = split(g.BeganAt)
	r.DeadlineS, r.DeadlineNs = split(g.Deadline)
	r.NextAtS, r.NextAtNs = split(g.NextAt)
	r.UpdatedS, r.UpdatedNs = split(g.UpdatedAt)
	return r
}

func (r *globalRow) global() (*storage.Global, error) {
	h, err := decodeHistory(r.History)
	if err != nil {
		return nil, fmt.Errorf("shareddb: global %q: history: %w", r.XID, err)
	}
	return &storage.Global{
		XID: string(r.XID), Name: string(r.Name), Status: storage.Status(r.Status),
		Timeout: time.Duration(r.TimeoutNs), BeganAt: join(r.BeganAtS, r.BeganAtNs), Deadline: join(r.DeadlineS, r.DeadlineNs),
		NextAt: join(r.NextAtS, r.NextAtNs), Attempts: int(r.Attempts), BranchSeq: r.BranchSeq,
		Parked: r.Parked, Reason: string(r.Reason), UpdatedAt: join(r.UpdatedS, r.UpdatedNs),
		History: h, Finished: r.Finished, LocksReleased: r.LocksReleased,
	}, nil
}

func rowOfBranch(b *storage.Branch) *branchRow {
	r := &branchRow{
		XID: bytesOf(b.XID), BranchID: b.ID, Resource: bytesOf(b.Resource), Type: int32(b.Type),
		Status: int32(b.Status), LockKeys: encodeKeys(b.LockKeys), AppData: append([]byte{}, b.AppData...),
		Reason: bytesOf(b.Reason), Attempts: int64(b.Attempts), LocksReleased: b.LocksReleased,
	}
	r.RegisteredS, r.RegisteredNs = split(b.RegisteredAt)
	return r
}

func (r *branchRow) branch() (*storage.Branch, error) {
	keys, err := decodeKeys(r.LockKeys)
	if err != nil {
		return nil, fmt.Errorf("shareddb: branch %q/%d: lock keys: %w", r.XID, r.BranchID, err)
	}
	var app []byte
	if len(r.AppData) > 0 {
		app = append([]byte{}, r.AppData...)
	}
	return &storage.Branch{
		XID: string(r.XID), ID: r.BranchID, Resource: string(r.Resource), Type: storage.BranchType(r.Type),
		Status: storage.BranchStatus(r.Status), LockKeys: keys, AppData: app,
		RegisteredAt: join(r.RegisteredS, r.RegisteredNs), Reason: string(r.Reason), Attempts: int(r.Attempts),
		LocksReleased: r.LocksReleased,
	}, nil
}

var errTruncated = errors.New("truncated")

// encodeKeys writes keys as length-prefixed byte strings (any bytes, empty
// keys and duplicates kept).
func encodeKeys(keys []string) []byte {
	out := []byte{}
	for _, k := range keys {
		out = protowire.AppendString(out, k)
	}
	return out
}

func decodeKeys(b []byte) ([]string, error) {
	var keys []string
	for len(b) > 0 {
		k, n := protowire.ConsumeString(b)
		if n < 0 {
			return nil, fmt.Errorf("%w: %w", storage.ErrCorrupt, errTruncated)
		}
		keys = append(keys, k)
		b = b[n:]
	}
	return keys, nil
}

// encodeHistory writes each event as its time (Unix seconds, zigzag, and
// nanoseconds) and its text.
func encodeHistory(h []storage.Event) []byte {
	out := []byte{}
	for _, e := range h {
		s, ns := split(e.At)
		out = protowire.AppendVarint(out, protowire.EncodeZigZag(s))
		out = protowire.AppendVarint(out, uint64(ns))
		out = protowire.AppendString(out, e.What)
	}
	return out
}

func decodeHistory(b []byte) ([]storage.Event, error) {
	var h []storage.Event
	for len(b) > 0 {
		secs, n := protowire.ConsumeVarint(b)
		if n < 0 {
			return nil, fmt.Errorf("%w: %w", storage.ErrCorrupt, errTruncated)
		}
		b = b[n:]
		ns, n := protowire.ConsumeVarint(b)
		if n < 0 || ns >= 1e9 {
			return nil, fmt.Errorf("%w: %w", storage.ErrCorrupt, errTruncated)
		}
		b = b[n:]
		what, n := protowire.ConsumeString(b)
		if n < 0 {
			return nil, fmt.Errorf("%w: %w", storage.ErrCorrupt, errTruncated)
		}
		b = b[n:]
		h = append(h, storage.Event{At: join(protowire.DecodeZigZag(secs), int32(ns)), What: what})
	}
	return h, nil
}

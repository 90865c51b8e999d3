package shareddb

import (
	"context"
	"fmt"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/xact-io/xact/protocol/xactpb"
	"github.com/xact-io/xact/storage"
)

// Several coordinators on one database. Each joins under its node id
// (Join) and holds a lease in xact_nodes that it renews (Renew); a node
// whose lease ran out, or that joined again (a new epoch), is dead under
// its old epoch. Lease times are the database's clock (microseconds), so
// the nodes' clocks do not matter.
//
// A decided global is driven (phase two, retries) by one node, its owner:
// the node whose decision took it out of Begin, or that claimed it
// (Claim) after its owner died. Once a store has joined, every write to a
// decided global checks, in its transaction, that this node owns it under
// its current epoch, and fails with storage.ErrNotOwner otherwise: a node
// that lost its lease, or was replaced, cannot overwrite the work of the
// node that took over. Writes to a global in Begin (registrations,
// phase-one reports) are not fenced: any node serves them.

// ErrNodeLive is storage.ErrNodeLive: Join of a node id that a live
// coordinator holds.
var ErrNodeLive = storage.ErrNodeLive

// ErrLeaseLost is storage.ErrLeaseLost: Renew found that this
// coordinator's lease is gone (it expired and another coordinator joined
// under the id, or the row was removed): it must stop driving globals.
var ErrLeaseLost = storage.ErrLeaseLost

// Node is a coordinator as xact_nodes records it.
type Node = storage.Node

// nodeRow is a row of xact_nodes.
type nodeRow struct {
	NodeID     []byte `gorm:"column:node_id;primaryKey"`
	Epoch      int64  `gorm:"column:epoch"`
	LeaseUntil int64  `gorm:"column:lease_until"` // microseconds, database clock
	Addr       []byte `gorm:"column:addr"`
}

func (nodeRow) TableName() string { return "xact_nodes" }

// member is this store's node once it joined.
type member struct {
	id    string
	epoch int64
	lease time.Duration
}

func (s *Store) self() (member, bool) {
	s.node.Lock()
	defer s.node.Unlock()
	return s.node.m, s.node.m.id != ""
}

// nowMicros is the database's clock in microseconds, as SQL.
func (s *Store) nowMicros() string {
	if s.dialect == Postgres {
		return "(extract(epoch from clock_timestamp()) * 1000000)::bigint"
	}
	return "CAST(UNIX_TIMESTAMP(NOW(6)) * 1000000 AS SIGNED)"
}

func (s *Store) dbNow(tx *gorm.DB) (int64, error) {
	var now int64
	if err := tx.Raw("SELECT " + s.nowMicros()).Scan(&now).Error; err != nil {
		return 0, fmt.Errorf("shareddb: read the database's clock: %w", err)
	}
	return now, nil
}

// Join records this coordinator as node id (reachable at addr) with a
// lease of the given length, and returns its epoch: one more than the
// id's last. It fails with ErrNodeLive while another coordinator's lease
// on the id runs. From then on the store fences writes to decided globals
// (see above).
func (s *Store) Join(ctx context.Context, id, addr string, lease time.Duration) (int64, error) {
	if id == "" || lease <= 0 {
		return 0, fmt.Errorf("shareddb: join: node id %q, lease %v: both are required", id, lease)
	}
	var epoch int64
	err := s.update(ctx, storage.Durable, func(tx *gorm.DB) error {
		now, err := s.dbNow(tx)
		if err != nil {
			return err
		}
		var rows []nodeRow
		if err := tx.Clauses(clause.Locking{Strength: "UPDATE"}).Where("node_id = ?", []byte(id)).Find(&rows).Error; err != nil {
			return fmt.Errorf("shareddb: join: %w", err)
		}
		row := nodeRow{NodeID: []byte(id), Epoch: 1, LeaseUntil: now + lease.Microseconds(), Addr: []byte(addr)}
		if len(rows) > 0 {
			if rows[0].LeaseUntil > now {
				return fmt.Errorf("%w: %q (epoch %d), its lease runs for %v more", ErrNodeLive, id, rows[0].Epoch,
					time.Duration(rows[0].LeaseUntil-now)*time.Microsecond)
			}
			row.Epoch = rows[0].Epoch + 1
			err = tx.Table("xact_nodes").Where("node_id = ?", []byte(id)).
				Updates(map[string]any{"epoch": row.Epoch, "lease_until": row.LeaseUntil, "addr": row.Addr}).Error
		} else {
			err = tx.Create(&row).Error
		}
		if err != nil {
			return fmt.Errorf("shareddb: join: %w", err)
		}
		epoch = row.Epoch
		return nil
	})
	if err != nil {
		return 0, err
	}
	s.node.Lock()
	s.node.m = member{id: id, epoch: epoch, lease: lease}
	s.node.Unlock()
	return epoch, nil
}

// Renew extends this coordinator's lease by its length from now, or fails
// with ErrLeaseLost if the lease is no longer this epoch's.
func (s *Store) Renew(ctx context.Context) error {
	m, ok := s.self()
	if !ok {
		return fmt.Errorf("shareddb: renew: %w (not joined)", ErrLeaseLost)
	}
	if err := s.enter(ctx); err != nil {
		return err
	}
	defer s.ops.Done()
	res := s.db.WithContext(ctx).Exec("UPDATE xact_nodes SET lease_until = "+s.nowMicros()+" + ? WHERE node_id = ? AND epoch = ?",
		m.lease.Microseconds(), []byte(m.id), m.epoch)
	if res.Error != nil {
		return fmt.Errorf("shareddb: renew the lease of %s: %w", m.id, res.Error)
	}
	if res.RowsAffected == 0 {
		return fmt.Errorf("%w: %s epoch %d", ErrLeaseLost, m.id, m.epoch)
	}
	return nil
}

// Leave ends this coordinator's lease at once, so that the others take
// over its globals without waiting for it to run out.
func (s *Store) Leave(ctx context.Context) error {
	m, ok := s.self()
	if !ok {
		return nil
	}
	if err := s.enter(ctx); err != nil {
		return err
	}
	defer s.ops.Done()
	err := s.db.WithContext(ctx).Exec("UPDATE xact_nodes SET lease_until = 0 WHERE node_id = ? AND epoch = ?", []byte(m.id), m.epoch).Error
	if err != nil {
		return fmt.Errorf("shareddb: leave: %w", err)
	}
	return nil
}

// Nodes lists the coordinators the database knows, by id.
func (s *Store) Nodes(ctx context.Context) ([]Node, error) {
	var rows []nodeRow
	var now int64
	err := s.view(ctx, func(db *gorm.DB) error {
		var err error
		if now, err = s.dbNow(db); err != nil {
			return err
		}
		return db.Order("node_id").Find(&rows).Error
	})
	if err != nil {
		return nil, fmt.Errorf("shareddb: list nodes: %w", err)
	}
	out := make([]Node, len(rows))
	for i, r := range rows {
		out[i] = Node{ID: string(r.NodeID), Epoch: r.Epoch, LeaseUntil: time.UnixMicro(r.LeaseUntil).UTC(),
			Addr: string(r.Addr), Live: r.LeaseUntil > now}
	}
	return out, nil
}

// Claim makes this coordinator the owner of the decided global xid if it
// is not already and its owner is dead (its lease ran out, or it joined
// again under a newer epoch), and reports whether this coordinator owns
// it now. A global in Begin, finished or unknown is owned by nobody in
// particular: false.
func (s *Store) Claim(ctx context.Context, xid string) (bool, error) {
	m, ok := s.self()
	if !ok {
		return true, nil // a store that did not join drives everything
	}
	owned := false
	err := s.update(ctx, storage.Durable, func(tx *gorm.DB) error {
		owned = false
		row, _, err := s.lockGlobal(tx, xid)
		if err != nil || row == nil || row.Finished || row.Status == int32(xactpb.GlobalStatus_GLOBAL_STATUS_BEGIN) {
			return err
		}
		if string(row.Owner) == m.id && row.OwnerEpoch == m.epoch {
			owned = true
			return nil
		}
		if len(row.Owner) > 0 {
			live, err := s.liveEpoch(tx, string(row.Owner), row.OwnerEpoch)
			if err != nil || live {
				return err
			}
		}
		err = tx.Table("xact_globals").Where("xid = ?", []byte(xid)).
			Updates(map[string]any{"owner": []byte(m.id), "owner_epoch": m.epoch}).Error
		if err != nil {
			return fmt.Errorf("shareddb: claim %s: %w", xid, err)
		}
		owned = true
		return nil
	})
	return owned, err
}

// liveEpoch reports whether node id is live under epoch.
func (s *Store) liveEpoch(tx *gorm.DB, id string, epoch int64) (bool, error) {
	now, err := s.dbNow(tx)
	if err != nil {
		return false, err
	}
	var rows []nodeRow
	if err := tx.Where("node_id = ?", []byte(id)).Find(&rows).Error; err != nil {
		return false, fmt.Errorf("shareddb: read node %s: %w", id, err)
	}
	return len(rows) > 0 && rows[0].Epoch == epoch && rows[0].LeaseUntil > now, nil
}

// fence refuses a write to the decided global row unless this
// coordinator owns it under its current epoch (no-op before Join).
func (s *Store) fence(row *globalRow) error {
	m, ok := s.self()
	if !ok || row == nil || row.Status == int32(xactpb.GlobalStatus_GLOBAL_STATUS_BEGIN) {
		return nil
	}
	if string(row.Owner) == m.id && row.OwnerEpoch == m.epoch {
		return nil
	}
	return fmt.Errorf("%w: %s is driven by %q epoch %d (this is %q epoch %d)", storage.ErrNotOwner, row.XID, row.Owner, row.OwnerEpoch, m.id, m.epoch)
}

// owner stamps row as this coordinator's (after Join).
func (s *Store) own(row *globalRow) {
	if m, ok := s.self(); ok {
		row.Owner, row.OwnerEpoch = []byte(m.id), m.epoch
	}
}

// Owned counts the unfinished globals by the node that drives them (""
// for those no node drives yet: in Begin, or never decided by a joined
// node).
func (s *Store) Owned(ctx context.Context) (map[string]int, error) {
	var rows []struct {
		Owner []byte
		N     int
	}
	err := s.view(ctx, func(db *gorm.DB) error {
		return db.Raw("SELECT owner, COUNT(*) AS n FROM xact_globals WHERE finished = ? AND status <> ? GROUP BY owner",
			false, int32(xactpb.GlobalStatus_GLOBAL_STATUS_BEGIN)).Scan(&rows).Error
	})
	if err != nil {
		return nil, fmt.Errorf("shareddb: count owned globals: %w", err)
	}
	out := make(map[string]int, len(rows))
	for _, r := range rows {
		out[string(r.Owner)] += r.N
	}
	return out, nil
}

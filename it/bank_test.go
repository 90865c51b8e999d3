package it

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"google.golang.org/grpc"

	"github.com/xact-io/xact/internal/mysqltest"
	"github.com/xact-io/xact/protocol"
	"github.com/xact-io/xact/protocol/xactpb"
	"github.com/xact-io/xact/rm/fence"
	"github.com/xact-io/xact/undo"
)

// bank is two databases ("a" and "b") of the shared MariaDB (or the one
// given), each with accounts 1..n holding the same starting balance, a
// ledger (one row per side of a committed transfer, written in the same
// local transaction as the balance change; a saga's compensation deletes
// its step's row), the undo_log, the fence (TCC and saga steps),
// tcc_effect (one row per run of a TCC business function) and saga_effect
// (one row per saga step action and per compensation that undid one).
type bank struct {
	t        *testing.T
	cfg      map[string]*mysql.Config // direct
	db       map[string]*sql.DB       // plain, direct: set-up and checks
	accounts int
	initial  int64
}

var bankDDL = []string{
	"CREATE TABLE account (id BIGINT PRIMARY KEY, balance BIGINT NOT NULL, frozen BIGINT NOT NULL DEFAULT 0, incoming BIGINT NOT NULL DEFAULT 0)",
	"CREATE TABLE ledger (id BIGINT AUTO_INCREMENT PRIMARY KEY, xid VARCHAR(128) NOT NULL, account BIGINT NOT NULL, delta BIGINT NOT NULL, KEY (xid))",
	"CREATE TABLE tcc_effect (id BIGINT AUTO_INCREMENT PRIMARY KEY, xid VARCHAR(128) NOT NULL, branch_id BIGINT NOT NULL, action VARCHAR(16) NOT NULL, KEY (xid))",
	// at is the time of the statement, inside the step's transaction: a
	// compensation's is before the TC hears that it is done.
	"CREATE TABLE saga_effect (id BIGINT AUTO_INCREMENT PRIMARY KEY, xid VARCHAR(128) NOT NULL, branch_id BIGINT NOT NULL, step VARCHAR(16) NOT NULL, action VARCHAR(16) NOT NULL, at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6), KEY (xid))",
	undo.LogTableDDL,
	fence.DDL,
}

func newBank(t *testing.T, accounts int, initial int64) *bank {
	t.Helper()
	b := &bank{t: t, cfg: map[string]*mysql.Config{}, db: map[string]*sql.DB{}, accounts: accounts, initial: initial}
	for _, n := range []string{"a", "b"} {
		b.cfg[n] = mysqltest.Config(t)
	}
	b.setUp()
	return b
}

// newBankOn is newBank on a server of the test's own (base: root, no
// database).
func newBankOn(t *testing.T, base *mysql.Config, accounts int, initial int64) *bank {
	t.Helper()
	b := &bank{t: t, cfg: map[string]*mysql.Config{}, db: map[string]*sql.DB{}, accounts: accounts, initial: initial}
	admin := mysqltest.Open(t, base)
	for _, n := range []string{"a", "b"} {
		name := "bank_" + n
		if _, err := admin.Exec("CREATE DATABASE " + sqlQuote(name)); err != nil {
			t.Fatal(err)
		}
		c := base.Clone()
		c.DBName = name
		b.cfg[n] = c
	}
	b.setUp()
	return b
}

func (b *bank) setUp() {
	t := b.t
	for _, n := range []string{"a", "b"} {
		db := mysqltest.Open(t, b.cfg[n])
		db.SetMaxOpenConns(4)
		for _, ddl := range bankDDL {
			if _, err := db.Exec(ddl); err != nil {
				t.Fatalf("bank %s: %v", n, err)
			}
		}
		var rows []string
		for i := 1; i <= b.accounts; i++ {
			rows = append(rows, fmt.Sprintf("(%d, %d)", i, b.initial))
		}
		if _, err := db.Exec("INSERT INTO account (id, balance) VALUES " + strings.Join(rows, ",")); err != nil {
			t.Fatal(err)
		}
		b.db[n] = db
	}
}

// dsn is the DSN a worker uses for database n, through addr (a proxy)
// when it is not empty. Lock waits and reads are bounded, so that a worker
// whose database link hangs gets errors rather than hanging forever.
func (b *bank) dsn(n, addr string) string {
	c := b.cfg[n].Clone()
	if addr != "" {
		c.Addr = addr
	}
	c.Params = map[string]string{"innodb_lock_wait_timeout": "5"}
	c.Timeout = 5 * time.Second
	c.ReadTimeout = 30 * time.Second
	c.WriteTimeout = 30 * time.Second
	return c.FormatDSN()
}

// worker is the configuration of a worker on this bank and TC address,
// with its databases through the given proxies (nil or "": direct).
func (b *bank) worker(id, tc string, dbAddr map[string]string) workerConfig {
	return workerConfig{
		TC:            tc,
		DBs:           map[string]string{"a": b.dsn("a", dbAddr["a"]), "b": b.dsn("b", dbAddr["b"])},
		ClientID:      id,
		LockWait:      2 * time.Second,
		CommitTimeout: 3 * time.Second,
		ActionTimeout: 5 * time.Second,
	}
}

func (b *bank) total() int64 { return int64(2*b.accounts) * b.initial }

// balance returns an account's balance.
func (b *bank) balance(a acct) int64 {
	b.t.Helper()
	var v int64
	if err := b.db[a.DB].QueryRow("SELECT balance FROM account WHERE id = ?", a.ID).Scan(&v); err != nil {
		b.t.Fatal(err)
	}
	return v
}

// txRec is one global transaction as its TM saw it.
type txRec struct {
	xid     string
	mode    string // "at", "tcc" or "saga"
	outcome string // what the TM was told: commit, rollback, unknown
	err     error
	at      time.Time // when the TM returned (zero: just now)
}

// tombstoneRetention is how long the TC answers GetStatus for a finished
// global (storage/embedded.DefaultTombstoneRetention); a soak outlives it.
const tombstoneRetention = 10 * time.Minute

// violation is one broken invariant found by a check.
type violation struct{ inv, msg string }

type report []violation

func (r *report) add(inv, format string, args ...any) {
	*r = append(*r, violation{inv, fmt.Sprintf(format, args...)})
}

// has reports whether some violation is of inv.
func (r report) has(inv string) bool {
	for _, v := range r {
		if v.inv == inv {
			return true
		}
	}
	return false
}

func (r report) String() string {
	var s strings.Builder
	for i, v := range r {
		if i == 20 {
			fmt.Fprintf(&s, "  ... and %d more\n", len(r)-i)
			break
		}
		fmt.Fprintf(&s, "  %s: %s\n", v.inv, v.msg)
	}
	return s.String()
}

// invariants, in the order the summary prints them.
var invariants = []string{"I1", "I2", "I5", "I6", "I7", "I9", "I11", "total", "negative", "ledger", "audit"}

// clean fails t with every violation in r.
func (r report) clean(t *testing.T) {
	t.Helper()
	if len(r) > 0 {
		t.Errorf("%d invariant violations:\n%s", len(r), r)
	}
}

// settle waits up to window for the TC to list no unfinished global
// transaction (I11) and reports those still listed after it.
func settle(t *testing.T, admin xactpb.AdminClient, window time.Duration) report {
	t.Helper()
	var r report
	deadline := time.Now().Add(window)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		list, err := admin.ListGlobals(ctx, &xactpb.ListGlobalsRequest{}, grpc.WaitForReady(true))
		cancel()
		if err == nil && len(list.GetGlobals()) == 0 {
			return r
		}
		if time.Now().After(deadline) {
			if err != nil {
				r.add("I11", "ListGlobals: %v", err)
			}
			for _, g := range list.GetGlobals() {
				r.add("I11", "%s unfinished %v after the faults stopped: %v parked=%v %s", g.GetXid(), window, g.GetStatus(), g.GetParked(), g.GetReason())
			}
			return r
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// check runs every invariant check of the bank at quiescence (call settle
// first) and returns the violations:
//
//	I5       no global lock is left
//	I6       no normal undo_log row is left
//	total    the balances add up to the starting total; no TCC reservation
//	         (frozen, incoming) is left
//	negative no balance is negative
//	ledger   every balance is its starting balance plus its ledger rows
//	I1       every transaction's ledger rows are complete (a debit and a
//	         credit that cancel out) or absent; a rolled-back TCC branch
//	         whose Try ran was cancelled, a committed one confirmed; a
//	         saga ran both steps and compensated none, or compensated
//	         every step that ran, and no step that did not
//	I2       what the TM was told is what happened: committed transactions
//	         have their ledger rows and the TC's status COMMITTED, rolled
//	         back ones have none (a saga: every step that ran compensated);
//	         no ledger rows of unknown transactions (when known is true:
//	         recs lists every transaction)
//	I7       no TCC business function, saga action or compensation ran
//	         twice for one branch
//	I9       a saga's compensations ran one at a time in reverse order
//	         of its steps
func (b *bank) check(admin xactpb.AdminClient, coord xactpb.CoordinatorClient, recs []txRec, known bool) report {
	t := b.t
	t.Helper()
	var r report
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	if locks, err := admin.ListLocks(ctx, &xactpb.ListLocksRequest{}, grpc.WaitForReady(true)); err != nil {
		r.add("I5", "ListLocks: %v", err)
	} else {
		for _, l := range locks.GetLocks() {
			r.add("I5", "lock %s %s held by %s branch %d", l.GetResourceId(), l.GetKey(), l.GetXid(), l.GetBranchId())
		}
	}

	type side struct {
		n      int
		sum    int64
		debits int
	}
	ledger := map[string]*side{} // xid -> both databases' rows
	type effect struct {
		branch int64
		action string
		at     int64 // µs
	}
	sagas := map[string][]effect{} // xid -> both databases' saga_effect rows
	var sum, frozen, incoming int64
	for _, n := range []string{"a", "b"} {
		db := b.db[n]
		rows, err := db.QueryContext(ctx, "SELECT xid, branch_id FROM undo_log WHERE log_status = 0")
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var xid string
			var br int64
			rows.Scan(&xid, &br)
			r.add("I6", "bank %s: undo_log row of %s branch %d left", n, xid, br)
		}
		rows.Close()

		var s, f, in, lo sql.NullInt64
		if err := db.QueryRowContext(ctx, "SELECT SUM(balance), SUM(frozen), SUM(incoming), MIN(balance) FROM account").Scan(&s, &f, &in, &lo); err != nil {
			t.Fatal(err)
		}
		sum, frozen, incoming = sum+s.Int64, frozen+f.Int64, incoming+in.Int64
		if lo.Int64 < 0 {
			r.add("negative", "bank %s: a balance is %d", n, lo.Int64)
		}

		rows, err = db.QueryContext(ctx, "SELECT a.id, a.balance, COALESCE(SUM(l.delta), 0) FROM account a LEFT JOIN ledger l ON l.account = a.id GROUP BY a.id, a.balance")
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var id, bal, delta int64
			rows.Scan(&id, &bal, &delta)
			if bal != b.initial+delta {
				r.add("ledger", "bank %s account %d: balance %d, but start %d + ledger %d = %d", n, id, bal, b.initial, delta, b.initial+delta)
			}
		}
		rows.Close()

		rows, err = db.QueryContext(ctx, "SELECT xid, COUNT(*), SUM(delta), SUM(delta < 0) FROM ledger GROUP BY xid")
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var xid string
			var c, d, neg int64
			rows.Scan(&xid, &c, &d, &neg)
			s := ledger[xid]
			if s == nil {
				s = &side{}
				ledger[xid] = s
			}
			s.n += int(c)
			s.sum += d
			s.debits += int(neg)
		}
		rows.Close()

		rows, err = db.QueryContext(ctx, "SELECT xid, branch_id, action, COUNT(*) FROM tcc_effect GROUP BY xid, branch_id, action HAVING COUNT(*) > 1")
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var xid, action string
			var br, c int64
			rows.Scan(&xid, &br, &action, &c)
			r.add("I7", "bank %s: %s of %s branch %d ran %d times", n, action, xid, br, c)
		}
		rows.Close()

		rows, err = db.QueryContext(ctx, "SELECT xid, branch_id, SUM(action = 'try'), SUM(action = 'confirm'), SUM(action = 'cancel') FROM tcc_effect GROUP BY xid, branch_id")
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var xid string
			var br, try, confirm, cncl int64
			rows.Scan(&xid, &br, &try, &confirm, &cncl)
			switch {
			case confirm > 0 && cncl > 0:
				r.add("I1", "bank %s: TCC %s branch %d both confirmed and cancelled", n, xid, br)
			case try > 0 && confirm == 0 && cncl == 0:
				r.add("I1", "bank %s: TCC %s branch %d tried, neither confirmed nor cancelled", n, xid, br)
			}
		}
		rows.Close()

		rows, err = db.QueryContext(ctx, "SELECT xid, branch_id, action, TIMESTAMPDIFF(MICROSECOND, '2000-01-01', at) FROM saga_effect")
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var xid string
			var e effect
			rows.Scan(&xid, &e.branch, &e.action, &e.at)
			sagas[xid] = append(sagas[xid], e)
		}
		rows.Close()
	}
	if sum != b.total() {
		r.add("total", "balances add up to %d, started at %d", sum, b.total())
	}
	if frozen != 0 || incoming != 0 {
		r.add("total", "TCC reservations left: frozen %d, incoming %d", frozen, incoming)
	}
	for xid, s := range ledger {
		if s.n != 2 || s.sum != 0 || s.debits != 1 {
			r.add("I1", "%s is partly applied: %d ledger rows adding up to %d", xid, s.n, s.sum)
		}
	}
	if len(sagas) > 0 {
		var run, undone int
		for _, es := range sagas {
			for _, e := range es {
				if e.action == "forward" {
					run++
				} else {
					undone++
				}
			}
		}
		t.Logf("bank: %d sagas left effects: %d step actions, %d compensations", len(sagas), run, undone)
	}
	for xid, es := range sagas {
		// The saga's two steps: forward and compensate count per branch.
		ran, undone := map[int64]int{}, map[int64]int{}
		var comps []effect
		for _, e := range es {
			switch e.action {
			case "forward":
				ran[e.branch]++
			case "compensate":
				undone[e.branch]++
				comps = append(comps, e)
			}
		}
		for br, c := range ran {
			if c > 1 {
				r.add("I7", "saga %s branch %d: the action ran %d times", xid, br, c)
			}
		}
		for br, c := range undone {
			if c > 1 {
				r.add("I7", "saga %s branch %d: the compensation ran %d times", xid, br, c)
			}
			if ran[br] == 0 {
				r.add("I1", "saga %s branch %d was compensated, but its action did not run", xid, br)
			}
		}
		if !(len(ran) == 2 && len(undone) == 0) && len(undone) != len(ran) {
			r.add("I1", "saga %s is partly applied: %d steps ran, %d compensated", xid, len(ran), len(undone))
		}
		// The TC compensates one step at a time, the last first; each
		// compensation's row is written before the TC hears it is done.
		sort.Slice(comps, func(i, j int) bool { return comps[i].at < comps[j].at })
		for i := 1; i < len(comps); i++ {
			if comps[i].branch > comps[i-1].branch {
				r.add("I9", "saga %s: branch %d was compensated after branch %d (at %d µs and %d µs)", xid, comps[i].branch, comps[i-1].branch, comps[i].at, comps[i-1].at)
			}
		}
	}

	seen := map[string]bool{}
	for _, rec := range recs {
		if rec.xid == "" {
			continue
		}
		seen[rec.xid] = true
		applied := ledger[rec.xid] != nil
		switch rec.outcome {
		case "commit":
			if !applied {
				r.add("I2", "%s (%s) was acknowledged as committed but has no effect", rec.xid, rec.mode)
			}
			st, err := coord.GetStatus(ctx, &xactpb.GetStatusRequest{Xid: rec.xid}, grpc.WaitForReady(true))
			if err != nil && errors.Is(protocol.FromStatus(err), protocol.ErrNotFound) &&
				!rec.at.IsZero() && time.Since(rec.at) > tombstoneRetention-time.Minute {
				continue // forgotten by design; its ledger rows were checked above
			}
			if err != nil {
				r.add("I2", "GetStatus(%s): %v", rec.xid, protocol.FromStatus(err))
			} else if st.GetStatus() != xactpb.GlobalStatus_GLOBAL_STATUS_COMMITTED {
				r.add("I2", "%s was acknowledged as committed, the TC says %v", rec.xid, st.GetStatus())
			}
		case "rollback":
			if applied {
				r.add("I2", "%s (%s) was rolled back (%v) but its effects are kept", rec.xid, rec.mode, rec.err)
			}
		}
	}
	if known {
		var unknown []string
		for xid := range ledger {
			if !seen[xid] {
				unknown = append(unknown, xid)
			}
		}
		sort.Strings(unknown)
		for _, xid := range unknown {
			r.add("I2", "ledger rows of %s, which no TM began", xid)
		}
	}
	return r
}

// outcomes counts records by outcome.
func outcomes(recs []txRec) (commit, rollback, unknown int) {
	for _, r := range recs {
		switch r.outcome {
		case "commit":
			commit++
		case "rollback":
			rollback++
		default:
			unknown++
		}
	}
	return
}

// verdict is "ok" or the invariants r reports broken.
func verdict(r report) string {
	if len(r) == 0 {
		return "ok"
	}
	var broken []string
	for _, inv := range invariants {
		if r.has(inv) {
			broken = append(broken, inv)
		}
	}
	return "FAILED: " + strings.Join(broken, ", ")
}

package it

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-sql-driver/mysql"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/xact-io/xact/datasource"
	"github.com/xact-io/xact/internal/failpoint"
	"github.com/xact-io/xact/protocol"
	"github.com/xact-io/xact/protocol/xactpb"
	"github.com/xact-io/xact/rm"
	"github.com/xact-io/xact/rm/fence"
	"github.com/xact-io/xact/rm/saga"
	"github.com/xact-io/xact/rm/tcc"
	"github.com/xact-io/xact/tm"
)

// The bank worker is a resource manager process of the end-to-end suite:
// the test binary re-executed with roleEnv=worker (see TestMain). It
// serves the bank's databases as AT resources ("bank-a", "bank-b"), four
// fenced TCC resources and the fenced steps of the transfer sagas (one
// saga per ordered pair of databases), attaches to the TC, and runs the
// business work the test asks for over HTTP; the XID travels in the
// Xact-Xid header (tm.Transport on the test's side, tm.Middleware here),
// as between two services. Being a separate process, it can be killed with SIGKILL, armed
// with failpoints and switches through its environment, and put behind
// toxiproxy.
//
// It prints "worker listening on ADDR" once it serves, and "xid XID" when
// a transaction it begins itself (/do) has its XID.

const (
	roleEnv   = "XACT_IT_ROLE"
	workerEnv = "XACT_IT_WORKER"
	// noopResource is served with a handler that does nothing: the
	// phase-two switches route actions they skip to it, so that the TC
	// gets DONE for work that was not done.
	noopResource = "it-noop"
)

// workerConfig is what a worker process is started with (JSON in
// workerEnv).
type workerConfig struct {
	TC            string            `json:"tc"`
	DBs           map[string]string `json:"dbs"` // bank database name ("a", "b") -> DSN
	ClientID      string            `json:"client_id"`
	LockWait      time.Duration     `json:"lock_wait"`
	CommitTimeout time.Duration     `json:"commit_timeout"`
	ActionTimeout time.Duration     `json:"action_timeout"`
}

func runRole(role string) int {
	if role != "worker" {
		fmt.Fprintf(os.Stderr, "%s: unknown role %q\n", roleEnv, role)
		return 2
	}
	if err := armWorker(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	var cfg workerConfig
	if err := json.Unmarshal([]byte(os.Getenv(workerEnv)), &cfg); err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", workerEnv, err)
		return 2
	}
	if err := runWorker(cfg); err != nil {
		fmt.Fprintln(os.Stderr, "worker:", err)
		return 1
	}
	return 0
}

// transfer is the body of /at, /tcc, /saga and /do.
type transfer struct {
	From   acct  `json:"from"`
	To     acct  `json:"to"`
	Amount int64 `json:"amount"`
	// For /do: the mode ("at", "tcc" or "saga"), whether the business fails on
	// purpose after both branches, and the global timeout.
	Mode     string        `json:"mode,omitempty"`
	Rollback bool          `json:"rollback,omitempty"`
	Timeout  time.Duration `json:"timeout,omitempty"`
}

type acct struct {
	DB string `json:"db"`
	ID int64  `json:"id"`
}

// reply is every endpoint's answer.
type reply struct {
	Error string `json:"error,omitempty"`
	Kind  string `json:"kind,omitempty"` // errKind of Error
	// /do: the XID and what Do returned, classified.
	XID     string `json:"xid,omitempty"`
	Outcome string `json:"outcome,omitempty"` // commit, rollback, unknown
	// /audit: what SELECT … FOR UPDATE under global locks saw.
	Total int64 `json:"total,omitempty"`
	Min   int64 `json:"min,omitempty"`
	Rows  int   `json:"rows,omitempty"`
	// /stats
	Deliveries int64 `json:"deliveries,omitempty"`
	Duplicates int64 `json:"duplicates,omitempty"`
	// the node ids of the coordinators the RM is attached to
	Coordinators []string `json:"coordinators,omitempty"`
}

var (
	errInsufficient = errors.New("insufficient funds")
	errForced       = errors.New("forced rollback")
)

// errKind classifies an error for the test.
func errKind(err error) string {
	switch {
	case err == nil:
		return ""
	case errors.Is(err, errInsufficient):
		return "insufficient"
	case errors.Is(err, errForced):
		return "forced"
	case errors.Is(err, datasource.ErrLockConflict), errors.Is(err, protocol.ErrLockConflict):
		return "lock"
	case errors.Is(err, datasource.ErrBranchRolledBack):
		return "rolledback"
	case errors.Is(err, protocol.ErrTimedOut), errors.Is(err, protocol.ErrNotBegin):
		return "refused"
	case errors.Is(err, tcc.ErrTryAfterCancel):
		return "hanging"
	}
	if s, ok := status.FromError(err); ok && (s.Code() == codes.Unavailable || s.Code() == codes.DeadlineExceeded) {
		return "tc-unreachable"
	}
	var me *mysql.MySQLError
	if errors.As(err, &me) || errors.Is(err, driver.ErrBadConn) || errors.Is(err, mysql.ErrInvalidConn) {
		return "db"
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return "timeout"
	}
	return "other"
}

// outcomeOf classifies what tm.Do returned.
func outcomeOf(err error) string {
	switch {
	case err == nil:
		return "commit"
	case errors.Is(err, tm.ErrUnknownOutcome):
		return "unknown"
	}
	return "rollback"
}

type tccReq struct {
	Account int64 `json:"account"`
	Amount  int64 `json:"amount"`
}

type tryer interface {
	Try(ctx context.Context, req tccReq) error
}

type worker struct {
	cfg    workerConfig
	rmc    *rm.Client
	mgr    *tm.Manager
	at     map[string]*sql.DB // AT data sources
	plain  map[string]*sql.DB // the same databases, unwrapped (fence, TCC business)
	debit  map[string]tryer
	credit map[string]tryer
	fence  map[string]*fence.Fence
	// sagas are the transfer sagas by "from-to" database names.
	sagas map[string]*saga.Saga[sagaState]

	mu         sync.Mutex
	seen       map[string]int // "xid/branch/kind" -> deliveries
	deliveries atomic.Int64
	duplicates atomic.Int64
	fakeBranch atomic.Int64
}

func runWorker(cfg workerConfig) error {
	w := &worker{
		cfg: cfg, at: map[string]*sql.DB{}, plain: map[string]*sql.DB{},
		debit: map[string]tryer{}, credit: map[string]tryer{}, seen: map[string]int{},
		fence: map[string]*fence.Fence{}, sagas: map[string]*saga.Saga[sagaState]{},
	}
	w.fakeBranch.Store(1 << 40)
	// cfg.TC may name several coordinators of a cluster; the RM attaches
	// to every live one, through the same interceptors.
	target, topts, err := protocol.Target(cfg.TC)
	if err != nil {
		return err
	}
	intercept := []grpc.DialOption{grpc.WithUnaryInterceptor(w.interceptUnary), grpc.WithStreamInterceptor(w.interceptStream)}
	conn, err := grpc.NewClient(target, append(append(append(protocol.DialOptions(),
		grpc.WithTransportCredentials(insecure.NewCredentials())), topts...), intercept...)...)
	if err != nil {
		return err
	}
	rmOpts := []rm.Option{rm.WithClientID(cfg.ClientID), rm.WithBackoff(20*time.Millisecond, 300*time.Millisecond),
		rm.WithDialOptions(intercept...)}
	if cfg.ActionTimeout > 0 {
		rmOpts = append(rmOpts, rm.WithActionTimeout(cfg.ActionTimeout))
	}
	w.rmc = rm.New(conn, rmOpts...)
	w.mgr = tm.New(conn, tm.WithDecisionTimeout(20*time.Second), tm.WithBackoff(20*time.Millisecond, 300*time.Millisecond))
	if err := w.rmc.Serve(noopResource, xactpb.BranchType_BRANCH_TYPE_AT, noop{}); err != nil {
		return err
	}
	names := make([]string, 0, len(cfg.DBs))
	for name := range cfg.DBs {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if err := w.openDB(name, cfg.DBs[name]); err != nil {
			return err
		}
	}
	if err := w.defineSagas(names); err != nil {
		return err
	}
	// Start returns once welcomed, or keeps trying in the background (a
	// worker may start while the TC is down).
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	_ = w.rmc.Start(ctx)
	cancel()

	mux := http.NewServeMux()
	mux.HandleFunc("/at", w.handle(w.doAT))
	mux.HandleFunc("/tcc", w.handle(w.doTCC))
	mux.HandleFunc("/saga", w.handle(w.doSaga))
	mux.HandleFunc("/do", w.handle(w.doLocal))
	mux.HandleFunc("/audit", w.handle(w.audit))
	mux.HandleFunc("/stats", w.handle(w.stats))
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	fmt.Printf("worker listening on %s\n", l.Addr())
	return http.Serve(l, tm.Middleware(mux))
}

func (w *worker) openDB(name, dsn string) error {
	opts := []datasource.Option{
		datasource.WithRM(w.rmc),
		datasource.WithResourceID("bank-" + name),
	}
	if w.cfg.LockWait > 0 {
		opts = append(opts, datasource.WithLockWait(w.cfg.LockWait, 10*time.Millisecond))
	}
	if w.cfg.CommitTimeout > 0 {
		opts = append(opts, datasource.WithCommitTimeout(w.cfg.CommitTimeout))
	}
	db, err := datasource.Open("mysql", dsn, opts...)
	if err != nil {
		return err
	}
	plain, err := sql.Open("mysql", dsn)
	if err != nil {
		return err
	}
	w.at[name], w.plain[name] = db, plain
	// The sagas' steps are fenced even when TCC is not.
	f, err := fence.New(plain, fence.WithCleanup(0, time.Hour))
	if err != nil {
		return err
	}
	w.fence[name] = f
	if failpoint.On("it/tcc/no-fence") {
		return w.registerUnfenced(name, plain)
	}
	w.debit[name], err = tcc.RegisterFenced(w.rmc, "tcc-debit-"+name, f, tcc.FencedFuncs[tccReq]{
		Try: func(ctx context.Context, tx *sql.Tx, r tccReq) error {
			res, err := tx.ExecContext(ctx, "UPDATE account SET balance = balance - ?, frozen = frozen + ? WHERE id = ? AND balance >= ?", r.Amount, r.Amount, r.Account, r.Amount)
			if err := oneRow(res, err); err != nil {
				return err
			}
			return effect(ctx, tx, "try")
		},
		Confirm: func(ctx context.Context, tx *sql.Tx, r tccReq) error {
			if _, err := tx.ExecContext(ctx, "UPDATE account SET frozen = frozen - ? WHERE id = ?", r.Amount, r.Account); err != nil {
				return err
			}
			if err := ledgerRow(ctx, tx, r.Account, -r.Amount); err != nil {
				return err
			}
			return effect(ctx, tx, "confirm")
		},
		Cancel: func(ctx context.Context, tx *sql.Tx, r tccReq, try tcc.TryOutcome) error {
			if try != tcc.TryDone {
				return nil
			}
			if _, err := tx.ExecContext(ctx, "UPDATE account SET balance = balance + ?, frozen = frozen - ? WHERE id = ?", r.Amount, r.Amount, r.Account); err != nil {
				return err
			}
			return effect(ctx, tx, "cancel")
		},
	})
	if err != nil {
		return err
	}
	w.credit[name], err = tcc.RegisterFenced(w.rmc, "tcc-credit-"+name, f, tcc.FencedFuncs[tccReq]{
		Try: func(ctx context.Context, tx *sql.Tx, r tccReq) error {
			res, err := tx.ExecContext(ctx, "UPDATE account SET incoming = incoming + ? WHERE id = ?", r.Amount, r.Account)
			if err := oneRow(res, err); err != nil {
				return err
			}
			return effect(ctx, tx, "try")
		},
		Confirm: func(ctx context.Context, tx *sql.Tx, r tccReq) error {
			if _, err := tx.ExecContext(ctx, "UPDATE account SET incoming = incoming - ?, balance = balance + ? WHERE id = ?", r.Amount, r.Amount, r.Account); err != nil {
				return err
			}
			if err := ledgerRow(ctx, tx, r.Account, r.Amount); err != nil {
				return err
			}
			return effect(ctx, tx, "confirm")
		},
		Cancel: func(ctx context.Context, tx *sql.Tx, r tccReq, try tcc.TryOutcome) error {
			if try != tcc.TryDone {
				return nil
			}
			if _, err := tx.ExecContext(ctx, "UPDATE account SET incoming = incoming - ? WHERE id = ?", r.Amount, r.Account); err != nil {
				return err
			}
			return effect(ctx, tx, "cancel")
		},
	})
	return err
}

// registerUnfenced is the it/tcc/no-fence switch: the same participant
// without the fence, each function in a local transaction of its own and
// none of them idempotent, as a participant that ignores TCC's rules would
// be written.
func (w *worker) registerUnfenced(name string, db *sql.DB) error {
	run := func(ctx context.Context, what string, f func(tx *sql.Tx) error) error {
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		defer tx.Rollback()
		if err := f(tx); err != nil {
			return err
		}
		if err := effect(ctx, tx, what); err != nil {
			return err
		}
		return tx.Commit()
	}
	var err error
	w.debit[name], err = tcc.Register(w.rmc, "tcc-debit-"+name, tcc.Funcs[tccReq]{
		Try: func(ctx context.Context, r tccReq) error {
			return run(ctx, "try", func(tx *sql.Tx) error {
				res, err := tx.ExecContext(ctx, "UPDATE account SET balance = balance - ?, frozen = frozen + ? WHERE id = ? AND balance >= ?", r.Amount, r.Amount, r.Account, r.Amount)
				return oneRow(res, err)
			})
		},
		Confirm: func(ctx context.Context, r tccReq) error {
			return run(ctx, "confirm", func(tx *sql.Tx) error {
				if _, err := tx.ExecContext(ctx, "UPDATE account SET frozen = frozen - ? WHERE id = ?", r.Amount, r.Account); err != nil {
					return err
				}
				return ledgerRow(ctx, tx, r.Account, -r.Amount)
			})
		},
		Cancel: func(ctx context.Context, r tccReq, _ tcc.TryOutcome) error {
			return run(ctx, "cancel", func(tx *sql.Tx) error {
				_, err := tx.ExecContext(ctx, "UPDATE account SET balance = balance + ?, frozen = frozen - ? WHERE id = ?", r.Amount, r.Amount, r.Account)
				return err
			})
		},
	})
	if err != nil {
		return err
	}
	w.credit[name], err = tcc.Register(w.rmc, "tcc-credit-"+name, tcc.Funcs[tccReq]{
		Try: func(ctx context.Context, r tccReq) error {
			return run(ctx, "try", func(tx *sql.Tx) error {
				res, err := tx.ExecContext(ctx, "UPDATE account SET incoming = incoming + ? WHERE id = ?", r.Amount, r.Account)
				return oneRow(res, err)
			})
		},
		Confirm: func(ctx context.Context, r tccReq) error {
			return run(ctx, "confirm", func(tx *sql.Tx) error {
				if _, err := tx.ExecContext(ctx, "UPDATE account SET incoming = incoming - ?, balance = balance + ? WHERE id = ?", r.Amount, r.Amount, r.Account); err != nil {
					return err
				}
				return ledgerRow(ctx, tx, r.Account, r.Amount)
			})
		},
		Cancel: func(ctx context.Context, r tccReq, _ tcc.TryOutcome) error {
			return run(ctx, "cancel", func(tx *sql.Tx) error {
				_, err := tx.ExecContext(ctx, "UPDATE account SET incoming = incoming - ? WHERE id = ?", r.Amount, r.Account)
				return err
			})
		},
	})
	return err
}

func oneRow(res sql.Result, err error) error {
	if err != nil {
		return err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n != 1 {
		return errInsufficient
	}
	return nil
}

// effect records that a TCC business function ran, in its transaction:
// the I7 check counts these rows.
func effect(ctx context.Context, tx *sql.Tx, what string) error {
	b, _ := tcc.BranchFrom(ctx)
	_, err := tx.ExecContext(ctx, "INSERT INTO tcc_effect (xid, branch_id, action) VALUES (?, ?, ?)", b.XID, b.BranchID, what)
	return err
}

// ledgerRow records one side of a transfer under its global transaction.
// In phase two (TCC Confirm) the context carries the branch, not the XID.
func ledgerRow(ctx context.Context, tx *sql.Tx, account, delta int64) error {
	xid, ok := tm.XID(ctx)
	if !ok {
		b, _ := tcc.BranchFrom(ctx)
		xid = b.XID
	}
	_, err := tx.ExecContext(ctx, "INSERT INTO ledger (xid, account, delta) VALUES (?, ?, ?)", xid, account, delta)
	return err
}

func (w *worker) handle(f func(ctx context.Context, t transfer) reply) http.HandlerFunc {
	return func(rw http.ResponseWriter, r *http.Request) {
		var t transfer
		if r.ContentLength != 0 {
			if err := json.NewDecoder(r.Body).Decode(&t); err != nil {
				http.Error(rw, err.Error(), http.StatusBadRequest)
				return
			}
		}
		rep := f(r.Context(), t)
		rw.Header().Set("Content-Type", "application/json")
		if rep.Error != "" && rep.XID == "" {
			rw.WriteHeader(http.StatusInternalServerError)
		}
		json.NewEncoder(rw).Encode(rep)
	}
}

func failed(err error) reply { return reply{Error: err.Error(), Kind: errKind(err)} }

func (w *worker) check(t transfer) error {
	if w.at[t.From.DB] == nil || w.at[t.To.DB] == nil || t.Amount <= 0 {
		return fmt.Errorf("bad transfer %+v", t)
	}
	return nil
}

// doAT runs a transfer's two AT branches: the debit in its database, then
// the credit in the other, each a local transaction with a ledger row.
func (w *worker) doAT(ctx context.Context, t transfer) reply {
	if err := w.runAT(ctx, t); err != nil {
		return failed(err)
	}
	return reply{}
}

func (w *worker) runAT(ctx context.Context, t transfer) error {
	if err := w.check(t); err != nil {
		return err
	}
	if _, ok := tm.XID(ctx); !ok {
		return errors.New("no global transaction")
	}
	debit := "UPDATE account SET balance = balance - ? WHERE id = ? AND balance >= ?"
	args := []any{t.Amount, t.From.ID, t.Amount}
	if failpoint.On("it/worker/no-funds-check") {
		debit, args = "UPDATE account SET balance = balance - ? WHERE id = ?", args[:2]
	}
	if err := w.local(ctx, t.From.DB, debit, args, t.From.ID, -t.Amount); err != nil {
		return fmt.Errorf("debit: %w", err)
	}
	failpoint.Hit("it/worker/between-branches")
	credit := "UPDATE account SET balance = balance + ? WHERE id = ?"
	if err := w.local(ctx, t.To.DB, credit, []any{t.Amount, t.To.ID}, t.To.ID, t.Amount); err != nil {
		return fmt.Errorf("credit: %w", err)
	}
	return nil
}

// local runs one AT branch: the update (which must change one row) and a
// ledger row, in one local transaction.
func (w *worker) local(ctx context.Context, db, update string, args []any, account, delta int64) error {
	tx, err := w.at[db].BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	res, err := tx.ExecContext(ctx, update, args...)
	if err := oneRow(res, err); err != nil {
		return err
	}
	if delta < 0 && failpoint.On("it/worker/skip-ledger") {
		return tx.Commit()
	}
	if err := ledgerRow(ctx, tx, account, delta); err != nil {
		return err
	}
	return tx.Commit()
}

func (w *worker) doTCC(ctx context.Context, t transfer) reply {
	if err := w.runTCC(ctx, t); err != nil {
		return failed(err)
	}
	return reply{}
}

func (w *worker) runTCC(ctx context.Context, t transfer) error {
	if err := w.check(t); err != nil {
		return err
	}
	if err := w.debit[t.From.DB].Try(ctx, tccReq{Account: t.From.ID, Amount: t.Amount}); err != nil {
		return fmt.Errorf("debit: %w", err)
	}
	failpoint.Hit("it/worker/between-branches")
	if err := w.credit[t.To.DB].Try(ctx, tccReq{Account: t.To.ID, Amount: t.Amount}); err != nil {
		return fmt.Errorf("credit: %w", err)
	}
	return nil
}

// The transfer saga: step "debit" takes the amount from the source
// account (refusing if the balance is short) and writes the debit's ledger
// row; step "credit" adds it to the destination and writes the credit's
// ledger row. Each is a FencedStep in its own database, so its
// compensation runs at most once, and only if the step's transaction
// committed; it undoes exactly its step, putting the balance back and
// deleting that step's ledger row, in one local transaction with the
// fence's record. A compensated saga thus leaves no ledger row, as a
// rolled-back AT or TCC transfer does (bank.check, I1 and I2). Each
// forward action and each compensation that undid something also writes a
// saga_effect row in its transaction (I7: each at most once; I9:
// compensations in reverse order of the steps).
//
// A saga is not isolated: between a credit and its compensation the money
// can be spent. The compensation then fails with a retryable error (the TC
// tries it again with backoff) rather than drive the balance negative.
// With the test's amounts (at most 100 against balances around 1000) and
// the short window (a rollback right after the worker answered), it should
// not happen; if it does, I11 reports the saga unfinished, with the reason.

// sagaState is the transfer saga's state, kept as JSON with every step at
// the TC.
type sagaState struct {
	From   acct  `json:"from"`
	To     acct  `json:"to"`
	Amount int64 `json:"amount"`
}

// sagaName is the saga that moves money from database from to database to.
func sagaName(from, to string) string { return "it-transfer-" + from + "-" + to }

// defineSagas defines a transfer saga for every ordered pair of the
// databases (the steps' fences are per database), on the worker's RM, so
// that any worker can compensate a saga another one ran.
func (w *worker) defineSagas(names []string) error {
	for _, from := range names {
		for _, to := range names {
			s, err := saga.Define(w.mgr, w.rmc, sagaName(from, to),
				saga.FencedStep("debit", w.fence[from], sagaDebit, undoDebit),
				saga.FencedStep("credit", w.fence[to], sagaCredit, undoCredit))
			if err != nil {
				return err
			}
			w.sagas[sagaName(from, to)] = s
		}
	}
	return nil
}

func sagaDebit(ctx context.Context, tx *sql.Tx, s sagaState) (sagaState, error) {
	res, err := tx.ExecContext(ctx, "UPDATE account SET balance = balance - ? WHERE id = ? AND balance >= ?", s.Amount, s.From.ID, s.Amount)
	if err := oneRow(res, err); err != nil {
		return s, err
	}
	return s, sagaForward(ctx, tx, s.From.ID, -s.Amount)
}

func sagaCredit(ctx context.Context, tx *sql.Tx, s sagaState) (sagaState, error) {
	res, err := tx.ExecContext(ctx, "UPDATE account SET balance = balance + ? WHERE id = ?", s.Amount, s.To.ID)
	if err := oneRow(res, err); err != nil {
		return s, err
	}
	return s, sagaForward(ctx, tx, s.To.ID, s.Amount)
}

// sagaForward writes a forward step's ledger row and effect.
func sagaForward(ctx context.Context, tx *sql.Tx, account, delta int64) error {
	st, _ := saga.StepFrom(ctx)
	if _, err := tx.ExecContext(ctx, "INSERT INTO ledger (xid, account, delta) VALUES (?, ?, ?)", st.XID, account, delta); err != nil {
		return err
	}
	return sagaEffect(ctx, tx, "forward")
}

// undoDebit compensates sagaDebit. The fence calls it once, and tells it
// whether the debit's transaction committed (StepDone) or rolled back
// (StepFailed: nothing to undo).
func undoDebit(ctx context.Context, tx *sql.Tx, r saga.Record[sagaState]) error {
	if r.Status != saga.StepDone {
		return nil
	}
	s := r.Input
	res, err := tx.ExecContext(ctx, "UPDATE account SET balance = balance + ? WHERE id = ?", s.Amount, s.From.ID)
	if err := affected(res, err, 1); err != nil {
		return fmt.Errorf("undo debit of %s: account %d: %w", r.XID, s.From.ID, err)
	}
	return sagaUndone(ctx, tx, r.XID, s.From.ID, -s.Amount)
}

// undoCredit compensates sagaCredit; it waits (a retryable error) while
// the destination's balance is short of the amount.
func undoCredit(ctx context.Context, tx *sql.Tx, r saga.Record[sagaState]) error {
	if r.Status != saga.StepDone {
		return nil
	}
	s := r.Input
	res, err := tx.ExecContext(ctx, "UPDATE account SET balance = balance - ? WHERE id = ? AND balance >= ?", s.Amount, s.To.ID, s.Amount)
	if err := oneRow(res, err); err != nil {
		return fmt.Errorf("undo credit of %s: account %d: %w", r.XID, s.To.ID, err)
	}
	return sagaUndone(ctx, tx, r.XID, s.To.ID, s.Amount)
}

// sagaUndone deletes a compensated step's ledger row, which must be there
// (the step committed, and only its compensation deletes it, once), and
// writes the compensation's effect.
func sagaUndone(ctx context.Context, tx *sql.Tx, xid string, account, delta int64) error {
	res, err := tx.ExecContext(ctx, "DELETE FROM ledger WHERE xid = ? AND account = ? AND delta = ?", xid, account, delta)
	if err := affected(res, err, 1); err != nil {
		return rm.Permanent(fmt.Errorf("compensate %s: ledger row of account %d delta %d: %w", xid, account, delta, err))
	}
	return sagaEffect(ctx, tx, "compensate")
}

// sagaEffect records that a saga step's action or compensation ran, in its
// transaction: the I7 and I9 checks read these rows.
func sagaEffect(ctx context.Context, tx *sql.Tx, what string) error {
	st, _ := saga.StepFrom(ctx)
	_, err := tx.ExecContext(ctx, "INSERT INTO saga_effect (xid, branch_id, step, action) VALUES (?, ?, ?, ?)", st.XID, st.BranchID, st.Step, what)
	return err
}

// affected checks that a statement changed want rows.
func affected(res sql.Result, err error, want int64) error {
	if err != nil {
		return err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n != want {
		return fmt.Errorf("%d rows changed, want %d", n, want)
	}
	return nil
}

func (w *worker) doSaga(ctx context.Context, t transfer) reply {
	if err := w.runSaga(ctx, t); err != nil {
		return failed(err)
	}
	return reply{}
}

// runSaga runs the transfer saga in the caller's global transaction: its
// steps join it as branches, and the caller decides. A failed step's
// error is a *saga.StepError wrapping the action's.
func (w *worker) runSaga(ctx context.Context, t transfer) error {
	if err := w.check(t); err != nil {
		return err
	}
	if _, ok := tm.XID(ctx); !ok {
		return errors.New("no global transaction") // Run would begin one of its own
	}
	_, err := w.sagas[sagaName(t.From.DB, t.To.DB)].Run(ctx, sagaState{From: t.From, To: t.To, Amount: t.Amount})
	return err
}

// doLocal runs a whole global transaction in this process (TM and RM
// together), printing its XID first so that the test knows it even if the
// process dies.
func (w *worker) doLocal(ctx context.Context, t transfer) reply {
	var xid string
	err := w.mgr.Do(context.WithoutCancel(ctx), tm.Options{Name: "it-" + t.Mode, Timeout: t.Timeout}, func(ctx context.Context) error {
		xid, _ = tm.XID(ctx)
		fmt.Printf("xid %s\n", xid)
		var err error
		switch t.Mode {
		case "tcc":
			err = w.runTCC(ctx, t)
		case "saga":
			err = w.runSaga(ctx, t)
		default:
			err = w.runAT(ctx, t)
		}
		if err == nil && t.Rollback {
			err = errForced
		}
		return err
	})
	rep := reply{XID: xid, Outcome: outcomeOf(err)}
	if err != nil {
		rep.Error, rep.Kind = err.Error(), errKind(err)
	}
	return rep
}

// audit reads every account of every database with SELECT … FOR UPDATE in
// the caller's global transaction: the data source waits until no other
// global transaction holds a global lock on any of them, so the total must
// be exact. Both local transactions stay open until both are read.
func (w *worker) audit(ctx context.Context, _ transfer) reply {
	if _, ok := tm.XID(ctx); !ok {
		return failed(errors.New("no global transaction"))
	}
	names := make([]string, 0, len(w.at))
	for n := range w.at {
		names = append(names, n)
	}
	sort.Strings(names)
	rep := reply{Min: 1 << 62}
	for _, n := range names {
		tx, err := w.at[n].BeginTx(ctx, nil)
		if err != nil {
			return failed(err)
		}
		defer tx.Rollback()
		rows, err := tx.QueryContext(ctx, "SELECT id, balance FROM account FOR UPDATE")
		if err != nil {
			return failed(err)
		}
		for rows.Next() {
			var id, bal int64
			if err := rows.Scan(&id, &bal); err != nil {
				rows.Close()
				return failed(err)
			}
			rep.Total += bal
			rep.Min = min(rep.Min, bal)
			rep.Rows++
		}
		if err := rows.Err(); err != nil {
			return failed(err)
		}
		rows.Close()
	}
	return rep
}

func (w *worker) stats(context.Context, transfer) reply {
	return reply{Deliveries: w.deliveries.Load(), Duplicates: w.duplicates.Load(), Coordinators: w.rmc.Status().Coordinators}
}

// noop answers DONE and does nothing (see noopResource).
type noop struct{}

func (noop) Commit(context.Context, rm.Action) error   { return nil }
func (noop) Rollback(context.Context, rm.Action) error { return nil }

// interceptUnary implements the phase-one switches.
func (w *worker) interceptUnary(ctx context.Context, method string, req, resp any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	switch method {
	case xactpb.Coordinator_QueryLocks_FullMethodName:
		if failpoint.On("it/rm/skip-lock-check") {
			resp.(*xactpb.QueryLocksResponse).Free = true
			return nil
		}
	case xactpb.Coordinator_RegisterBranch_FullMethodName:
		if failpoint.On("it/rm/skip-register") {
			resp.(*xactpb.RegisterBranchResponse).BranchId = w.fakeBranch.Add(1)
			return nil
		}
	}
	return invoker(ctx, method, req, resp, cc, opts...)
}

// interceptStream counts phase-two deliveries on the Attach stream and
// implements the phase-two switches.
func (w *worker) interceptStream(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
	s, err := streamer(ctx, desc, cc, method, opts...)
	if err != nil || method != xactpb.Coordinator_Attach_FullMethodName {
		return s, err
	}
	return &attachStream{ClientStream: s, w: w}, nil
}

type attachStream struct {
	grpc.ClientStream
	w *worker
}

func (s *attachStream) RecvMsg(m any) error {
	if err := s.ClientStream.RecvMsg(m); err != nil {
		return err
	}
	msg, ok := m.(*xactpb.TCMessage)
	if !ok || msg.GetActions() == nil {
		return nil
	}
	acts := msg.GetActions()
	kept := acts.Actions[:0]
	for _, a := range acts.GetActions() {
		s.w.note(a)
		at := a.GetBranchType() == xactpb.BranchType_BRANCH_TYPE_AT
		commit := a.GetKind() == xactpb.ActionKind_ACTION_KIND_COMMIT
		switch {
		case failpoint.On("it/rm/drop-phase2"):
			continue
		case at && commit && failpoint.On("it/rm/skip-at-commit"):
			a.ResourceId = noopResource
		case at && !commit && failpoint.On("it/rm/skip-at-rollback"):
			a.ResourceId = noopResource
		case at && commit && failpoint.On("it/rm/commit-as-rollback"):
			a.Kind = xactpb.ActionKind_ACTION_KIND_ROLLBACK
		}
		kept = append(kept, a)
	}
	acts.Actions = kept
	return nil
}

func (w *worker) note(a *xactpb.BranchAction) {
	key := fmt.Sprintf("%s/%d/%v", a.GetXid(), a.GetBranchId(), a.GetKind())
	w.deliveries.Add(1)
	w.mu.Lock()
	w.seen[key]++
	dup := w.seen[key] > 1
	w.mu.Unlock()
	if dup {
		w.duplicates.Add(1)
	}
}

// sqlQuote is for identifiers in the test's own DDL.
func sqlQuote(name string) string { return "`" + strings.ReplaceAll(name, "`", "``") + "`" }

package it

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"google.golang.org/grpc"

	"github.com/xact-io/xact/internal/failpoint"
	"github.com/xact-io/xact/protocol/xactpb"
	"github.com/xact-io/xact/tm"
)

// rig is one fault test's world: a TC process on its own data directory,
// the test's connection to it (TM and admin), and a bank.
type rig struct {
	t     *testing.T
	tc    *tcProc
	conn  *grpc.ClientConn
	mgr   *tm.Manager
	admin xactpb.AdminClient
	coord xactpb.CoordinatorClient
	bank  *bank
}

// faultTCArgs make the TC retry phase two for as long as a fault lasts
// (nothing is parked for lack of an RM) and answer decisions quickly.
var faultTCArgs = []string{"--retry-budget", "1000000", "--decision-wait", "1s", "--phase-two-timeout", "3s"}

func newRig(t *testing.T, tcArgs ...string) *rig {
	t.Helper()
	g := &rig{t: t}
	g.tc = startTC(t, t.TempDir(), "127.0.0.1:0", append(append([]string{}, faultTCArgs...), tcArgs...)...)
	g.conn = dial(t, g.tc.addr)
	g.mgr = tm.New(g.conn, tm.WithDecisionTimeout(60*time.Second), tm.WithBackoff(20*time.Millisecond, 300*time.Millisecond))
	g.admin = xactpb.NewAdminClient(g.conn)
	g.coord = xactpb.NewCoordinatorClient(g.conn)
	return g
}

// withBank adds a bank of n accounts per database holding initial each.
func (g *rig) withBank(n int, initial int64) *rig {
	g.bank = newBank(g.t, n, initial)
	return g
}

// worker starts a bank worker attached to tc (the TC's address or a proxy
// of it), with its databases through dbAddr (nil: direct), armed with fp
// (failpoints and switches in the Env syntax, "" for none).
func (g *rig) worker(id, tc string, dbAddr map[string]string, fp string) *workerProc {
	g.t.Helper()
	if tc == "" {
		tc = g.tc.addr
	}
	var env []string
	if fp != "" {
		env = append(env, failpoint.Env+"="+fp)
	}
	return startWorker(g.t, g.bank.worker(id, tc, dbAddr), env...)
}

// transfer runs one global transaction from the test's TM whose business
// is the worker's path ("at" or "tcc"); it fails on purpose after the
// worker answered when rollback is set.
func (g *rig) transfer(ctx context.Context, w *workerProc, mode string, tr transfer, rollback bool, timeout time.Duration) txRec {
	rec := txRec{mode: mode}
	rec.err = g.mgr.Do(ctx, tm.Options{Name: "it-" + mode, Timeout: timeout}, func(ctx context.Context) error {
		rec.xid, _ = tm.XID(ctx)
		if _, err := w.call(ctx, "/"+mode, tr); err != nil {
			return err
		}
		if rollback {
			return errForced
		}
		return nil
	})
	rec.outcome, rec.at = outcomeOf(rec.err), time.Now()
	return rec
}

// check settles (I11 within window) and runs the bank's checks, and
// looks at the operator's views too (`xact tx list`, `xact lock list`).
func (g *rig) check(recs []txRec, known bool, window time.Duration) report {
	g.t.Helper()
	r := settle(g.t, g.admin, window)
	r = append(r, g.bank.check(g.admin, g.coord, recs, known)...)
	return append(r, g.cliViews()...)
}

// cliViews reports what `xact tx list` and `xact lock list` (JSON) still
// show: at quiescence, nothing.
func (g *rig) cliViews() report {
	var r report
	for _, c := range []struct {
		inv  string
		args []string
		key  string
	}{
		{"I11", []string{"tx", "list"}, "globals"},
		{"I5", []string{"lock", "list"}, "locks"},
	} {
		out, err := xactCLI(g.t, append(c.args, "--json", "--server="+g.tc.addr)...)
		if err != nil {
			r.add(c.inv, "xact %s: %v\n%s", strings.Join(c.args, " "), err, out)
			continue
		}
		var v map[string][]json.RawMessage
		if err := json.Unmarshal([]byte(out), &v); err != nil {
			r.add(c.inv, "xact %s --json: %v\n%s", strings.Join(c.args, " "), err, out)
			continue
		}
		for _, item := range v[c.key] {
			var b bytes.Buffer
			json.Compact(&b, item)
			r.add(c.inv, "xact %s shows %s", strings.Join(c.args, " "), b.String())
		}
	}
	return r
}

// status returns the TC's status of xid.
func (g *rig) status(xid string) xactpb.GlobalStatus {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := g.coord.GetStatus(ctx, &xactpb.GetStatusRequest{Xid: xid}, grpc.WaitForReady(true))
	if err != nil {
		return xactpb.GlobalStatus_GLOBAL_STATUS_UNKNOWN
	}
	return st.GetStatus()
}

// waitFor polls cond every 20ms up to d.
func waitFor(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
	return true
}

// finished reports whether s is a final status.
func finished(s xactpb.GlobalStatus) bool {
	switch s {
	case xactpb.GlobalStatus_GLOBAL_STATUS_COMMITTED, xactpb.GlobalStatus_GLOBAL_STATUS_ROLLBACKED,
		xactpb.GlobalStatus_GLOBAL_STATUS_TIMEOUT_ROLLBACKED, xactpb.GlobalStatus_GLOBAL_STATUS_FINISHED:
		return true
	}
	return false
}

// soak is the soak duration (XACT_SOAK, e.g. "10m"; `make soak`), 0 in
// the bounded CI form.
func soak(t *testing.T) time.Duration {
	v := os.Getenv("XACT_SOAK")
	if v == "" {
		return 0
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		t.Fatalf("XACT_SOAK=%q: want a duration such as 10m", v)
	}
	return d
}

// summary reports a line of a run's results: on stdout in soak, where
// `make soak` shows it (go test in local directory mode), in the test log
// otherwise.
func summary(t *testing.T, format string, args ...any) {
	t.Helper()
	if soak(t) > 0 {
		fmt.Printf(format+"\n", args...)
		return
	}
	t.Logf(format, args...)
}

func init() {
	// The driver logs dropped connections, which the faults make
	// routine.
	mysql.SetLogger(log.New(io.Discard, "", 0))
}

// doOpts are the options of the test TM's transactions.
func doOpts(mode string) tm.Options { return tm.Options{Name: "it-" + mode, Timeout: 60 * time.Second} }

func xidOf(ctx context.Context) string {
	x, _ := tm.XID(ctx)
	return x
}

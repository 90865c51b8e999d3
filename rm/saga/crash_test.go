package saga_test

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/xact-io/xact/protocol/xactpb"
	"github.com/xact-io/xact/rm"
	"github.com/xact-io/xact/rm/fence"
	"github.com/xact-io/xact/rm/saga"
	"github.com/xact-io/xact/tc/tctest"
	"github.com/xact-io/xact/tm"
)

// The environment of a child process: its role, and what it connects to.
const (
	envRole     = "XACT_SAGA_TEST_ROLE" // "run" or "serve"
	envTC       = "XACT_SAGA_TEST_TC"
	envDSN      = "XACT_SAGA_TEST_DSN"
	envN        = "XACT_SAGA_TEST_N"         // sagas to run
	envStagger  = "XACT_SAGA_TEST_STAGGER"   // between saga starts
	envFailAt   = "XACT_SAGA_TEST_FAIL_AT"   // step that fails
	envSlowDo   = "XACT_SAGA_TEST_SLOW_DO"   // each action's time in its transaction
	envSlowUndo = "XACT_SAGA_TEST_SLOW_UNDO" // each compensation's time in its transaction
)

// sagaTimeout is the global timeout of the children's sagas: a saga whose
// orchestrator was killed mid-way is rolled back by the TC after it.
const sagaTimeout = 3 * time.Second

// child is the main function of a child process. It defines the saga
// "crash" (fencedSteps on the database of envDSN) on an rm.Client attached
// to the TC at envTC; role "run" also runs envN sagas; then it serves
// compensations until it is killed.
func child(role string) int {
	fail := func(err error) int {
		fmt.Fprintf(os.Stderr, "child %s: %v\n", role, err)
		return 2
	}
	dur := func(name string) time.Duration {
		d, _ := time.ParseDuration(os.Getenv(name))
		return d
	}
	conn, err := grpc.NewClient(os.Getenv(envTC), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return fail(err)
	}
	db, err := sql.Open("mysql", os.Getenv(envDSN))
	if err != nil {
		return fail(err)
	}
	f, err := fence.New(db, fence.WithCleanup(0, time.Hour))
	if err != nil {
		return fail(err)
	}
	rmc := rm.New(conn, rm.WithBackoff(10*time.Millisecond, 100*time.Millisecond), rm.WithClientID("child-"+role))
	rec := &recorder{slow: dur(envSlowUndo)}
	def, err := saga.Define(tm.New(conn), rmc, "crash", fencedSteps(f, rec, dur(envSlowDo))...)
	if err != nil {
		return fail(err)
	}
	ctx := context.Background()
	if err := rmc.Start(ctx); err != nil {
		return fail(err)
	}
	if role == "run" {
		n, _ := strconv.Atoi(os.Getenv(envN))
		var wg sync.WaitGroup
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				time.Sleep(time.Duration(i) * dur(envStagger))
				_, err := def.RunWith(ctx, tm.Options{Timeout: sagaTimeout}, Trip{User: strconv.Itoa(i), FailAt: os.Getenv(envFailAt)})
				fmt.Fprintf(os.Stderr, "child: saga %d: %v\n", i, err)
			}()
		}
		wg.Wait()
		fmt.Fprintln(os.Stderr, "child: all sagas returned")
	}
	for {
		time.Sleep(time.Hour) // serve until killed
	}
}

// proc is a child process.
type proc struct {
	cmd    *exec.Cmd
	mu     sync.Mutex
	out    bytes.Buffer
	exited chan struct{}
}

func (p *proc) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.Write(b)
}

func (p *proc) log() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

// startChild re-executes the test binary as a child with role and env.
func startChild(t *testing.T, role string, env ...string) *proc {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	p := &proc{exited: make(chan struct{})}
	p.cmd = exec.Command(exe, "-test.run=^$")
	p.cmd.Env = append(append(os.Environ(), envRole+"="+role), env...)
	p.cmd.Stdout, p.cmd.Stderr = p, p
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = p.cmd.Wait(); close(p.exited) }()
	t.Cleanup(func() {
		p.kill()
		if t.Failed() {
			t.Logf("child %s output:\n%s", role, p.log())
		}
	})
	return p
}

// kill sends SIGKILL and waits until the process is gone.
func (p *proc) kill() {
	select {
	case <-p.exited:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.exited
}

// TestOrchestratorKilled runs sagas in a child process and kills it with
// SIGKILL in the middle of the forward path, or in the middle of
// compensation; the TC (in this process) keeps running. A new child that
// serves the same saga definition finishes what is left. Every saga must
// end all-forward (committed, no compensation) or all-compensated (each
// step whose action committed compensated exactly once, in reverse order).
func TestOrchestratorKilled(t *testing.T) {
	if testing.Short() {
		t.Skip("starts child processes")
	}
	tests := []struct {
		name     string
		n        int
		stagger  time.Duration
		failAt   string
		slowDo   time.Duration
		slowUndo time.Duration
		killWhen func(do, undo int) bool
	}{
		{
			name: "during forward path", n: 10, stagger: 80 * time.Millisecond, slowDo: 100 * time.Millisecond,
			killWhen: func(do, undo int) bool { return do >= 12 },
		},
		{
			name: "during compensation", n: 6, stagger: 20 * time.Millisecond, failAt: "c",
			slowDo: 10 * time.Millisecond, slowUndo: 200 * time.Millisecond,
			killWhen: func(do, undo int) bool { return undo >= 2 },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, tctest.WithBadger())
			env := []string{
				envTC + "=" + e.srv.Addr(), envDSN + "=" + e.dsn, envN + "=" + strconv.Itoa(tt.n),
				envStagger + "=" + tt.stagger.String(), envFailAt + "=" + tt.failAt,
				envSlowDo + "=" + tt.slowDo.String(), envSlowUndo + "=" + tt.slowUndo.String(),
			}
			first := startChild(t, "run", env...)
			var do, undo int
			eventually(t, func() error {
				select {
				case <-first.exited:
					t.Fatalf("the child exited before it was killed:\n%s", first.log())
				default:
				}
				if err := e.db.QueryRow(`SELECT COALESCE(SUM(kind = 'do'), 0), COALESCE(SUM(kind = 'undo'), 0) FROM effects`).Scan(&do, &undo); err != nil {
					return err
				}
				if !tt.killWhen(do, undo) {
					return fmt.Errorf("kill condition not reached: do %d, undo %d", do, undo)
				}
				return nil
			})
			first.kill()
			t.Logf("killed the orchestrator at do=%d undo=%d", do, undo)

			startChild(t, "serve", env...)
			// Wait for every global to finish: the killed child's in-flight
			// sagas time out and are compensated through the new child.
			deadline := time.Now().Add(60 * time.Second)
			for {
				resp, err := e.admin.ListGlobals(context.Background(), &xactpb.ListGlobalsRequest{})
				if err != nil {
					t.Fatal(err)
				}
				if len(resp.GetGlobals()) == 0 {
					break
				}
				for _, g := range resp.GetGlobals() {
					if g.GetParked() {
						t.Fatalf("global %s parked: %s", g.GetXid(), g.GetReason())
					}
				}
				if time.Now().After(deadline) {
					t.Fatalf("%d globals still active after 60s, e.g. %v", len(resp.GetGlobals()), resp.GetGlobals()[0])
				}
				time.Sleep(50 * time.Millisecond)
			}
			checkOutcomes(t, e, tt.failAt != "")
			var undoAfter int
			if err := e.db.QueryRow(`SELECT COUNT(*) FROM effects WHERE kind = 'undo'`).Scan(&undoAfter); err != nil {
				t.Fatal(err)
			}
			if tt.failAt != "" && undoAfter <= undo {
				t.Errorf("undo effects: %d at the kill, %d at the end: the new process compensated nothing", undo, undoAfter)
			}
		})
	}
}

// checkOutcomes checks every saga that left an effect: committed with all
// three actions and no compensation, or rolled back with exactly the
// committed actions compensated once each, in reverse order.
func checkOutcomes(t *testing.T, e *env, mustRollBack bool) {
	t.Helper()
	rows, err := e.db.Query(`SELECT DISTINCT xid FROM effects`)
	if err != nil {
		t.Fatal(err)
	}
	var xids []string
	for rows.Next() {
		var x string
		if err := rows.Scan(&x); err != nil {
			t.Fatal(err)
		}
		xids = append(xids, x)
	}
	rows.Close()
	var committed, compensated int
	for _, xid := range xids {
		st, err := e.tm.Status(context.Background(), xid)
		if err != nil {
			t.Fatalf("Status(%s): %v", xid, err)
		}
		var do, undo []string
		for _, eff := range e.effects(xid) {
			kind, step, _ := strings.Cut(eff, ":")
			if kind == "do" {
				do = append(do, step)
			} else {
				undo = append(undo, step)
			}
		}
		switch {
		case st == xactpb.GlobalStatus_GLOBAL_STATUS_COMMITTED:
			committed++
			if mustRollBack || !slices.Equal(do, []string{"a", "b", "c"}) || len(undo) != 0 {
				t.Errorf("saga %s committed with effects %q", xid, e.effects(xid))
			}
		case tm.DecidedRollback(st) && final(st):
			compensated++
			want := slices.Clone(do)
			slices.Reverse(want)
			if !slices.Equal(undo, want) || hasDup(do) {
				t.Errorf("saga %s %v with effects %q: want each committed action compensated once, in reverse order", xid, st, e.effects(xid))
			}
		default:
			t.Errorf("saga %s ended %v", xid, st)
		}
	}
	t.Logf("%d sagas: %d committed, %d compensated", len(xids), committed, compensated)
	if compensated == 0 {
		t.Error("no saga was compensated: the kill came too late to test anything")
	}
}

func hasDup(s []string) bool {
	c := slices.Clone(s)
	slices.Sort(c)
	return len(slices.Compact(c)) != len(s)
}

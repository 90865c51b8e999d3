package saga_test

import (
	"context"
	"errors"
	"fmt"
	"path"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/xact-io/xact/protocol"
	"github.com/xact-io/xact/rm"
	"github.com/xact-io/xact/rm/saga"
	"github.com/xact-io/xact/tc/tctest"
	"github.com/xact-io/xact/tm"
)

// rpcCounter counts the unary RPCs a connection sends, by method name.
type rpcCounter struct {
	mu sync.Mutex
	n  map[string]int
}

func (c *rpcCounter) intercept(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	c.mu.Lock()
	c.n[path.Base(method)]++
	c.mu.Unlock()
	return invoker(ctx, method, req, reply, cc, opts...)
}

// take returns the counts so far and starts again from zero.
func (c *rpcCounter) take() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := c.n
	c.n = map[string]int{}
	return n
}

// countingEnv is a TC and a saga client whose RPCs are counted (no
// database: plain steps).
func countingEnv(t *testing.T) (*rpcCounter, *tm.Manager, *rm.Client) {
	t.Helper()
	srv := tctest.Start(t)
	cnt := &rpcCounter{n: map[string]int{}}
	conn, err := grpc.NewClient(srv.Addr(), append(protocol.DialOptions(),
		grpc.WithTransportCredentials(insecure.NewCredentials()), grpc.WithUnaryInterceptor(cnt.intercept))...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	rmc := rm.New(conn, rm.WithBackoff(10*time.Millisecond, 100*time.Millisecond))
	t.Cleanup(func() { rmc.Close() })
	return cnt, tm.New(conn), rmc
}

// TestStepReportsCarried: a saga's steps' PHASE_ONE_DONE reports travel
// with its next requests, so a two-step saga costs two registrations and
// the commit, and its compensations still see every step's output.
func TestStepReportsCarried(t *testing.T) {
	cnt, tmgr, rmc := countingEnv(t)
	type seen struct {
		Step   string
		Status saga.StepStatus
		Output []string
	}
	var mu sync.Mutex
	var got []seen
	step := func(name string) saga.StepDef[Trip] {
		return saga.Step(name,
			func(ctx context.Context, t Trip) (Trip, error) {
				if t.FailAt == name {
					return t, errStep
				}
				t.Done = append(t.Done, name)
				return t, nil
			},
			func(ctx context.Context, r saga.Record[Trip]) error {
				s := seen{Step: r.Step, Status: r.Status}
				if r.Output != nil {
					s.Output = r.Output.Done
				}
				mu.Lock()
				got = append(got, s)
				mu.Unlock()
				return nil
			})
	}
	two, err := saga.Define(tmgr, rmc, "two", step("x"), step("y"))
	if err != nil {
		t.Fatal(err)
	}
	three, err := saga.Define(tmgr, rmc, "three", step("p"), step("q"), step("r"))
	if err != nil {
		t.Fatal(err)
	}
	start(t, rmc)
	ctx := context.Background()
	// The Manager's first Do reserves its XID namespace.
	if _, err := two.Run(ctx, Trip{}); err != nil {
		t.Fatal(err)
	}
	cnt.take()

	out, err := two.Run(ctx, Trip{})
	if err != nil || fmt.Sprint(out.Done) != "[x y]" {
		t.Fatalf("Run = %v, %v", out, err)
	}
	if n, want := cnt.take(), map[string]int{"RegisterBranch": 2, "Commit": 1}; fmt.Sprint(n) != fmt.Sprint(want) {
		t.Errorf("a two-step saga sent %v, want %v", n, want)
	}

	// Step r fails: its failure is reported at once, p's and q's successes
	// went with the registrations of q and r, and the compensations see
	// their outputs.
	if _, err := three.Run(ctx, Trip{FailAt: "r"}); !errors.Is(err, errStep) {
		t.Fatalf("Run() = %v, want %v", err, errStep)
	}
	if n, want := cnt.take(), map[string]int{"RegisterBranch": 3, "ReportBranch": 1, "Rollback": 1}; fmt.Sprint(n) != fmt.Sprint(want) {
		t.Errorf("a three-step saga failing at its last step sent %v, want %v", n, want)
	}
	want := fmt.Sprint([]seen{
		{Step: "r", Status: saga.StepFailed},
		{Step: "q", Status: saga.StepDone, Output: []string{"p", "q"}},
		{Step: "p", Status: saga.StepDone, Output: []string{"p"}},
	})
	eventually(t, func() error {
		mu.Lock()
		defer mu.Unlock()
		if fmt.Sprint(got) != want {
			return fmt.Errorf("compensations saw\n%+v\nwant\n%s", got, want)
		}
		return nil
	})

	// Step q fails: p's success goes with the Rollback.
	mu.Lock()
	got = nil
	mu.Unlock()
	if _, err := three.Run(ctx, Trip{FailAt: "q"}); !errors.Is(err, errStep) {
		t.Fatalf("Run() = %v, want %v", err, errStep)
	}
	if n, want := cnt.take(), map[string]int{"RegisterBranch": 2, "ReportBranch": 1, "Rollback": 1}; fmt.Sprint(n) != fmt.Sprint(want) {
		t.Errorf("a three-step saga failing at its second step sent %v, want %v", n, want)
	}
	want = fmt.Sprint([]seen{
		{Step: "q", Status: saga.StepFailed},
		{Step: "p", Status: saga.StepDone, Output: []string{"p"}},
	})
	eventually(t, func() error {
		mu.Lock()
		defer mu.Unlock()
		if fmt.Sprint(got) != want {
			return fmt.Errorf("compensations saw\n%+v\nwant\n%s", got, want)
		}
		return nil
	})

	// A saga that joins its caller's global transaction reports its last
	// step on its own: the caller's decision may be far off. The caller
	// rolls back, and the compensations see both outputs.
	mu.Lock()
	got = nil
	mu.Unlock()
	errCaller := errors.New("caller fails")
	err = tmgr.Do(ctx, tm.Options{}, func(ctx context.Context) error {
		if _, err := two.Run(ctx, Trip{}); err != nil {
			return err
		}
		if n, want := cnt.take(), map[string]int{"RegisterBranch": 2, "ReportBranch": 1}; fmt.Sprint(n) != fmt.Sprint(want) {
			t.Errorf("a joined two-step saga sent %v, want %v", n, want)
		}
		return errCaller
	})
	if !errors.Is(err, errCaller) {
		t.Fatalf("Do = %v, want %v", err, errCaller)
	}
	want = fmt.Sprint([]seen{
		{Step: "y", Status: saga.StepDone, Output: []string{"x", "y"}},
		{Step: "x", Status: saga.StepDone, Output: []string{"x"}},
	})
	eventually(t, func() error {
		mu.Lock()
		defer mu.Unlock()
		if fmt.Sprint(got) != want {
			return fmt.Errorf("compensations saw\n%+v\nwant\n%s", got, want)
		}
		return nil
	})
}

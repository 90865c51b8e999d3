package rm

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/xact-io/xact/protocol/xactpb"
)

// silentTC accepts the phase-one calls and answers none of them.
type silentTC struct {
	xactpb.UnimplementedCoordinatorServer
}

func (silentTC) RegisterBranch(ctx context.Context, _ *xactpb.RegisterBranchRequest) (*xactpb.RegisterBranchResponse, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}

func (silentTC) ReportBranch(ctx context.Context, _ *xactpb.ReportBranchRequest) (*xactpb.ReportBranchResponse, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}

func (silentTC) QueryLocks(ctx context.Context, _ *xactpb.QueryLocksRequest) (*xactpb.QueryLocksResponse, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}

// Attach welcomes the RM, so that it can start, and then stays silent.
func (silentTC) Attach(stream xactpb.Coordinator_AttachServer) error {
	if _, err := stream.Recv(); err != nil {
		return err
	}
	if err := stream.Send(&xactpb.TCMessage{Body: &xactpb.TCMessage_Welcome{Welcome: &xactpb.Welcome{NodeId: "silent"}}}); err != nil {
		return err
	}
	<-stream.Context().Done()
	return nil
}

// TestPhaseOneCallsReportTheirContext: a phase-one call that ends because
// its context did returns an error that errors.Is matches with the
// context's error (gRPC's own status error does not), whether the context
// timed out or was cancelled.
func TestPhaseOneCallsReportTheirContext(t *testing.T) {
	c := New(serve(t, silentTC{}), WithRPCTimeout(time.Minute), WithRetryBudget(time.Minute), WithBackoff(time.Millisecond, 5*time.Millisecond))
	defer c.Close()
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Start(sctx); err != nil {
		t.Fatalf("Start: %v", err)
	}
	calls := map[string]func(context.Context) error{
		"RegisterBranch": func(ctx context.Context) error {
			_, err := c.RegisterBranch(ctx, "x:1", "db", at, []string{"t:1"}, nil)
			return err
		},
		"ReportBranch": func(ctx context.Context) error {
			return c.ReportBranch(ctx, "x:1", 1, xactpb.BranchStatus_BRANCH_STATUS_PHASE_ONE_FAILED, nil)
		},
		"QueryLocks": func(ctx context.Context) error {
			return c.QueryLocks(ctx, "x:1", "db", []string{"t:1"})
		},
	}
	for name, call := range calls {
		t.Run(name+"/deadline", func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
			defer cancel()
			if err := call(ctx); !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("%s against a silent TC = %v, want an error wrapping %v", name, err, context.DeadlineExceeded)
			}
		})
		t.Run(name+"/cancel", func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			timer := time.AfterFunc(100*time.Millisecond, cancel)
			defer timer.Stop()
			if err := call(ctx); !errors.Is(err, context.Canceled) {
				t.Errorf("%s against a silent TC = %v, want an error wrapping %v", name, err, context.Canceled)
			}
		})
	}
}

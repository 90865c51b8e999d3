package saga_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync/atomic"
	"testing"

	"github.com/xact-io/xact/protocol/xactpb"
	"github.com/xact-io/xact/rm/fence"
	"github.com/xact-io/xact/rm/saga"
	"github.com/xact-io/xact/tm"
)

// hotelRequest is what the saga sends the hotel service: the step's
// branch, the fence key of the service's own work.
type hotelRequest struct {
	XID      string `json:"xid"`
	BranchID int64  `json:"branch_id"`
	User     string `json:"user"`
}

// TestRemoteStep runs a step that calls another service over HTTP with
// the XID propagated (tm.Transport, tm.Middleware). The service fences its
// booking and its cancellation with a fence.Fence keyed by the step's
// branch. Its cancel endpoint commits and then fails once (a lost answer):
// the TC retries the compensation, the fence makes the retry a no-op, and
// the booking is cancelled exactly once.
func TestRemoteStep(t *testing.T) {
	e := newEnv(t)
	var cancelCalls atomic.Int32
	effect := func(ctx context.Context, tx *sql.Tx, xid, kind string) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO effects (xid, step, kind) VALUES (?, 'hotel', ?)`, xid, kind)
		return err
	}
	mux := http.NewServeMux()
	// decode reads the request. The forward call carries the XID (the
	// action runs in the global transaction); the compensation runs in
	// phase two, outside it, and names the branch in the body only.
	decode := func(w http.ResponseWriter, r *http.Request) (hotelRequest, fence.Branch, bool) {
		var req hotelRequest
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return req, fence.Branch{}, false
		}
		want := req.XID
		if r.URL.Path == "/cancel" {
			want = ""
		}
		if xid, _ := tm.XID(r.Context()); xid != want {
			http.Error(w, fmt.Sprintf("XID %q propagated, want %q", xid, want), http.StatusBadRequest)
			return req, fence.Branch{}, false
		}
		return req, fence.Branch{XID: req.XID, BranchID: req.BranchID, Resource: "hotel-service"}, true
	}
	mux.HandleFunc("/book", func(w http.ResponseWriter, r *http.Request) {
		_, b, ok := decode(w, r)
		if !ok {
			return
		}
		err := e.fence.Try(r.Context(), b, func(ctx context.Context, tx *sql.Tx) error { return effect(ctx, tx, b.XID, "do") }, nil)
		if err != nil {
			http.Error(w, err.Error(), http.StatusConflict)
		}
	})
	mux.HandleFunc("/cancel", func(w http.ResponseWriter, r *http.Request) {
		_, b, ok := decode(w, r)
		if !ok {
			return
		}
		err := e.fence.Cancel(r.Context(), b, func(ctx context.Context, tx *sql.Tx, _ fence.TryOutcome) error {
			return effect(ctx, tx, b.XID, "undo")
		})
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		if cancelCalls.Add(1) == 1 {
			http.Error(w, "lost answer", http.StatusBadGateway) // committed, but the caller does not know
		}
	})
	svc := httptest.NewServer(tm.Middleware(mux))
	defer svc.Close()
	client := &http.Client{Transport: tm.Transport(nil)}
	defer client.CloseIdleConnections()
	post := func(ctx context.Context, path string, req hotelRequest) error {
		body, _ := json.Marshal(req)
		hr, err := http.NewRequestWithContext(ctx, http.MethodPost, svc.URL+path, bytes.NewReader(body))
		if err != nil {
			return err
		}
		resp, err := client.Do(hr)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			msg, _ := io.ReadAll(resp.Body)
			return fmt.Errorf("hotel service %s: %s: %s", path, resp.Status, msg)
		}
		return nil
	}

	rmc := e.newRM(t)
	def, err := saga.Define(e.tm, rmc, "remote",
		saga.Step("hotel",
			func(ctx context.Context, t Trip) (Trip, error) {
				info, _ := saga.StepFrom(ctx)
				if err := post(ctx, "/book", hotelRequest{XID: info.XID, BranchID: info.BranchID, User: t.User}); err != nil {
					return t, err
				}
				t.Done = append(t.Done, "hotel")
				return t, nil
			},
			func(ctx context.Context, r saga.Record[Trip]) error {
				// Phase two, pushed by the TC: ctx carries no XID (nothing
				// here may join the global transaction), the record names
				// the branch.
				return post(ctx, "/cancel", hotelRequest{XID: r.XID, BranchID: r.BranchID, User: r.Input.User})
			}),
		saga.Step("pay", func(ctx context.Context, t Trip) (Trip, error) { return t, errStep }, nil),
	)
	if err != nil {
		t.Fatal(err)
	}
	start(t, rmc)
	_, err = def.Run(context.Background(), Trip{User: "bob"})
	var se *saga.StepError
	if !errors.As(err, &se) || se.Step != "pay" {
		t.Fatalf("Run() error = %v, want the StepError of step pay", err)
	}
	g := e.finalStatus(se.XID)
	if got := g.GetStatus(); got != xactpb.GlobalStatus_GLOBAL_STATUS_ROLLBACKED {
		t.Errorf("status = %v, want ROLLBACKED (reason %q)", got, g.GetReason())
	}
	if got, want := e.effects(se.XID), []string{"do:hotel", "undo:hotel"}; !slices.Equal(got, want) {
		t.Errorf("effects = %q, want %q", got, want)
	}
	if got := cancelCalls.Load(); got < 2 {
		t.Errorf("cancel endpoint answered %d times, want at least 2 (the lost answer is retried)", got)
	}
}

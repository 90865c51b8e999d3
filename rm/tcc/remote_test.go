package tcc

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/xact-io/xact/protocol/xactpb"
	"github.com/xact-io/xact/tm"
)

// TestRemoteParticipant puts the participant in another service reached
// over HTTP: the caller's tm.Transport sends the XID, the service's
// tm.Middleware puts it into the request's context, and the service's own
// rm.Client registers the branch in its Try and runs Confirm or Cancel.
func TestRemoteParticipant(t *testing.T) {
	e := newEnv(t)
	// The stock service: its own rm.Client and the fenced resource.
	c := &calls{}
	stockRM := e.newRM(t)
	reserve, err := RegisterFenced(stockRM, "reserve-stock", e.fence, stockFuncs(c))
	if err != nil {
		t.Fatal(err)
	}
	start(t, stockRM)
	svc := httptest.NewServer(tm.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req Reserve
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if err := reserve.Try(r.Context(), req); err != nil {
			http.Error(w, err.Error(), http.StatusConflict)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})))
	defer svc.Close()
	client := &http.Client{Transport: tm.Transport(nil)}
	defer client.CloseIdleConnections()
	callStock := func(ctx context.Context, req Reserve) error {
		body, _ := json.Marshal(req)
		hr, err := http.NewRequestWithContext(ctx, http.MethodPost, svc.URL, bytes.NewReader(body))
		if err != nil {
			return err
		}
		resp, err := client.Do(hr)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusNoContent {
			msg, _ := io.ReadAll(resp.Body)
			return fmt.Errorf("stock service: %s: %s", resp.Status, msg)
		}
		return nil
	}

	tests := []struct {
		name       string
		req        Reserve
		wantStatus xactpb.GlobalStatus
		wantStock  stock
		wantCalls  callCounts
	}{
		{"confirm", Reserve{SKU: "apple", N: 4}, xactpb.GlobalStatus_GLOBAL_STATUS_COMMITTED, stock{6, 0, 4},
			callCounts{Try: 1, Confirm: 1}},
		{"remote try fails", Reserve{SKU: "apple", N: 40}, xactpb.GlobalStatus_GLOBAL_STATUS_ROLLBACKED, stock{10, 0, 0},
			callCounts{Try: 1, Cancel: 1, Outcomes: []TryOutcome{TryFailed}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e.exec(`UPDATE stock SET free = 10, frozen = 0, sold = 0`)
			c.reset()
			var xid string
			err := e.tm.Do(context.Background(), tm.Options{Name: "order"}, func(ctx context.Context) error {
				xid, _ = tm.XID(ctx)
				return callStock(ctx, tt.req)
			})
			if (err != nil) != (tt.wantStatus != xactpb.GlobalStatus_GLOBAL_STATUS_COMMITTED) {
				t.Fatalf("Do() error = %v", err)
			}
			g := e.finalStatus(xid)
			if got := g.GetStatus(); got != tt.wantStatus {
				t.Errorf("status = %v, want %v", got, tt.wantStatus)
			}
			if got := e.stock(); got != tt.wantStock {
				t.Errorf("stock = %+v, want %+v", got, tt.wantStock)
			}
			if got := c.get(); !got.equal(tt.wantCalls) {
				t.Errorf("calls = %+v, want %+v", got, tt.wantCalls)
			}
		})
	}

	// A request without an XID does not join anything.
	if err := callStock(context.Background(), Reserve{SKU: "apple", N: 1}); err == nil {
		t.Errorf("call without a global transaction succeeded")
	}
}

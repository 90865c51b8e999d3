package it

import (
	"context"
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/xact-io/xact/protocol/xactpb"
)

func xactCLI(t *testing.T, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, xactBin, args...).CombinedOutput()
	return string(out), err
}

// TestSecondServerOnSameDirRefused: the data directory is locked.
func TestSecondServerOnSameDirRefused(t *testing.T) {
	dir := t.TempDir()
	startTC(t, dir, "127.0.0.1:0")
	out, err := xactCLI(t, "server", "--listen", "127.0.0.1:0", "--data-dir", dir)
	if err == nil {
		t.Fatalf("second server on %s started:\n%s", dir, out)
	}
	if !strings.Contains(out, "locked") {
		t.Errorf("second server's error does not say the directory is locked:\n%s", out)
	}
}

// TestCLI drives the operator commands against a real server: a
// transaction whose RM is missing is parked after the retry budget, shows up
// in `tx list --parked` and `tx show`, holds its lock in `lock list`, and is
// finished by `tx rollback` once the RM is back.
func TestCLI(t *testing.T) {
	proc := startTC(t, t.TempDir(), "127.0.0.1:0", "--retry-budget", "2")
	conn := dial(t, proc.addr)
	coord := xactpb.NewCoordinatorClient(conn)
	ctx := context.Background()
	begin, err := coord.Begin(ctx, &xactpb.BeginRequest{Name: "cli-test", TimeoutMs: 60000})
	if err != nil {
		t.Fatal(err)
	}
	xid := begin.GetXid()
	if _, err := coord.RegisterBranch(ctx, &xactpb.RegisterBranchRequest{Xid: xid, ResourceId: "db-x", LockKeys: []string{"account:7"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := coord.Rollback(ctx, &xactpb.RollbackRequest{Xid: xid}); err != nil {
		t.Fatal(err)
	}
	srv := "--server=" + proc.addr
	deadline := time.Now().Add(20 * time.Second)
	for {
		out, err := xactCLI(t, "tx", "list", "--parked", "--json", srv)
		if err != nil {
			t.Fatalf("tx list: %v\n%s", err, out)
		}
		var resp struct {
			Globals []struct {
				Xid    string `json:"xid"`
				Status string `json:"status"`
				Parked bool   `json:"parked"`
			} `json:"globals"`
		}
		if err := json.Unmarshal([]byte(out), &resp); err != nil {
			t.Fatalf("tx list --json is not JSON: %v\n%s", err, out)
		}
		if len(resp.Globals) == 1 && resp.Globals[0].Xid == xid && resp.Globals[0].Parked {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not parked in time; tx list says:\n%s", out)
		}
		time.Sleep(100 * time.Millisecond)
	}
	out, err := xactCLI(t, "tx", "list", srv)
	if err != nil || !strings.Contains(out, xid) || !strings.Contains(out, "ROLLBACK_RETRY_TIMEOUT") {
		t.Errorf("tx list table:\n%s (err %v)", out, err)
	}
	out, err = xactCLI(t, "tx", "show", xid, srv)
	for _, want := range []string{"cli-test", "Parked:", "true", "db-x", "account:7", "no rm attached", "History:"} {
		if err != nil || !strings.Contains(out, want) {
			t.Errorf("tx show lacks %q:\n%s (err %v)", want, out, err)
		}
	}
	out, err = xactCLI(t, "lock", "list", "--xid", xid, srv)
	if err != nil || !strings.Contains(out, "account:7") {
		t.Errorf("lock list:\n%s (err %v)", out, err)
	}
	out, err = xactCLI(t, "tx", "commit", xid, srv)
	if err == nil || !strings.Contains(out, "rolled back") {
		t.Errorf("tx commit of a rollback succeeded or said the wrong thing:\n%s", out)
	}

	// The RM comes back; the operator resumes the rollback.
	led := newLedger()
	attachLedger(t, conn, led, "db-x")
	out, err = xactCLI(t, "tx", "rollback", xid, srv)
	if err != nil || !strings.Contains(out, "ROLLBACKED") {
		t.Fatalf("tx rollback:\n%s (err %v)", out, err)
	}
	if got := led.outcome(xid, 1); got != "rollback" {
		t.Errorf("branch effect = %q, want rollback", got)
	}
	out, err = xactCLI(t, "lock", "list", srv)
	if err != nil || strings.Contains(out, "account:7") {
		t.Errorf("lock left after rollback:\n%s (err %v)", out, err)
	}
	out, err = xactCLI(t, "tx", "show", "no-such-xid", srv)
	if err == nil || !strings.Contains(out, "not found") {
		t.Errorf("tx show of an unknown XID:\n%s (err %v)", out, err)
	}
}

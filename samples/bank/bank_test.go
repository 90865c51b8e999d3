package bank_test

import (
	"context"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/xact-io/xact/internal/mysqltest"
	"github.com/xact-io/xact/protocol/xactpb"
	"github.com/xact-io/xact/rm/fence"
	"github.com/xact-io/xact/samples/bank/account"
	"github.com/xact-io/xact/samples/bank/api"
	"github.com/xact-io/xact/samples/bank/bankpb"
	"github.com/xact-io/xact/samples/bank/ledger"
	"github.com/xact-io/xact/tc/tctest"
	"github.com/xact-io/xact/undo"
)

func TestMain(m *testing.M) { mysqltest.Main(m) }

// TestBank runs the sample as `make demo` does, in one process: a
// coordinator, two databases, the three services, and transfers in every
// mode that commit, that are forced to fail, and that fail on their own.
func TestBank(t *testing.T) {
	tcSrv := tctest.Start(t)
	admin := xactpb.NewAdminClient(tcSrv.Conn(t))
	accDSN := newDatabase(t, "schema/account.sql")
	ledDSN := newDatabase(t, "schema/ledger.sql")

	ctx, cancel := context.WithCancel(context.Background())
	errs := make(chan error, 3)
	var running int
	serve := func(run func(net.Listener) error) string {
		lis, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		running++
		go func() { errs <- run(lis) }()
		return lis.Addr().String()
	}
	t.Cleanup(func() {
		cancel()
		for range running {
			if err := <-errs; err != nil {
				t.Errorf("service: %v", err)
			}
		}
	})
	accAddr := serve(func(lis net.Listener) error {
		return account.Run(ctx, account.Config{TC: tcSrv.Addr(), DSN: accDSN}, lis)
	})
	ledAddr := serve(func(lis net.Listener) error {
		return ledger.Run(ctx, ledger.Config{TC: tcSrv.Addr(), DSN: ledDSN}, lis)
	})
	apiAddr := serve(func(lis net.Listener) error {
		return api.Run(ctx, api.Config{TC: tcSrv.Addr(), Account: accAddr, Ledger: ledAddr}, lis)
	})
	conn, err := grpc.NewClient(apiAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	bank := bankpb.NewBankClient(conn)
	waitReady(t, bank)

	const (
		committed  = bankpb.Outcome_OUTCOME_COMMITTED
		rolledBack = bankpb.Outcome_OUTCOME_ROLLED_BACK
	)
	alice, bob := int64(100), int64(100)
	tests := []struct {
		name    string
		mode    bankpb.Mode
		amount  int64
		fail    bool
		want    bankpb.Outcome
		wantEnt string // the state of the transfer's ledger entry, "" for none
	}{
		{"at/commit", bankpb.Mode_MODE_AT, 30, false, committed, "posted"},
		{"at/forced-failure", bankpb.Mode_MODE_AT, 30, true, rolledBack, ""}, // the undo log deletes it
		{"at/insufficient-funds", bankpb.Mode_MODE_AT, 1000, false, rolledBack, ""},
		{"tcc/commit", bankpb.Mode_MODE_TCC, 20, false, committed, "posted"},
		{"tcc/forced-failure", bankpb.Mode_MODE_TCC, 20, true, rolledBack, "voided"},
		{"saga/commit", bankpb.Mode_MODE_SAGA, 10, false, committed, "posted"},
		{"saga/forced-failure", bankpb.Mode_MODE_SAGA, 10, true, rolledBack, "voided"},
		{"saga/insufficient-funds", bankpb.Mode_MODE_SAGA, 1000, false, rolledBack, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := bank.Transfer(context.Background(), &bankpb.TransferRequest{
				From: "alice", To: "bob", Amount: tt.amount, Mode: tt.mode, Fail: tt.fail,
			})
			if err != nil {
				t.Fatalf("Transfer: %v", err)
			}
			if got := resp.GetOutcome(); got != tt.want {
				t.Fatalf("Transfer outcome = %v (%s), want %v", got, resp.GetReason(), tt.want)
			}
			wantStatus := xactpb.GlobalStatus_GLOBAL_STATUS_ROLLBACKED
			if tt.want == committed {
				wantStatus = xactpb.GlobalStatus_GLOBAL_STATUS_COMMITTED
				alice, bob = alice-tt.amount, bob+tt.amount
			}
			if got := finalStatus(t, admin, resp.GetXid()); got != wantStatus {
				t.Errorf("TC status of %s = %v, want %v", resp.GetXid(), got, wantStatus)
			}
			if locks, err := admin.ListLocks(context.Background(), &xactpb.ListLocksRequest{}); err != nil {
				t.Error(err)
			} else if n := len(locks.GetLocks()); n != 0 {
				t.Errorf("%d global locks held after the transaction ended, want 0", n)
			}

			rep, err := bank.Report(context.Background(), &bankpb.ReportRequest{})
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]int64{}
			for _, a := range rep.GetAccounts() {
				got[a.GetId()] = a.GetBalance()
			}
			if got["alice"] != alice || got["bob"] != bob {
				t.Errorf("balances alice=%d bob=%d, want alice=%d bob=%d", got["alice"], got["bob"], alice, bob)
			}
			var states []string
			for _, e := range rep.GetEntries() {
				if e.GetXid() == resp.GetXid() {
					states = append(states, e.GetState())
				}
			}
			if gotEnt := strings.Join(states, ","); gotEnt != tt.wantEnt {
				t.Errorf("ledger entries of %s = %q, want %q", resp.GetXid(), gotEnt, tt.wantEnt)
			}
		})
	}

	// While an AT transfer is open, the TC holds global locks on its rows:
	// a second AT transfer of the same accounts cannot commit its branch,
	// and rolls back after the data source's lock wait (2s).
	t.Run("at/lock-conflict", func(t *testing.T) {
		first := make(chan *bankpb.TransferResponse, 1)
		go func() {
			resp, err := bank.Transfer(context.Background(), &bankpb.TransferRequest{
				From: "alice", To: "bob", Amount: 1, Mode: bankpb.Mode_MODE_AT, HoldMs: 5000,
			})
			if err != nil {
				t.Errorf("first Transfer: %v", err)
			}
			first <- resp
		}()
		waitOpen(t, admin, "transfer-at", 2)
		resp, err := bank.Transfer(context.Background(), &bankpb.TransferRequest{
			From: "alice", To: "bob", Amount: 1, Mode: bankpb.Mode_MODE_AT,
		})
		if err != nil {
			t.Fatalf("second Transfer: %v", err)
		}
		if resp.GetOutcome() != rolledBack || !strings.Contains(resp.GetReason(), "is locked by global transaction") {
			t.Errorf("second Transfer = %v (%s), want rolled back on a lock conflict", resp.GetOutcome(), resp.GetReason())
		}
		if resp := <-first; resp.GetOutcome() != committed {
			t.Errorf("first Transfer = %v (%s), want committed", resp.GetOutcome(), resp.GetReason())
		}
	})

	// A saga step writes the balances in a global-lock transaction: while
	// an AT transfer holds them, the step cannot commit, and the saga
	// rolls back after the data source's lock wait (2s). The AT transfer
	// then rolls back finding its rows as it left them: nothing is parked.
	t.Run("saga/respects-at-locks", func(t *testing.T) {
		balances := func() map[string]int64 {
			rep, err := bank.Report(context.Background(), &bankpb.ReportRequest{})
			if err != nil {
				t.Fatal(err)
			}
			m := map[string]int64{}
			for _, a := range rep.GetAccounts() {
				m[a.GetId()] = a.GetBalance()
			}
			return m
		}
		before := balances()
		first := make(chan *bankpb.TransferResponse, 1)
		go func() {
			resp, err := bank.Transfer(context.Background(), &bankpb.TransferRequest{
				From: "alice", To: "bob", Amount: 1, Mode: bankpb.Mode_MODE_AT, HoldMs: 4000, Fail: true,
			})
			if err != nil {
				t.Errorf("AT Transfer: %v", err)
			}
			first <- resp
		}()
		waitOpen(t, admin, "transfer-at", 2)
		resp, err := bank.Transfer(context.Background(), &bankpb.TransferRequest{
			From: "alice", To: "bob", Amount: 1, Mode: bankpb.Mode_MODE_SAGA,
		})
		if err != nil {
			t.Fatalf("saga Transfer: %v", err)
		}
		if resp.GetOutcome() != rolledBack || !strings.Contains(resp.GetReason(), "is locked by global transaction") {
			t.Errorf("saga Transfer = %v (%s), want rolled back on a lock conflict", resp.GetOutcome(), resp.GetReason())
		}
		at := <-first
		if at.GetOutcome() != rolledBack {
			t.Errorf("AT Transfer = %v (%s), want rolled back", at.GetOutcome(), at.GetReason())
		}
		for _, xid := range []string{at.GetXid(), resp.GetXid()} {
			if got := finalStatus(t, admin, xid); got != xactpb.GlobalStatus_GLOBAL_STATUS_ROLLBACKED {
				t.Errorf("TC status of %s = %v, want ROLLBACKED", xid, got)
			}
		}
		if after := balances(); after["alice"] != before["alice"] || after["bob"] != before["bob"] {
			t.Errorf("balances %v, want %v", after, before)
		}
	})
}

// waitOpen waits until the TC lists a transaction named name in Begin with
// branches branches.
func waitOpen(t *testing.T, admin xactpb.AdminClient, name string, branches int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		list, err := admin.ListGlobals(context.Background(), &xactpb.ListGlobalsRequest{
			Statuses: []xactpb.GlobalStatus{xactpb.GlobalStatus_GLOBAL_STATUS_BEGIN},
		})
		if err != nil {
			t.Fatal(err)
		}
		for _, g := range list.GetGlobals() {
			if g.GetName() != name {
				continue
			}
			show, err := admin.ShowGlobal(context.Background(), &xactpb.ShowGlobalRequest{Xid: g.GetXid()})
			if err != nil {
				t.Fatal(err)
			}
			if len(show.GetBranches()) == branches {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no transaction %s open with %d branches after 10s", name, branches)
}

// TestBankBadRequests checks that the services refuse what they cannot
// carry out, before any transaction begins.
func TestBankBadRequests(t *testing.T) {
	tcSrv := tctest.Start(t)
	ctx, cancel := context.WithCancel(context.Background())
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	// The account and ledger services are never called: every request
	// is refused first.
	go func() {
		done <- api.Run(ctx, api.Config{TC: tcSrv.Addr(), Account: "127.0.0.1:1", Ledger: "127.0.0.1:1"}, lis)
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("api.Run: %v", err)
		}
	})
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	bank := bankpb.NewBankClient(conn)
	for _, req := range []*bankpb.TransferRequest{
		{From: "alice", To: "bob", Amount: 1},                                            // no mode
		{From: "alice", To: "alice", Amount: 1, Mode: bankpb.Mode_MODE_AT},               // same account
		{From: "alice", To: "bob", Amount: 0, Mode: bankpb.Mode_MODE_AT},                 // no amount
		{From: "alice", To: "bob", Amount: -5, Mode: bankpb.Mode_MODE_TCC},               // negative
		{From: "", To: "bob", Amount: 1, Mode: bankpb.Mode_MODE_SAGA},                    // no account
		{From: "alice", To: "bob", Amount: 1, Mode: bankpb.Mode_MODE_AT, HoldMs: 1e6},    // hold too long
		{From: strings.Repeat("x", 33), To: "bob", Amount: 1, Mode: bankpb.Mode_MODE_AT}, // id too long
	} {
		_, err := bank.Transfer(context.Background(), req)
		if got := status.Code(err); got != codes.InvalidArgument {
			t.Errorf("Transfer(%v) = %v, want InvalidArgument", req, err)
		}
	}
}

// newDatabase creates a database with the schema in file and the tables
// xact needs (undo_log for AT, tcc_fence_log for the fence), as `make
// demo` does with `xact sql undo-log` and `xact sql tcc-fence`, and
// returns its DSN.
func newDatabase(t *testing.T, file string) string {
	t.Helper()
	schema, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	cfg := mysqltest.Config(t)
	dsn := cfg.FormatDSN()
	setup := cfg.Clone()
	setup.MultiStatements = true
	db := mysqltest.Open(t, setup)
	for _, ddl := range []string{string(schema), undo.LogTableDDL, fence.DDL} {
		if _, err := db.Exec(ddl); err != nil {
			t.Fatalf("%s: %v", file, err)
		}
	}
	return dsn
}

// waitReady waits until the API service and the services behind it answer.
func waitReady(t *testing.T, bank bankpb.BankClient) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err := bank.Report(ctx, &bankpb.ReportRequest{})
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("services not ready after 30s: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// finalStatus waits until the TC has finished xid, and returns its final
// status (from the tombstone a finished transaction leaves).
func finalStatus(t *testing.T, admin xactpb.AdminClient, xid string) xactpb.GlobalStatus {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := admin.ShowGlobal(context.Background(), &xactpb.ShowGlobalRequest{Xid: xid})
		if err != nil {
			t.Fatalf("ShowGlobal(%s): %v", xid, err)
		}
		g := resp.GetGlobal()
		switch st := g.GetStatus(); {
		case g.GetParked():
			t.Fatalf("%s parked in %v: %s", xid, st, g.GetReason())
		case st == xactpb.GlobalStatus_GLOBAL_STATUS_COMMITTED, st == xactpb.GlobalStatus_GLOBAL_STATUS_ROLLBACKED:
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s still %v after 30s", xid, g.GetStatus())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

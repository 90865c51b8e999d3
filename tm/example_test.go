package tm_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/xact-io/xact/storage/memory"
	"github.com/xact-io/xact/tc"
	"github.com/xact-io/xact/tm"
)

// startTC starts a coordinator in this process for the examples; a
// deployment runs `xact server`. stop stops it.
func startTC() (addr string, stop func()) {
	cfg := tc.DefaultConfig()
	cfg.ListenAddr = "127.0.0.1:0"
	store := memory.New()
	cfg.Store = store
	srv, err := tc.New(cfg)
	if err != nil {
		panic(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	var once sync.Once
	return srv.Addr(), func() {
		once.Do(func() {
			cancel()
			<-done
			store.Close()
		})
	}
}

var errInsufficientFunds = errors.New("insufficient funds")

// Do's error tells the outcome of the global transaction. Check in this
// order: nil (committed), ErrUnknownOutcome (may still go either way),
// then your own errors (rolled back).
func ExampleManager_Do() {
	addr, stop := startTC()
	defer stop()
	m, err := tm.Dial(addr)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer m.Close()

	err = m.Do(context.Background(), tm.Options{Name: "transfer", Timeout: 30 * time.Second}, func(ctx context.Context) error {
		// Database writes, TCC tries and calls to other services made
		// with ctx join the global transaction.
		return nil // commit
	})
	switch {
	case err == nil:
		fmt.Println("committed")
	case errors.Is(err, tm.ErrUnknownOutcome):
		fmt.Println("outcome unknown, check later:", err)
	default:
		fmt.Println("rolled back:", err)
	}
	// Output: committed
}

// fn fails and the rollback is confirmed: Do returns fn's error itself.
func ExampleManager_Do_rolledBack() {
	addr, stop := startTC()
	defer stop()
	m, err := tm.Dial(addr)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer m.Close()

	err = m.Do(context.Background(), tm.Options{Name: "transfer", Timeout: 30 * time.Second}, func(ctx context.Context) error {
		return errInsufficientFunds // roll back
	})
	switch {
	case err == nil:
		fmt.Println("committed")
	case errors.Is(err, tm.ErrUnknownOutcome):
		fmt.Println("outcome unknown, check later:", err)
	case errors.Is(err, errInsufficientFunds):
		fmt.Println("rolled back:", err)
	}
	// Output: rolled back: insufficient funds
}

// fn fails, and the rollback cannot be confirmed because the TC is
// unreachable: the transaction may still commit (an operator, or the
// TC's timeout, decides it). Do's error matches ErrUnknownOutcome and not
// fn's error, which OutcomeError.BusinessErr returns.
func ExampleManager_Do_unknownOutcome() {
	addr, stop := startTC()
	defer stop()
	m, err := tm.Dial(addr, tm.WithDecisionTimeout(200*time.Millisecond))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer m.Close()

	err = m.Do(context.Background(), tm.Options{Name: "transfer", Timeout: 30 * time.Second}, func(ctx context.Context) error {
		if err := tm.EnsureBegun(ctx); err != nil { // the TC now knows the transaction
			return err
		}
		stop() // the TC goes away before the rollback
		return errInsufficientFunds
	})
	var oe *tm.OutcomeError
	switch {
	case err == nil:
		fmt.Println("committed")
	case errors.Is(err, tm.ErrUnknownOutcome) && errors.As(err, &oe):
		fmt.Println("outcome unknown; fn failed with:", oe.BusinessErr())
		fmt.Println("matches fn's error:", errors.Is(err, errInsufficientFunds))
	case errors.Is(err, errInsufficientFunds):
		fmt.Println("rolled back:", err)
	}
	// Output:
	// outcome unknown; fn failed with: insufficient funds
	// matches fn's error: false
}

// The XID crosses HTTP hops through Transport on the client and Middleware
// on the server.
func ExampleMiddleware() {
	mux := http.NewServeMux()
	mux.HandleFunc("/debit", func(w http.ResponseWriter, r *http.Request) {
		if xid, ok := tm.XID(r.Context()); ok {
			fmt.Fprintln(w, "joining", xid)
		}
	})
	srv := &http.Server{Addr: "localhost:8080", Handler: tm.Middleware(mux)}
	_ = srv

	client := &http.Client{Transport: tm.Transport(nil)}
	_ = client // client.Do(req.WithContext(ctx)) sends ctx's XID
}

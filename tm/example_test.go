package tm_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/xact-io/xact/tm"
)

// This example needs a TC listening on localhost:8091 (`xact server`).
func ExampleManager_Do() {
	conn, err := grpc.NewClient("localhost:8091", grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer conn.Close()
	m := tm.New(conn)

	err = m.Do(context.Background(), tm.Options{Name: "transfer", Timeout: 30 * time.Second}, func(ctx context.Context) error {
		xid, _ := tm.XID(ctx)
		fmt.Println("in global transaction", xid)
		return nil // commit
	})
	switch {
	case err == nil:
		fmt.Println("committed")
	case errors.Is(err, tm.ErrRolledBack):
		fmt.Println("rolled back:", err)
	case errors.Is(err, tm.ErrUnknownOutcome):
		fmt.Println("outcome unknown, check later:", err)
	default:
		fmt.Println("failed, rolled back:", err)
	}
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

// Command postgres starts and stops a private PostgreSQL server for a test
// run.
//
//	postgres start --dir D [--port N] [--port-file F] [--durable]
//	postgres stop  --dir D
//
// start initialises D if needed (initdb), starts postgres on 127.0.0.1 (a
// free port unless --port is given) in its own session so that it outlives
// this command, waits until it accepts connections, writes the port to F
// if given, and prints the URL of the database postgres for the superuser
// postgres to standard output. If a server started from D is already
// running, start prints its URL again. stop shuts down the server started
// from D. Run as root, the server runs as the user postgres (see pgtest).
// scripts/test.sh uses it like this:
//
//	export XACT_TEST_POSTGRES_DSN=$(go run ./internal/pgtest/cmd/postgres start --dir $(mktemp -d))
//	go test ./...
//	go run ./internal/pgtest/cmd/postgres stop --dir ...
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"time"

	"github.com/xact-io/xact/internal/pgtest"
)

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "postgres:", err)
		os.Exit(1)
	}
}

const usage = "usage: postgres start --dir D [--port N] [--port-file F] [--durable] | postgres stop --dir D"

func run(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return fmt.Errorf("%s", usage)
	}
	fs := flag.NewFlagSet(args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("dir", "", "directory for the server's data, socket and log (required)")
	switch args[0] {
	case "start":
		port := fs.Int("port", 0, "TCP port on 127.0.0.1 (0 picks a free one)")
		portFile := fs.String("port-file", "", "file to write the port to")
		durable := fs.Bool("durable", false, "make every commit wait for its WAL flush (synchronous_commit=on)")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		if *dir == "" {
			return fmt.Errorf("start: --dir is required\n%s", usage)
		}
		srv, err := pgtest.Attach(*dir)
		if err != nil {
			ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt)
			defer cancel()
			srv, err = pgtest.Start(ctx, pgtest.Options{Dir: *dir, Port: *port, Detach: true, Durable: *durable})
			if err != nil {
				return err
			}
		}
		if *portFile != "" {
			if err := os.WriteFile(*portFile, []byte(strconv.Itoa(srv.Port())+"\n"), 0o644); err != nil {
				return err
			}
		}
		_, err = fmt.Fprintln(stdout, srv.DSN())
		return err
	case "stop":
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		if *dir == "" {
			return fmt.Errorf("stop: --dir is required\n%s", usage)
		}
		return pgtest.StopDetached(*dir, 30*time.Second)
	default:
		return fmt.Errorf("unknown command %q\n%s", args[0], usage)
	}
}

// Command mariadb starts and stops a private MariaDB server for a test run.
//
//	mariadb start --dir D [--port N] [--port-file F] [--durable]
//	mariadb stop  --dir D
//
// start initialises D if needed, starts mariadbd on 127.0.0.1 (a free port
// unless --port is given) in its own session so that it outlives this
// command, waits until it accepts connections, writes the port to F if
// given, and prints the DSN for root to standard output. If a server
// started from D is already running, start prints its DSN again. stop shuts
// down the server started from D. The Makefile uses it like this:
//
//	export XACT_TEST_MYSQL_DSN=$(go run ./internal/mysqltest/cmd/mariadb start --dir $(TMPDIR)/xact-mariadb)
//	go test ./...
//	go run ./internal/mysqltest/cmd/mariadb stop --dir $(TMPDIR)/xact-mariadb
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

	"github.com/xact-io/xact/internal/mysqltest"
)

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "mariadb:", err)
		os.Exit(1)
	}
}

const usage = "usage: mariadb start --dir D [--port N] [--port-file F] [--durable] | mariadb stop --dir D"

func run(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return fmt.Errorf("%s", usage)
	}
	fs := flag.NewFlagSet(args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("dir", "", "directory for the server's data, logs and pid file (required)")
	switch args[0] {
	case "start":
		port := fs.Int("port", 0, "TCP port on 127.0.0.1 (0 picks a free one)")
		portFile := fs.String("port-file", "", "file to write the port to")
		durable := fs.Bool("durable", false, "flush InnoDB's log at every commit")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		if *dir == "" {
			return fmt.Errorf("start: --dir is required\n%s", usage)
		}
		srv, err := mysqltest.Attach(*dir)
		if err != nil {
			ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt)
			defer cancel()
			srv, err = mysqltest.Start(ctx, mysqltest.Options{Dir: *dir, Port: *port, Detach: true, Durable: *durable})
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
		return mysqltest.StopDetached(*dir, 30*time.Second)
	default:
		return fmt.Errorf("unknown command %q\n%s", args[0], usage)
	}
}

// Command xact is the xact binary: the coordinator (`xact server`), the
// operator's client (`xact tx ...`, `xact lock ...`), the load generator
// (`xact bench`) and the DDL printer (`xact sql ...`).
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

const usage = `xact: a distributed transaction coordinator.

Usage:
  xact server [flags]                 run the coordinator (xact server --help)
  xact tx list [--status S] [--parked] [--json]
  xact tx show XID [--json]           global, branches, locks and retry history
  xact tx commit XID                  resume or force the commit of a transaction
  xact tx rollback XID                resume or force the rollback of a transaction
  xact lock list [--xid XID] [--json]
  xact bench [flags]                  load generator (xact bench --help)
  xact sql undo-log|tcc-fence         print the DDL of a participant table
  xact store verify|backup|restore    check, back up and restore the data directory (xact store help)

Client commands take --server ADDR (default 127.0.0.1:8091) and --token.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// run executes one command line and returns the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	var err error
	switch args[0] {
	case "server":
		err = serverCmd(ctx, args[1:], stdout, stderr)
	case "tx":
		err = txCmd(ctx, args[1:], stdout)
	case "lock":
		err = lockCmd(ctx, args[1:], stdout)
	case "bench":
		err = benchCmd(ctx, args[1:], stdout)
	case "sql":
		err = sqlCmd(args[1:], stdout)
	case "store":
		err = storeCmd(ctx, args[1:], stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "xact: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
	if err != nil {
		switch err {
		case errHelp:
			return 0
		case errUsage:
			return 2
		}
		fmt.Fprintf(stderr, "xact %s: %v\n", args[0], err)
		return 1
	}
	return 0
}

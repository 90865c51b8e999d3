// Command xact is the xact binary: the coordinator (`xact server`), the
// operator's client (`xact tx ...`, `xact lock ...`), the load generator
// (`xact bench`) and the DDL printer (`xact sql ...`).
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

const usage = `xact: a distributed transaction coordinator.

Usage:
  xact server [flags]                 run the coordinator (xact server --help)
  xact tx list [--status S] [--parked] [--limit N]
                                      unfinished transactions (parked ones show a reason)
  xact tx show XID                    global, branches, locks and retry history
  xact tx commit XID                  resume or force the commit of a transaction
  xact tx rollback XID                resume or force the rollback of a transaction
  xact lock list [--xid XID] [--limit N]
                                      row locks held
  xact bench [flags]                  load generator (xact bench --help)
  xact sql undo-log|tcc-fence         print the DDL of a participant table
  xact store verify|backup|restore    check, back up and restore the data directory (xact store help)
  xact cluster status --store S --store-dsn DSN
                                      the coordinators sharing a database, their leases and what each drives
  xact version                        print the version of this binary

Client commands (tx, lock, bench, and store backup --server) take:
  --server ADDR   the coordinator's host:port (default 127.0.0.1:8091)
  --token TOKEN   the bearer token the coordinator requires: for tx, lock and
                  store backup the operators' (xact server --operator-token, or
                  its --token when it has none), for bench the participants'
                  (xact server --token)
  --json          print JSON instead of tables (tx, lock, bench)
  --tls           connect with TLS, trusting the system's CAs
  --tls-ca FILE   connect with TLS, trusting the CA certificates in FILE
  --tls-cert FILE --tls-key FILE
                  present a client certificate (xact server --client-ca)
  --tls-server-name NAME
                  the name the coordinator's certificate must hold, if not
                  the host of --server

Every flag can also be set in the environment as XACT_<FLAG>, dashes as
underscores: XACT_SERVER, XACT_TOKEN, XACT_TLS_CA, XACT_JSON, XACT_DATA_DIR,
... A flag on the command line wins. Give tokens in the environment, not on
the command line, where ps shows them: XACT_TOKEN for the clients,
XACT_TOKEN and XACT_OPERATOR_TOKEN (or --config) for xact server.
Add --help to any command for its flags.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// run executes one command line and returns the exit code: 0 for success
// and for help, 2 for a command line that is wrong as written, 1 for any
// other failure.
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
		err = sqlCmd(ctx, args[1:], stdout)
	case "store":
		err = storeCmd(ctx, args[1:], stdout, stderr)
	case "cluster":
		err = clusterCmd(ctx, args[1:], stdout)
	case "version", "--version", "-version":
		err = versionCmd(args[1:], stdout)
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "xact: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
	var ue *usageError
	switch {
	case err == nil:
		return 0
	case errors.Is(err, errHelp):
		return 0
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "%s: %v\nRun '%s --help' for usage.\n", ue.cmd, err, ue.cmd)
		return 2
	}
	fmt.Fprintf(stderr, "xact %s: %v\n", args[0], err)
	return 1
}

// isHelp reports whether arg asks for help.
func isHelp(arg string) bool {
	switch arg {
	case "help", "-h", "-help", "--help":
		return true
	}
	return false
}

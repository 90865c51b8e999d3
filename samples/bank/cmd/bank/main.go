// Command bank is the bank sample's client: it asks the API service for
// transfers and reports.
//
//	bank transfer [--api ADDR] --mode at|tcc|saga --from alice --to bob --amount 30 [--fail] [--hold 2s] [--want committed|rolled-back|unknown]
//	bank report   [--api ADDR]
//
// transfer prints one line, "XID OUTCOME [REASON]". It exits with status 0
// if the outcome is the one --want names (by default: committed), and 1
// otherwise.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/xact-io/xact/samples/bank/bankpb"
)

const usage = `usage:
  bank transfer [--api ADDR] --mode at|tcc|saga --from A --to B --amount N [--fail] [--hold D] [--want OUTCOME]
  bank report   [--api ADDR]`

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "bank:", err)
		os.Exit(1)
	}
}

func run(args []string, out io.Writer) error {
	if len(args) == 0 {
		return errors.New(usage)
	}
	fs := flag.NewFlagSet("bank "+args[0], flag.ContinueOnError)
	addr := fs.String("api", "127.0.0.1:9100", "API service `address`")
	switch args[0] {
	case "transfer":
		mode := fs.String("mode", "at", "at, tcc or saga")
		from := fs.String("from", "alice", "account to debit")
		to := fs.String("to", "bob", "account to credit")
		amount := fs.Int64("amount", 0, "amount to move")
		fail := fs.Bool("fail", false, "make the API fail after every participant did its work (the transfer rolls back)")
		hold := fs.Duration("hold", 0, "keep the global transaction open this long before it is decided (look at it with xact tx show)")
		want := fs.String("want", "committed", "expected `outcome`: committed, rolled-back or unknown")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		m, ok := bankpb.Mode_value["MODE_"+strings.ToUpper(*mode)]
		if !ok || m == 0 {
			return fmt.Errorf("unknown mode %q (want at, tcc or saga)", *mode)
		}
		wantOutcome, ok := outcomes[*want]
		if !ok {
			return fmt.Errorf("unknown outcome %q (want committed, rolled-back or unknown)", *want)
		}
		return withClient(*addr, func(ctx context.Context, c bankpb.BankClient) error {
			resp, err := c.Transfer(ctx, &bankpb.TransferRequest{
				From: *from, To: *to, Amount: *amount, Mode: bankpb.Mode(m),
				Fail: *fail, HoldMs: hold.Milliseconds(),
			})
			if err != nil {
				return err
			}
			got := outcomeName(resp.GetOutcome())
			fmt.Fprintf(out, "%s %s %s\n", resp.GetXid(), got, resp.GetReason())
			if resp.GetOutcome() != wantOutcome {
				return fmt.Errorf("transfer %s: outcome %s, want %s", resp.GetXid(), got, *want)
			}
			return nil
		})
	case "report":
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		return withClient(*addr, func(ctx context.Context, c bankpb.BankClient) error {
			resp, err := c.Report(ctx, &bankpb.ReportRequest{})
			if err != nil {
				return err
			}
			return printReport(out, resp)
		})
	}
	return fmt.Errorf("unknown command %q\n%s", args[0], usage)
}

var outcomes = map[string]bankpb.Outcome{
	"committed":   bankpb.Outcome_OUTCOME_COMMITTED,
	"rolled-back": bankpb.Outcome_OUTCOME_ROLLED_BACK,
	"unknown":     bankpb.Outcome_OUTCOME_UNKNOWN,
}

func outcomeName(o bankpb.Outcome) string {
	for name, v := range outcomes {
		if v == o {
			return name
		}
	}
	return o.String()
}

// withClient calls f with a client of the API service at addr. The client
// needs no xact interceptor: Transfer begins its own global transaction.
func withClient(addr string, f func(context.Context, bankpb.BankClient) error) error {
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	return f(ctx, bankpb.NewBankClient(conn))
}

func printReport(out io.Writer, r *bankpb.ReportResponse) error {
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ACCOUNT\tBALANCE")
	for _, a := range r.GetAccounts() {
		fmt.Fprintf(tw, "%s\t%d\n", a.GetId(), a.GetBalance())
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(out)
	if len(r.GetEntries()) == 0 {
		_, err := fmt.Fprintln(out, "(no ledger entries)")
		return err
	}
	fmt.Fprintln(tw, "ENTRY\tMODE\tFROM\tTO\tAMOUNT\tSTATE\tXID")
	for _, e := range r.GetEntries() {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%d\t%s\t%s\n", e.GetId(), e.GetMode(), e.GetFrom(), e.GetTo(), e.GetAmount(), e.GetState(), e.GetXid())
	}
	return tw.Flush()
}

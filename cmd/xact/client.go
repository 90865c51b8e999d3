package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/xact-io/xact/protocol"
	"github.com/xact-io/xact/protocol/xactpb"
)

// clientFlags are the flags every client command takes.
type clientFlags struct {
	server string
	token  string
	json   bool
}

func (c *clientFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&c.server, "server", "127.0.0.1:8091", "coordinator `address`")
	fs.StringVar(&c.token, "token", "", "bearer `token` the coordinator requires")
	fs.BoolVar(&c.json, "json", false, "print JSON")
}

type tokenCreds string

func (t tokenCreds) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + string(t)}, nil
}
func (tokenCreds) RequireTransportSecurity() bool { return false }

// dial connects with the settings the TC expects of clients (keepalive,
// reconnect backoff): `xact bench` runs an RM on it.
func (c *clientFlags) dial() (*grpc.ClientConn, error) {
	opts := append(protocol.DialOptions(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if c.token != "" {
		opts = append(opts, grpc.WithPerRPCCredentials(tokenCreds(c.token)))
	}
	return grpc.NewClient(c.server, opts...)
}

func newFlagSet(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(os.Stderr)
	return fs
}

func txCmd(ctx context.Context, args []string, out io.Writer) error {
	if len(args) == 0 {
		return fmt.Errorf("want a subcommand: list, show, commit, rollback")
	}
	var cf clientFlags
	fs := newFlagSet("xact tx " + args[0])
	cf.register(fs)
	statusFlag := fs.String("status", "", "only this status (e.g. COMMIT_RETRYING or 3); comma-separated")
	parked := fs.Bool("parked", false, "only parked transactions")
	limit := fs.Int("limit", 1000, "at most this many")
	pos, err := parseFlags(fs, args[1:])
	if err != nil {
		return err
	}
	conn, err := cf.dial()
	if err != nil {
		return err
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	admin := xactpb.NewAdminClient(conn)
	needXID := func() (string, error) {
		if len(pos) != 1 {
			return "", fmt.Errorf("want exactly one XID")
		}
		return pos[0], nil
	}
	switch args[0] {
	case "list":
		req := &xactpb.ListGlobalsRequest{ParkedOnly: *parked, Limit: int32(*limit)}
		if *statusFlag != "" {
			for _, s := range strings.Split(*statusFlag, ",") {
				st, err := parseStatus(s)
				if err != nil {
					return err
				}
				req.Statuses = append(req.Statuses, st)
			}
		}
		resp, err := admin.ListGlobals(ctx, req)
		if err != nil {
			return protocol.FromStatus(err)
		}
		if cf.json {
			return printJSON(out, resp)
		}
		tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "XID\tNAME\tSTATUS\tPARKED\tATTEMPTS\tBEGAN\tREASON")
		for _, g := range resp.GetGlobals() {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%v\t%d\t%s\t%s\n", g.GetXid(), g.GetName(), statusName(g.GetStatus()),
				g.GetParked(), g.GetAttempts(), fmtMs(g.GetBeginUnixMs()), g.GetReason())
		}
		return tw.Flush()
	case "show":
		xid, err := needXID()
		if err != nil {
			return err
		}
		resp, err := admin.ShowGlobal(ctx, &xactpb.ShowGlobalRequest{Xid: xid})
		if err != nil {
			return protocol.FromStatus(err)
		}
		if cf.json {
			return printJSON(out, resp)
		}
		return printShow(out, resp)
	case "commit", "rollback":
		xid, err := needXID()
		if err != nil {
			return err
		}
		var resp *xactpb.ForceResponse
		if args[0] == "commit" {
			resp, err = admin.ForceCommit(ctx, &xactpb.ForceRequest{Xid: xid})
		} else {
			resp, err = admin.ForceRollback(ctx, &xactpb.ForceRequest{Xid: xid})
		}
		if err != nil {
			return protocol.FromStatus(err)
		}
		if cf.json {
			return printJSON(out, resp)
		}
		fmt.Fprintf(out, "%s %s\n", xid, statusName(resp.GetStatus()))
		return nil
	}
	return fmt.Errorf("unknown subcommand %q (want list, show, commit, rollback)", args[0])
}

func lockCmd(ctx context.Context, args []string, out io.Writer) error {
	if len(args) == 0 || args[0] != "list" {
		return fmt.Errorf("want: xact lock list [--xid XID]")
	}
	var cf clientFlags
	fs := newFlagSet("xact lock list")
	cf.register(fs)
	xid := fs.String("xid", "", "only locks of this global transaction")
	limit := fs.Int("limit", 10000, "at most this many")
	if pos, err := parseFlags(fs, args[1:]); err != nil {
		return err
	} else if len(pos) > 0 {
		return fmt.Errorf("unexpected argument %q", pos[0])
	}
	conn, err := cf.dial()
	if err != nil {
		return err
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	resp, err := xactpb.NewAdminClient(conn).ListLocks(ctx, &xactpb.ListLocksRequest{Xid: *xid, Limit: int32(*limit)})
	if err != nil {
		return protocol.FromStatus(err)
	}
	if cf.json {
		return printJSON(out, resp)
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "RESOURCE\tKEY\tXID\tBRANCH")
	for _, l := range resp.GetLocks() {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\n", l.GetResourceId(), l.GetKey(), l.GetXid(), l.GetBranchId())
	}
	return tw.Flush()
}

func printShow(out io.Writer, r *xactpb.ShowGlobalResponse) error {
	g := r.GetGlobal()
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "XID:\t%s\n", g.GetXid())
	fmt.Fprintf(tw, "Name:\t%s\n", g.GetName())
	fmt.Fprintf(tw, "Status:\t%s\n", statusName(g.GetStatus()))
	fmt.Fprintf(tw, "Parked:\t%v\n", g.GetParked())
	if g.GetReason() != "" {
		fmt.Fprintf(tw, "Reason:\t%s\n", g.GetReason())
	}
	if g.GetBeginUnixMs() != 0 {
		fmt.Fprintf(tw, "Began:\t%s (timeout %v)\n", fmtMs(g.GetBeginUnixMs()), time.Duration(g.GetTimeoutMs())*time.Millisecond)
	}
	if g.GetAttempts() > 0 {
		fmt.Fprintf(tw, "Attempts:\t%d (next %s)\n", g.GetAttempts(), fmtMs(g.GetNextActionUnixMs()))
	}
	tw.Flush()
	if len(r.GetBranches()) > 0 {
		fmt.Fprintln(out, "\nBranches:")
		tw = tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "  ID\tRESOURCE\tMODE\tSTATUS\tLOCKS\tATTEMPTS\tREASON")
		for _, b := range r.GetBranches() {
			fmt.Fprintf(tw, "  %d\t%s\t%s\t%s\t%d\t%d\t%s\n", b.GetBranchId(), b.GetResourceId(),
				strings.TrimPrefix(b.GetBranchType().String(), "BRANCH_TYPE_"),
				strings.TrimPrefix(b.GetStatus().String(), "BRANCH_STATUS_"), len(b.GetLockKeys()), b.GetAttempts(), b.GetReason())
		}
		tw.Flush()
	}
	if len(r.GetLocks()) > 0 {
		fmt.Fprintln(out, "\nLocks:")
		for _, l := range r.GetLocks() {
			fmt.Fprintf(out, "  %s %s (branch %d)\n", l.GetResourceId(), l.GetKey(), l.GetBranchId())
		}
	}
	if len(g.GetHistory()) > 0 {
		fmt.Fprintln(out, "\nHistory:")
		for _, e := range g.GetHistory() {
			fmt.Fprintf(out, "  %s  %s\n", fmtMs(e.GetAtUnixMs()), e.GetWhat())
		}
	}
	return nil
}

func printJSON(out io.Writer, m proto.Message) error {
	b, err := protojson.MarshalOptions{Multiline: true, EmitUnpopulated: true}.Marshal(m)
	if err != nil {
		return err
	}
	var v any // re-indent consistently
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	enc := json.NewEncoder(out)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func statusName(s xactpb.GlobalStatus) string {
	return strings.TrimPrefix(s.String(), "GLOBAL_STATUS_")
}

func parseStatus(s string) (xactpb.GlobalStatus, error) {
	s = strings.ToUpper(strings.TrimSpace(s))
	if v, ok := xactpb.GlobalStatus_value["GLOBAL_STATUS_"+s]; ok {
		return xactpb.GlobalStatus(v), nil
	}
	if v, ok := xactpb.GlobalStatus_value[s]; ok {
		return xactpb.GlobalStatus(v), nil
	}
	var n int32
	if _, err := fmt.Sscanf(s, "%d", &n); err == nil {
		if _, ok := xactpb.GlobalStatus_name[n]; ok {
			return xactpb.GlobalStatus(n), nil
		}
	}
	return 0, fmt.Errorf("unknown status %q", s)
}

func fmtMs(ms int64) string {
	if ms == 0 {
		return "-"
	}
	return time.UnixMilli(ms).Local().Format("2006-01-02 15:04:05.000")
}

package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"strings"
	"text/tabwriter"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
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
	// TLS: on with any of these (protocol.ClientTLS).
	tls        bool
	tlsCA      string
	tlsCert    string
	tlsKey     string
	serverName string
}

func (c *clientFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&c.server, "server", "127.0.0.1:8091", "the coordinator's `host:port`, a list of them (tc-a:8091,tc-b:8091: coordinators sharing one store), or a gRPC target with a scheme (dns:///host:port)")
	fs.StringVar(&c.token, "token", "", "the bearer `token` the coordinator requires: the operator token (xact server --operator-token) for tx and lock, the participant token (--token) for bench; better set as XACT_TOKEN, which ps does not show")
	fs.BoolVar(&c.json, "json", false, "print JSON")
	fs.BoolVar(&c.tls, "tls", false, "connect with TLS, trusting the system's CAs (implied by --tls-ca, --tls-cert and --tls-server-name)")
	fs.StringVar(&c.tlsCA, "tls-ca", "", "connect with TLS, trusting the CA certificates in this PEM `file` for the coordinator's certificate")
	fs.StringVar(&c.tlsCert, "tls-cert", "", "with --tls-key: present the client certificate in this PEM `file` (a coordinator run with --client-ca requires one)")
	fs.StringVar(&c.tlsKey, "tls-key", "", "the PEM `file` of the private key of --tls-cert")
	fs.StringVar(&c.serverName, "tls-server-name", "", "the `name` the coordinator's certificate must hold, if not the host of --server")
}

// transport is the dial option of the connection's transport security:
// TLS if any TLS flag is given, else none.
func (c *clientFlags) transport(cmd string) (grpc.DialOption, error) {
	if c.plaintext() {
		return grpc.WithTransportCredentials(insecure.NewCredentials()), nil
	}
	if (c.tlsCert == "") != (c.tlsKey == "") {
		return nil, usagef(cmd, "--tls-cert and --tls-key go together (got --tls-cert %q, --tls-key %q)", c.tlsCert, c.tlsKey)
	}
	opt, err := protocol.ClientTLS(c.tlsCA, c.tlsCert, c.tlsKey, c.serverName)
	if err != nil {
		return nil, err
	}
	return opt, nil
}

// checkServer refuses an address without a port: gRPC would dial port 443
// and wait there, which looks like a coordinator that does not answer. A
// target with a scheme (dns:///, unix:, ...) is gRPC's business.
func checkServer(addr string) error {
	if strings.Contains(addr, ":/") || strings.HasPrefix(addr, "unix:") {
		return nil
	}
	_, port, err := net.SplitHostPort(addr)
	if err != nil || port == "" {
		return fmt.Errorf("--server %q: want host:port, e.g. 127.0.0.1:8091", addr)
	}
	return nil
}

// dial connects with the settings the TC expects of clients (keepalive,
// reconnect backoff): `xact bench` runs an RM on it.
func (c *clientFlags) dial(cmd string, extra ...grpc.DialOption) (*grpc.ClientConn, error) {
	for _, a := range strings.Split(c.server, ",") {
		if err := checkServer(strings.TrimSpace(a)); err != nil {
			return nil, &usageError{cmd: cmd, err: err}
		}
	}
	target, topts, err := protocol.Target(c.server)
	if err != nil {
		return nil, &usageError{cmd: cmd, err: err}
	}
	creds, err := c.credentials(cmd)
	if err != nil {
		return nil, err
	}
	opts := append(append(protocol.DialOptions(), topts...), creds...)
	return grpc.NewClient(target, append(opts, extra...)...)
}

// credentials are the transport and token options of the flags: what an
// RM that follows the coordinators of a cluster (rm.WithDialOptions)
// dials each one with.
func (c *clientFlags) credentials(cmd string) ([]grpc.DialOption, error) {
	transport, err := c.transport(cmd)
	if err != nil {
		return nil, err
	}
	opts := []grpc.DialOption{transport}
	if c.token != "" {
		opts = append(opts, protocol.WithToken(c.token))
	}
	return opts, nil
}

// rpcError turns the error of a call into what the command reports: the
// protocol's sentinel (protocol.FromStatus), with what to do about the
// refusals an operator meets first with a secured coordinator.
func (c *clientFlags) rpcError(err error) error {
	if err == nil {
		return nil
	}
	var hint string
	switch status.Code(err) {
	case codes.PermissionDenied:
		hint = "give the operators' token (xact server --operator-token) as --token or XACT_TOKEN"
	case codes.Unauthenticated:
		hint = "give the token the coordinator requires as --token or XACT_TOKEN"
	case codes.Unavailable:
		// A plaintext client's HTTP/2 preface fails the TLS server's
		// handshake, which closes the connection without an answer the
		// client could show: gRPC says only that no preface came back.
		// (Transport errors have no codes to tell this by.)
		if c.plaintext() && strings.Contains(err.Error(), "server preface") {
			hint = "if the coordinator serves TLS (xact server --tls-cert), give --tls-ca FILE, or --tls for a certificate from a public CA"
		}
	}
	err = protocol.FromStatus(err)
	if hint == "" {
		return err
	}
	return fmt.Errorf("%w\n%s", err, hint)
}

func (c *clientFlags) plaintext() bool {
	return !c.tls && c.tlsCA == "" && c.tlsCert == "" && c.tlsKey == "" && c.serverName == ""
}

const txUsage = `Usage: xact tx list|show|commit|rollback ... [flags]

  xact tx list [--status S] [--parked] [--limit N]
                          unfinished transactions (parked ones show a reason)
  xact tx show XID        global, branches, locks and retry history
  xact tx commit XID      resume or force the commit of a transaction
  xact tx rollback XID    resume or force the rollback of a transaction

Every subcommand takes --server, --token, --json and the TLS flags
--tls-ca, --tls-cert, --tls-key (xact tx list --help).
`

func txCmd(ctx context.Context, args []string, out io.Writer) error {
	if len(args) == 0 {
		return usagef("xact tx", "want a subcommand: list, show, commit, rollback")
	}
	if isHelp(args[0]) {
		fmt.Fprint(out, txUsage)
		return errHelp
	}
	var cf clientFlags
	name := "xact tx " + args[0]
	var fs *flag.FlagSet
	var statusFlag *string
	var parked *bool
	var limit *int
	switch args[0] {
	case "list":
		fs = newFlagSet(name, "[--status S] [--parked] [--limit N] [flags]",
			"Lists the unfinished global transactions; parked ones show why.", out)
		statusFlag = fs.String("status", "", "only these `statuses` (e.g. COMMIT_RETRYING or 3), comma-separated")
		parked = fs.Bool("parked", false, "only parked transactions")
		limit = fs.Int("limit", 1000, "at most this many")
	case "show":
		fs = newFlagSet(name, "XID [flags]", "Shows a global transaction: its branches, locks and retry history.", out)
	case "commit":
		fs = newFlagSet(name, "XID [flags]",
			"Resumes a parked commit, or commits a transaction still in Begin.", out)
	case "rollback":
		fs = newFlagSet(name, "XID [flags]",
			"Resumes a parked rollback, or rolls back a transaction still in Begin.", out)
	default:
		return usagef("xact tx", "unknown subcommand %q (want list, show, commit, rollback)", args[0])
	}
	cf.register(fs)
	pos, err := parseFlags(fs, args[1:])
	if err != nil {
		return err
	}
	var xid string
	if args[0] == "list" {
		if len(pos) > 0 {
			return usagef(name, "unexpected argument %q", pos[0])
		}
	} else {
		if len(pos) != 1 {
			return usagef(name, "want exactly one XID, got %d arguments", len(pos))
		}
		xid = pos[0]
	}
	var req *xactpb.ListGlobalsRequest
	if args[0] == "list" {
		if *limit < 1 {
			return usagef(name, "--limit must be positive, got %d", *limit)
		}
		req = &xactpb.ListGlobalsRequest{ParkedOnly: *parked, Limit: int32(min(*limit, 1<<30))}
		if *statusFlag != "" {
			for _, s := range strings.Split(*statusFlag, ",") {
				st, err := parseStatus(s)
				if err != nil {
					return &usageError{cmd: name, err: fmt.Errorf("--status: %w", err)}
				}
				req.Statuses = append(req.Statuses, st)
			}
		}
	}
	conn, err := cf.dial(name)
	if err != nil {
		return err
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	admin := xactpb.NewAdminClient(conn)
	switch args[0] {
	case "list":
		resp, err := admin.ListGlobals(ctx, req)
		if err != nil {
			return cf.rpcError(err)
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
		resp, err := admin.ShowGlobal(ctx, &xactpb.ShowGlobalRequest{Xid: xid})
		if err != nil {
			return cf.rpcError(err)
		}
		if cf.json {
			return printJSON(out, resp)
		}
		return printShow(out, resp)
	default: // commit, rollback
		var resp *xactpb.ForceResponse
		if args[0] == "commit" {
			resp, err = admin.ForceCommit(ctx, &xactpb.ForceRequest{Xid: xid})
		} else {
			resp, err = admin.ForceRollback(ctx, &xactpb.ForceRequest{Xid: xid})
		}
		if err != nil {
			return cf.rpcError(err)
		}
		if cf.json {
			return printJSON(out, resp)
		}
		fmt.Fprintf(out, "%s %s\n", xid, statusName(resp.GetStatus()))
		return nil
	}
}

const lockUsage = `Usage: xact lock list [--xid XID] [--limit N] [flags]

Lists the row locks held (xact lock list --help for the flags).
`

func lockCmd(ctx context.Context, args []string, out io.Writer) error {
	if len(args) == 0 {
		return usagef("xact lock", "want a subcommand: list")
	}
	if isHelp(args[0]) {
		fmt.Fprint(out, lockUsage)
		return errHelp
	}
	if args[0] != "list" {
		return usagef("xact lock", "unknown subcommand %q (want list)", args[0])
	}
	var cf clientFlags
	fs := newFlagSet("xact lock list", "[--xid XID] [--limit N] [flags]", "Lists the row locks held, by resource and key.", out)
	cf.register(fs)
	xid := fs.String("xid", "", "only locks of this global transaction")
	limit := fs.Int("limit", 10000, "at most this many")
	if pos, err := parseFlags(fs, args[1:]); err != nil {
		return err
	} else if len(pos) > 0 {
		return usagef(fs.Name(), "unexpected argument %q", pos[0])
	}
	if *limit < 1 {
		return usagef(fs.Name(), "--limit must be positive, got %d", *limit)
	}
	conn, err := cf.dial(fs.Name())
	if err != nil {
		return err
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	resp, err := xactpb.NewAdminClient(conn).ListLocks(ctx, &xactpb.ListLocksRequest{Xid: *xid, Limit: int32(min(*limit, 1<<30))})
	if err != nil {
		return cf.rpcError(err)
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

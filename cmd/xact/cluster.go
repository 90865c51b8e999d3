package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/xact-io/xact/storage/shareddb"
)

const clusterUsage = `Usage: xact cluster status --store mysql|postgres --store-dsn DSN [--json]

The coordinators that share the database DSN names: each node's id,
epoch, whether its lease is live and for how long, its address, and how
many decided, unfinished global transactions it drives. It reads the
database, so it works while coordinators are down.
`

type clusterNode struct {
	ID         string    `json:"id"`
	Epoch      int64     `json:"epoch"`
	Live       bool      `json:"live"`
	LeaseUntil time.Time `json:"leaseUntil"`
	Addr       string    `json:"addr"`
	Drives     int       `json:"drives"`
}

func clusterCmd(ctx context.Context, args []string, out io.Writer) error {
	if len(args) == 0 || isHelp(args[0]) {
		fmt.Fprint(out, clusterUsage)
		if len(args) == 0 {
			return usagef("xact cluster", "want: status")
		}
		return errHelp
	}
	if args[0] != "status" {
		return usagef("xact cluster", "unknown subcommand %q (want status)", args[0])
	}
	fs := flag.NewFlagSet("xact cluster status", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	store := fs.String("store", "", "mysql (MySQL, MariaDB, TiDB) or postgres")
	dsn := fs.String("store-dsn", "", "the shared database's `DSN`")
	asJSON := fs.Bool("json", false, "print JSON")
	if pos, err := parseFlags(fs, args[1:]); err != nil {
		return err
	} else if len(pos) > 0 {
		return usagef(fs.Name(), "unexpected argument %q", pos[0])
	}
	if *store != string(shareddb.MySQL) && *store != string(shareddb.Postgres) {
		return usagef(fs.Name(), "--store %q: want mysql or postgres", *store)
	}
	if *dsn == "" {
		return usagef(fs.Name(), "--store-dsn is required")
	}
	s, err := shareddb.Open(ctx, shareddb.Dialect(*store), *dsn)
	if err != nil {
		return err
	}
	defer s.Close()
	nodes, err := s.Nodes(ctx)
	if err != nil {
		return err
	}
	owned, err := s.Owned(ctx)
	if err != nil {
		return err
	}
	list := make([]clusterNode, len(nodes))
	for i, n := range nodes {
		list[i] = clusterNode{ID: n.ID, Epoch: n.Epoch, Live: n.Live, LeaseUntil: n.LeaseUntil, Addr: n.Addr, Drives: owned[n.ID]}
	}
	if *asJSON {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(struct {
			Nodes     []clusterNode `json:"nodes"`
			Undecided int           `json:"unowned"`
		}{list, owned[""]})
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tEPOCH\tLIVE\tLEASE UNTIL\tADDR\tDRIVES")
	for _, n := range list {
		fmt.Fprintf(tw, "%s\t%d\t%v\t%s\t%s\t%d\n", n.ID, n.Epoch, n.Live, n.LeaseUntil.Format(time.RFC3339Nano), n.Addr, n.Drives)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err = fmt.Fprintf(out, "%d decided globals without an owner\n", owned[""])
	return err
}

package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/xact-io/xact/rm/fence"
	"github.com/xact-io/xact/storage/shareddb"
	"github.com/xact-io/xact/undo"
)

const sqlUsage = `Usage: xact sql undo-log|tcc-fence
       xact sql coordinator-schema --dialect mysql|postgres
       xact sql migrate --store mysql|postgres --store-dsn DSN

Prints the DDL of a table a participant database needs:
  undo-log    the undo_log table of AT mode
  tcc-fence   the fence table of TCC mode

  xact sql undo-log | mariadb mydb

The coordinator's own schema on a shared database (xact server --store
mysql|postgres) is versioned:
  coordinator-schema  prints its DDL (to review, or to apply by hand)
  migrate             creates it, or upgrades it, in the database DSN names;
                      safe to run again; refuses a schema newer than this xact
`

func sqlCmd(ctx context.Context, args []string, out io.Writer) error {
	if len(args) > 0 && isHelp(args[0]) {
		fmt.Fprint(out, sqlUsage)
		return errHelp
	}
	if len(args) > 0 && args[0] == "coordinator-schema" {
		return coordinatorSchemaCmd(args[1:], out)
	}
	if len(args) > 0 && args[0] == "migrate" {
		return migrateCmd(ctx, args[1:], out)
	}
	if len(args) != 1 {
		return usagef("xact sql", "want one of: undo-log, tcc-fence, coordinator-schema, migrate")
	}
	ddl, ok := participantDDL[args[0]]
	if !ok {
		return usagef("xact sql", "unknown table %q (want undo-log or tcc-fence)", args[0])
	}
	// Every statement ends with ";" so that the outputs can be piped into a
	// client one after another.
	_, err := fmt.Fprintln(out, strings.TrimRight(ddl, "; \n")+";")
	return err
}

// participantDDL holds the tables a participant database needs per mode.
var participantDDL = map[string]string{
	"undo-log":  undo.LogTableDDL,
	"tcc-fence": fence.DDL,
}

// coordinatorSchemaCmd prints the shared-database coordinator schema.
func coordinatorSchemaCmd(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("xact sql coordinator-schema", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	dialect := fs.String("dialect", "", "mysql (MySQL, MariaDB, TiDB) or postgres")
	if pos, err := parseFlags(fs, args); err != nil {
		return err
	} else if len(pos) > 0 {
		return usagef(fs.Name(), "unexpected argument %q", pos[0])
	}
	ddl, err := shareddb.Schema(shareddb.Dialect(*dialect))
	if err != nil {
		return usagef(fs.Name(), "--dialect %q: want mysql or postgres", *dialect)
	}
	_, err = fmt.Fprint(out, ddl)
	return err
}

// migrateCmd creates or upgrades the coordinator schema.
func migrateCmd(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("xact sql migrate", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	store := fs.String("store", "", "mysql (MySQL, MariaDB, TiDB) or postgres")
	dsn := fs.String("store-dsn", "", "the database's `DSN`")
	if pos, err := parseFlags(fs, args); err != nil {
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
	from, to, err := shareddb.Migrate(ctx, shareddb.Dialect(*store), *dsn)
	if err != nil {
		return err
	}
	if from == to {
		_, err = fmt.Fprintf(out, "coordinator schema at version %d: nothing to do\n", to)
	} else {
		_, err = fmt.Fprintf(out, "coordinator schema migrated from version %d to %d\n", from, to)
	}
	return err
}

package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/xact-io/xact/rm/fence"
	"github.com/xact-io/xact/undo"
)

const sqlUsage = `Usage: xact sql undo-log|tcc-fence

Prints the DDL of a table a participant database needs:
  undo-log    the undo_log table of AT mode
  tcc-fence   the fence table of TCC mode

  xact sql undo-log | mariadb mydb
`

func sqlCmd(args []string, out io.Writer) error {
	if len(args) > 0 && isHelp(args[0]) {
		fmt.Fprint(out, sqlUsage)
		return errHelp
	}
	if len(args) != 1 {
		return usagef("xact sql", "want one of: undo-log, tcc-fence")
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

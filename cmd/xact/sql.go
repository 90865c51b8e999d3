package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/xact-io/xact/rm/tcc"
	"github.com/xact-io/xact/undo"
)

func sqlCmd(args []string, out io.Writer) error {
	if len(args) != 1 {
		return fmt.Errorf("want one of: undo-log, tcc-fence")
	}
	ddl, ok := participantDDL[args[0]]
	if !ok {
		return fmt.Errorf("unknown table %q (want undo-log or tcc-fence)", args[0])
	}
	// Every statement ends with ";" so that the outputs can be piped into a
	// client one after another.
	_, err := fmt.Fprintln(out, strings.TrimRight(ddl, "; \n")+";")
	return err
}

// participantDDL holds the tables a participant database needs per mode.
var participantDDL = map[string]string{
	"undo-log":  undo.LogTableDDL,
	"tcc-fence": tcc.FenceDDL,
}

package main

import (
	"fmt"
	"io"
)

func sqlCmd(args []string, out io.Writer) error {
	if len(args) != 1 {
		return fmt.Errorf("want one of: undo-log, tcc-fence")
	}
	ddl, ok := participantDDL[args[0]]
	if !ok {
		return fmt.Errorf("unknown table %q (want undo-log or tcc-fence)", args[0])
	}
	_, err := fmt.Fprintln(out, ddl)
	return err
}

// participantDDL is filled by the files of the modes that ship a table.
var participantDDL = map[string]string{}

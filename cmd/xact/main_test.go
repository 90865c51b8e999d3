package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

func TestRunExitCodes(t *testing.T) {
	tests := []struct {
		args []string
		want int
		out  string
	}{
		{nil, 2, "Usage"},
		{[]string{"help"}, 0, "xact server"},
		{[]string{"nope"}, 2, "unknown command"},
		{[]string{"server", "--help"}, 0, "XACT_<FLAG>"},
		{[]string{"server", "--no-such-flag"}, 2, ""},
		{[]string{"server", "--store", "paper"}, 2, "want badger, mysql, postgres or memory"},
		{[]string{"sql", "undo-log"}, 0, "CREATE TABLE"},
		{[]string{"sql", "tcc-fence"}, 0, "tcc_fence_log"},
		{[]string{"sql", "nope"}, 2, "unknown table"},
		{[]string{"tx"}, 2, "subcommand"},
		{[]string{"tx", "show", "--server", "127.0.0.1:1"}, 2, "exactly one XID"},
	}
	for _, tt := range tests {
		var stdout, stderr bytes.Buffer
		got := run(context.Background(), tt.args, &stdout, &stderr)
		all := stdout.String() + stderr.String()
		if got != tt.want || !strings.Contains(all, tt.out) {
			t.Errorf("xact %v = %d, output %q; want %d and output containing %q", tt.args, got, all, tt.want, tt.out)
		}
	}
}

package datasource

import (
	"context"
	"errors"
	"strings"
	"testing"
)

// TestPingChecksUndoLogTable: Ping finds a missing or unusable undo_log
// table at once, naming the fix, instead of the first global commit.
func TestPingChecksUndoLogTable(t *testing.T) {
	e := newEnv(t)
	tests := []struct {
		name  string
		setup []string
		want  string // "" for a usable table
	}{
		{"usable", nil, ""},
		{"missing", []string{"DROP TABLE undo_log"}, "1146"},
		{"column missing", []string{"ALTER TABLE undo_log DROP COLUMN log_modified"}, "1054"},
		{"no unique key", []string{"ALTER TABLE undo_log DROP PRIMARY KEY"}, "no unique key"},
		{"unique key elsewhere", []string{"ALTER TABLE undo_log DROP PRIMARY KEY", "ALTER TABLE undo_log ADD UNIQUE KEY (xid)"}, "no unique key"},
		{"prefix key", []string{"ALTER TABLE undo_log DROP PRIMARY KEY", "ALTER TABLE undo_log ADD UNIQUE KEY (xid(10), branch_id)"}, "no unique key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := e.newDB(t, nil)
			d.exec(tt.setup...)
			err := d.db.PingContext(context.Background())
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Ping = %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, ErrUndoLogTable) || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "xact sql undo-log") {
				t.Fatalf("Ping = %v, want ErrUndoLogTable naming %q and the fix", err, tt.want)
			}
		})
	}
}

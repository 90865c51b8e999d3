package errno

import (
	"errors"
	"fmt"
	"testing"

	"github.com/go-sql-driver/mysql"
)

func TestOf(t *testing.T) {
	dup := &mysql.MySQLError{Number: DupEntry, Message: "Duplicate entry"}
	for _, tt := range []struct {
		err  error
		want uint16
	}{
		{nil, 0},
		{errors.New("not from the server"), 0},
		{dup, DupEntry},
		{fmt.Errorf("insert: %w", dup), DupEntry},
	} {
		if got := Of(tt.err); got != tt.want {
			t.Errorf("Of(%v) = %d, want %d", tt.err, got, tt.want)
		}
	}
}

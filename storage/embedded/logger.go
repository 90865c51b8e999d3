package embedded

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	bdb "github.com/dgraph-io/badger/v4"
)

// slogAdapter is Badger's Logger on top of slog.
type slogAdapter struct{ l *slog.Logger }

var _ bdb.Logger = slogAdapter{}

func (a slogAdapter) log(level slog.Level, format string, args []any) {
	if !a.l.Enabled(context.Background(), level) {
		return
	}
	a.l.Log(context.Background(), level, strings.TrimSpace(fmt.Sprintf(format, args...)))
}

func (a slogAdapter) Errorf(format string, args ...any)   { a.log(slog.LevelError, format, args) }
func (a slogAdapter) Warningf(format string, args ...any) { a.log(slog.LevelWarn, format, args) }

// Infof logs at Debug: Badger's informational messages (tables opened,
// timestamps set, files replayed) are about its internals, several per
// start.
func (a slogAdapter) Infof(format string, args ...any)  { a.log(slog.LevelDebug, format, args) }
func (a slogAdapter) Debugf(format string, args ...any) { a.log(slog.LevelDebug, format, args) }

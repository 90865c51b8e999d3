package mysqldialect

import (
	"errors"
	"fmt"
)

// Errors returned by this package.
var (
	// ErrUnsupported reports a statement that AT mode cannot compensate,
	// refused before it runs. The wrapping error names the reason and,
	// where there is one, the fix.
	ErrUnsupported = errors.New("mysql: statement not supported in a global transaction")
	// ErrTableNotFound reports a table that information_schema does not
	// know in the connection's database (temporary tables included).
	ErrTableNotFound = errors.New("mysql: table not found")
	// ErrImageMismatch reports a statement that affected rows its before
	// image did not hold (a concurrent insert under READ COMMITTED, a
	// predicate on NOW() that moved): its undo would be incomplete, so the
	// caller must roll the local transaction back.
	ErrImageMismatch = errors.New("mysql: statement affected rows outside its before image")
)

// unsupported returns an error matching ErrUnsupported with a reason.
func unsupported(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrUnsupported}, args...)...)
}

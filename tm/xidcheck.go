package tm

import (
	"fmt"

	"github.com/xact-io/xact/protocol"
)

// MaxXIDLen is the longest XID the propagation helpers accept from the
// wire (protocol.MaxXIDLen).
const MaxXIDLen = protocol.MaxXIDLen

// ValidateXID reports whether xid can be a global transaction id, by the
// rule the TC applies too (protocol.ValidateXID). The error wraps
// ErrInvalidXID.
func ValidateXID(xid string) error {
	if err := protocol.ValidateXID(xid); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidXID, err)
	}
	return nil
}

// explicitlyWithout reports whether ctx was made by WithoutXID (as opposed
// to never having carried an XID): the propagation helpers then strip an
// XID that a caller put into outgoing metadata or headers by hand.
func explicitlyWithout(ctx interface{ Value(any) any }) bool {
	x, ok := ctx.Value(xidKey{}).(string)
	return ok && x == ""
}

package tm

import (
	"github.com/xact-io/xact/internal/global"
	"github.com/xact-io/xact/protocol"
)

// MaxXIDLen is the longest XID the propagation helpers accept from the
// wire (protocol.MaxXIDLen).
const MaxXIDLen = protocol.MaxXIDLen

// ValidateXID reports whether xid can be a global transaction id, by the
// rule the TC applies too (protocol.ValidateXID). The error wraps
// ErrInvalidXID.
func ValidateXID(xid string) error {
	return global.ValidateXID(xid)
}

package tm

import "fmt"

// MaxXIDLen is the longest XID the propagation helpers accept from the
// wire. XIDs are opaque strings made by the TC; they are short (a node id
// and a sequence number), so anything longer is garbage or an attack.
const MaxXIDLen = 128

// ValidateXID reports whether xid can be a global transaction id: not
// empty, at most MaxXIDLen bytes, and only printable ASCII without spaces
// (it travels in gRPC metadata and HTTP headers). The error wraps
// ErrInvalidXID.
func ValidateXID(xid string) error {
	if xid == "" {
		return fmt.Errorf("%w: empty", ErrInvalidXID)
	}
	if len(xid) > MaxXIDLen {
		return fmt.Errorf("%w: %d bytes, longer than %d", ErrInvalidXID, len(xid), MaxXIDLen)
	}
	for i := 0; i < len(xid); i++ {
		if c := xid[i]; c <= ' ' || c > '~' {
			return fmt.Errorf("%w: byte 0x%02x at offset %d is not printable ASCII", ErrInvalidXID, c, i)
		}
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

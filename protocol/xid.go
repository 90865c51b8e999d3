package protocol

import "fmt"

// MaxXIDLen is the longest XID anyone accepts. XIDs are opaque strings made
// by the TC; they are short (a node id, a boot stamp and a sequence number).
const MaxXIDLen = 128

// ValidateXID reports whether xid can be a global transaction id: not
// empty, at most MaxXIDLen bytes, and only printable ASCII without spaces
// (it travels in gRPC metadata and HTTP headers). The TC and the clients
// apply this one rule. The error wraps ErrInvalidArgument.
func ValidateXID(xid string) error {
	if xid == "" {
		return fmt.Errorf("%w: empty xid", ErrInvalidArgument)
	}
	if len(xid) > MaxXIDLen {
		return fmt.Errorf("%w: xid of %d bytes, longer than %d", ErrInvalidArgument, len(xid), MaxXIDLen)
	}
	for i := 0; i < len(xid); i++ {
		if c := xid[i]; c <= ' ' || c > '~' {
			return fmt.Errorf("%w: xid byte 0x%02x at offset %d is not printable ASCII", ErrInvalidArgument, c, i)
		}
	}
	return nil
}

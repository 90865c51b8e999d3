package badger

import (
	"encoding/binary"
	"errors"
)

// Keyspaces. Every key starts with one of these bytes; the rest of the key
// is built so that one keyspace's keys never prefix another's entries:
//
//	g <xid>                                    -> global record (live)
//	t <xid>                                    -> tombstone record (global record with Finished set), written with a TTL
//	b <esc xid> <be64 branch id>               -> branch record; a prefix scan yields registration order
//	l <esc resource> <key>                     -> lock holder record (xid, branch id)
//	h <esc xid> <be64 branch id> <esc resource> <key> -> empty: per-global lock index, so release is a prefix scan
//
// The due-time index over NextAt is kept in memory (due.go), rebuilt from
// the globals at Open.
//
// <esc s> is s with every 0x00 byte written as 0x00 0xff, followed by the
// terminator 0x00 0x01. The encoding is prefix-free (no <esc a> is a prefix
// of a different <esc b>), so a (resource, key) pair or an xid prefix scan
// can never collide with another; it also keeps byte order, so locks list
// sorted by resource, then key. A field that ends the key (<xid>, <key>)
// needs no escaping.

const (
	prefixGlobal    byte = 'g'
	prefixTombstone byte = 't'
	prefixBranch    byte = 'b'
	prefixLock      byte = 'l'
	prefixHeld      byte = 'h'
)

var errBadKey = errors.New("malformed key")

func appendEscaped(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if s[i] == 0 {
			dst = append(dst, 0, 0xff)
		} else {
			dst = append(dst, s[i])
		}
	}
	return append(dst, 0, 1)
}

// consumeEscaped decodes an escaped string at the start of b and returns it
// with the rest of b.
func consumeEscaped(b []byte) (string, []byte, error) {
	var out []byte
	for i := 0; i < len(b); i++ {
		if b[i] != 0 {
			continue
		}
		if i+1 >= len(b) {
			return "", nil, errBadKey
		}
		switch b[i+1] {
		case 1:
			out = append(out, b[:i]...)
			return string(out), b[i+2:], nil
		case 0xff:
			out = append(out, b[:i+1]...)
			b = b[i+2:]
			i = -1
		default:
			return "", nil, errBadKey
		}
	}
	return "", nil, errBadKey
}

func globalKey(xid string) []byte {
	return append([]byte{prefixGlobal}, xid...)
}

func tombstoneKey(xid string) []byte {
	return append([]byte{prefixTombstone}, xid...)
}

func branchPrefix(xid string) []byte {
	return appendEscaped([]byte{prefixBranch}, xid)
}

func branchKey(xid string, id int64) []byte {
	return binary.BigEndian.AppendUint64(branchPrefix(xid), uint64(id))
}

func lockKey(resource, key string) []byte {
	b := make([]byte, 0, 1+len(resource)+2+len(key))
	b = appendEscaped(append(b, prefixLock), resource)
	return append(b, key...)
}

func parseLockKey(k []byte) (resource, key string, err error) {
	if len(k) == 0 || k[0] != prefixLock {
		return "", "", errBadKey
	}
	resource, rest, err := consumeEscaped(k[1:])
	if err != nil {
		return "", "", err
	}
	return resource, string(rest), nil
}

func heldPrefix(xid string) []byte {
	return appendEscaped([]byte{prefixHeld}, xid)
}

func heldBranchPrefix(xid string, id int64) []byte {
	return binary.BigEndian.AppendUint64(heldPrefix(xid), uint64(id))
}

func heldKey(xid string, id int64, resource, key string) []byte {
	return append(appendEscaped(heldBranchPrefix(xid, id), resource), key...)
}

// parseHeldKey decodes the part of a held key after heldPrefix(xid).
func parseHeldKey(rest []byte) (id int64, resource, key string, err error) {
	if len(rest) < 8 {
		return 0, "", "", errBadKey
	}
	id = int64(binary.BigEndian.Uint64(rest))
	resource, rest, err = consumeEscaped(rest[8:])
	if err != nil {
		return 0, "", "", err
	}
	return id, resource, string(rest), nil
}

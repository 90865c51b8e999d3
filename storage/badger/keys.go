package badger

import (
	"bytes"
	"encoding/binary"
	"errors"
	"time"
)

// Keyspaces. Every key starts with one of these bytes; the rest of the key
// is built so that one keyspace's keys never prefix another's entries:
//
//	g <xid>                                    -> global record (live)
//	t <xid>                                    -> tombstone record (global record with Finished set), written with a TTL
//	b <esc xid> <be64 branch id>               -> branch record; a prefix scan yields registration order
//	l <esc resource> <key>                     -> lock holder record (xid, branch id)
//	h <esc xid> <be64 branch id> <esc resource> <key> -> empty: per-global lock index, so release is a prefix scan
//	d <time> <xid>                             -> empty: due-time index over NextAt
//
// <esc s> is s with every 0x00 byte written as 0x00 0xff, followed by the
// terminator 0x00 0x01. The encoding is prefix-free (no <esc a> is a prefix
// of a different <esc b>), so a (resource, key) pair or an xid prefix scan
// can never collide with another; it also keeps byte order, so locks list
// sorted by resource, then key. A field that ends the key (<xid>, <key>)
// needs no escaping.
//
// <time> is 12 bytes: the Unix seconds with the sign bit flipped, big
// endian, then the nanoseconds, big endian; it sorts by instant and is
// exact for every time.Time.
const (
	prefixGlobal    byte = 'g'
	prefixTombstone byte = 't'
	prefixBranch    byte = 'b'
	prefixLock      byte = 'l'
	prefixHeld      byte = 'h'
	prefixDue       byte = 'd'
)

const timeKeyLen = 12

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

func appendTimeKey(b []byte, t time.Time) []byte {
	b = binary.BigEndian.AppendUint64(b, uint64(t.Unix())^(1<<63))
	return binary.BigEndian.AppendUint32(b, uint32(t.Nanosecond()))
}

func dueKey(t time.Time, xid string) []byte {
	b := make([]byte, 0, 1+timeKeyLen+len(xid))
	b = appendTimeKey(append(b, prefixDue), t)
	return append(b, xid...)
}

// parseDueKey splits a due key into its time part (comparable with
// appendTimeKey's output) and xid.
func parseDueKey(k []byte) (timePart []byte, xid string, err error) {
	if len(k) < 1+timeKeyLen || k[0] != prefixDue {
		return nil, "", errBadKey
	}
	return k[1 : 1+timeKeyLen], string(k[1+timeKeyLen:]), nil
}

// dueBefore reports whether a due key's time part is not after t's.
func dueBefore(timePart, tKey []byte) bool {
	return bytes.Compare(timePart, tKey) <= 0
}

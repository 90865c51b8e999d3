package embedded

import (
	"encoding/binary"
	"errors"
)

// Keyspaces. Every key starts with one of these bytes; the rest of the key
// is built so that one keyspace's keys never prefix another's entries:
//
//	g <xid>                      -> global record (live)
//	t <xid>                      -> tombstone record (global record with Finished set), written with a TTL
//	b <esc xid> <be64 branch id> -> branch record; a prefix scan yields registration order
//	v                            -> the format version (migrate.go)
//	m                            -> empty: the version mark (store.go, keepVersion)
//
// The due-time index over NextAt is kept in memory (due.go), rebuilt from
// the globals at Open; the coordinator rebuilds its lock table from the
// branches (tc/ledger). Format version 1 also stored the locks:
//
//	l <esc resource> <key>                            -> lock holder record (xid, branch id)
//	h <esc xid> <be64 branch id> <esc resource> <key> -> empty: per-global lock index
//
// Open migrates them to release flags on the branches and deletes them.
//
// <esc s> is s with every 0x00 byte written as 0x00 0xff, followed by the
// terminator 0x00 0x01. The encoding is prefix-free (no <esc a> is a prefix
// of a different <esc b>), so an xid prefix scan never reaches another
// xid's keys; it also keeps byte order. A field that ends the key (<xid>,
// <key>) needs no escaping.

const (
	prefixGlobal    byte = 'g'
	prefixTombstone byte = 't'
	prefixBranch    byte = 'b'
	prefixFormat    byte = 'v'
	prefixMark      byte = 'm'

	// Format version 1 only.
	prefixLegacyLock byte = 'l'
	prefixLegacyHeld byte = 'h'
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

var formatKey = []byte{prefixFormat}

var markKey = []byte{prefixMark}

// parseBranchKey decodes a branch key.
func parseBranchKey(k []byte) (xid string, id int64, err error) {
	if len(k) == 0 || k[0] != prefixBranch {
		return "", 0, errBadKey
	}
	xid, rest, err := consumeEscaped(k[1:])
	if err != nil {
		return "", 0, err
	}
	if len(rest) != 8 {
		return "", 0, errBadKey
	}
	return xid, int64(binary.BigEndian.Uint64(rest)), nil
}

// parseLegacyHeld decodes the global and branch of a format-1 lock-index
// key (the resource and key that follow are not needed).
func parseLegacyHeld(k []byte) (xid string, id int64, err error) {
	if len(k) == 0 || k[0] != prefixLegacyHeld {
		return "", 0, errBadKey
	}
	xid, rest, err := consumeEscaped(k[1:])
	if err != nil {
		return "", 0, err
	}
	if len(rest) < 8 {
		return "", 0, errBadKey
	}
	return xid, int64(binary.BigEndian.Uint64(rest)), nil
}

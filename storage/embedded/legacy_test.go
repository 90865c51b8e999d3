package embedded

import (
	"encoding/binary"

	"google.golang.org/protobuf/encoding/protowire"
)

// Format version 1 kept the lock table on disk. These helpers write its
// keys and values exactly as version 1 did, for the migration tests (the
// store itself only reads parseLegacyHeld and deletes the rest).

func legacyLockKey(resource, key string) []byte {
	return append(appendEscaped([]byte{prefixLegacyLock}, resource), key...)
}

func legacyHeldKey(xid string, id int64, resource, key string) []byte {
	k := binary.BigEndian.AppendUint64(appendEscaped([]byte{prefixLegacyHeld}, xid), uint64(id))
	return append(appendEscaped(k, resource), key...)
}

// encodeLegacyHolder is a version-1 lock row's value:
// message Holder { string xid = 1; int64 branch_id = 2; }.
func encodeLegacyHolder(xid string, branchID int64) []byte {
	b := appendStringField(nil, protowire.Number(1), xid)
	return appendIntField(b, protowire.Number(2), branchID)
}

package embedded

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"math"
	"time"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/xact-io/xact/storage"
)

// Records are protobuf messages written with protowire, not the
// protocol/xactpb messages: those carry times in milliseconds and have no
// place for a tombstone's Finished flag, and the store needs times exact to
// the nanosecond (RegisterBranch compares against Deadline; the due index
// orders by NextAt). Encoding by hand also keeps reflection off the write
// path. The schemas, in .proto terms:
//
//	message Global {
//	  string xid = 1; string name = 2; int32 status = 3;
//	  int64 timeout_ns = 4; Timestamp began_at = 5; Timestamp deadline = 6;
//	  Timestamp next_at = 7; int64 attempts = 8; bool parked = 9;
//	  string reason = 10; Timestamp updated_at = 11; int64 branch_seq = 12;
//	  repeated Event history = 13; bool finished = 14;
//	  bool locks_released = 15;
//	}
//	message Event { Timestamp at = 1; string what = 2; }
//	message Branch {
//	  string xid = 1; int64 id = 2; string resource = 3; int32 type = 4;
//	  int32 status = 5; repeated string lock_keys = 6; bytes app_data = 7;
//	  Timestamp registered_at = 8; string reason = 9; int64 attempts = 10;
//	  bool locks_released = 11;
//	}
//
// locks_released (both) came with format version 2 (see migrate.go); a
// record without it decodes as false, as version 1 wrote them.
//
// Since format version 3 every stored value is *sealed*: the message is
// followed by one more field, `fixed32 crc = 2047`, the CRC-32C
// (Castagnoli) of the record's Badger key followed by the message bytes
// (seal, unseal). The trailer is a well-formed protobuf field, so the
// value is still one message; covering the key as well catches a value
// that ended up under another key. A value without a valid trailer is
// damaged (ErrCorrupt): Badger's own checksums guard its files, not what
// its iterators and caches hand back, nor a table rewritten by a
// compaction from a block it read wrong.
//
// Timestamp has google.protobuf.Timestamp's layout (int64 seconds = 1,
// int32 nanos = 2). A zero time.Time is an absent field, so every time,
// including the Unix epoch, round-trips exactly (location and monotonic
// reading are not kept; decoded times are UTC). Unknown fields are skipped,
// so fields can be added later; a record that does not parse is an error
// wrapping ErrCorrupt, never a panic.

// ErrCorrupt is wrapped by errors reading a record or key that does not
// decode or fails its checksum, and by every other report of damaged data
// (*CorruptError). It is storage.ErrCorrupt.
var ErrCorrupt = storage.ErrCorrupt

const (
	gXID       protowire.Number = 1
	gName      protowire.Number = 2
	gStatus    protowire.Number = 3
	gTimeout   protowire.Number = 4
	gBeganAt   protowire.Number = 5
	gDeadline  protowire.Number = 6
	gNextAt    protowire.Number = 7
	gAttempts  protowire.Number = 8
	gParked    protowire.Number = 9
	gReason    protowire.Number = 10
	gUpdatedAt protowire.Number = 11
	gBranchSeq protowire.Number = 12
	gHistory   protowire.Number = 13
	gFinished  protowire.Number = 14
	gReleased  protowire.Number = 15

	eAt   protowire.Number = 1
	eWhat protowire.Number = 2

	bXID          protowire.Number = 1
	bID           protowire.Number = 2
	bResource     protowire.Number = 3
	bType         protowire.Number = 4
	bStatus       protowire.Number = 5
	bLockKeys     protowire.Number = 6
	bAppData      protowire.Number = 7
	bRegisteredAt protowire.Number = 8
	bReason       protowire.Number = 9
	bAttempts     protowire.Number = 10
	bReleased     protowire.Number = 11

	tsSeconds protowire.Number = 1
	tsNanos   protowire.Number = 2
)

// --- encoding ---

func appendStringField(b []byte, num protowire.Number, s string) []byte {
	if s == "" {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendString(b, s)
}

func appendIntField(b []byte, num protowire.Number, v int64) []byte {
	if v == 0 {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.VarintType)
	return protowire.AppendVarint(b, uint64(v))
}

func appendBoolField(b []byte, num protowire.Number, v bool) []byte {
	if !v {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.VarintType)
	return protowire.AppendVarint(b, 1)
}

func appendTimeField(b []byte, num protowire.Number, t time.Time) []byte {
	if t.IsZero() {
		return b
	}
	var buf [24]byte
	ts := appendIntField(buf[:0], tsSeconds, t.Unix())
	ts = appendIntField(ts, tsNanos, int64(t.Nanosecond()))
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendBytes(b, ts)
}

func encodeGlobal(g *storage.Global) []byte {
	b := make([]byte, 0, 128+len(g.XID)+len(g.Name)+len(g.Reason)+24*len(g.History))
	b = appendStringField(b, gXID, g.XID)
	b = appendStringField(b, gName, g.Name)
	b = appendIntField(b, gStatus, int64(g.Status))
	b = appendIntField(b, gTimeout, int64(g.Timeout))
	b = appendTimeField(b, gBeganAt, g.BeganAt)
	b = appendTimeField(b, gDeadline, g.Deadline)
	b = appendTimeField(b, gNextAt, g.NextAt)
	b = appendIntField(b, gAttempts, int64(g.Attempts))
	b = appendBoolField(b, gParked, g.Parked)
	b = appendStringField(b, gReason, g.Reason)
	b = appendTimeField(b, gUpdatedAt, g.UpdatedAt)
	b = appendIntField(b, gBranchSeq, g.BranchSeq)
	for _, e := range g.History {
		// Always written, even when empty, so the history keeps its length.
		ev := appendTimeField(nil, eAt, e.At)
		ev = appendStringField(ev, eWhat, e.What)
		b = protowire.AppendTag(b, gHistory, protowire.BytesType)
		b = protowire.AppendBytes(b, ev)
	}
	b = appendBoolField(b, gFinished, g.Finished)
	b = appendBoolField(b, gReleased, g.LocksReleased)
	return b
}

func encodeBranch(br *storage.Branch) []byte {
	n := 64 + len(br.XID) + len(br.Resource) + len(br.AppData) + len(br.Reason)
	for _, k := range br.LockKeys {
		n += len(k) + 3
	}
	b := make([]byte, 0, n)
	b = appendStringField(b, bXID, br.XID)
	b = appendIntField(b, bID, br.ID)
	b = appendStringField(b, bResource, br.Resource)
	b = appendIntField(b, bType, int64(br.Type))
	b = appendIntField(b, bStatus, int64(br.Status))
	for _, k := range br.LockKeys {
		// Always written, even when empty: "" is a key like any other.
		b = protowire.AppendTag(b, bLockKeys, protowire.BytesType)
		b = protowire.AppendString(b, k)
	}
	if len(br.AppData) > 0 {
		b = protowire.AppendTag(b, bAppData, protowire.BytesType)
		b = protowire.AppendBytes(b, br.AppData)
	}
	b = appendTimeField(b, bRegisteredAt, br.RegisteredAt)
	b = appendStringField(b, bReason, br.Reason)
	b = appendIntField(b, bAttempts, int64(br.Attempts))
	b = appendBoolField(b, bReleased, br.LocksReleased)
	return b
}

// --- the seal (format version 3) ---

// sealField is the field number of the trailer.
const sealField protowire.Number = 2047

// sealTag is the trailer's tag: field 2047, wire type fixed32 (0xfd 0x7f).
var sealTag = protowire.AppendTag(nil, sealField, protowire.Fixed32Type)

// sealLen is the length of the trailer: tag and four bytes of CRC.
var sealLen = len(sealTag) + 4

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func sealSum(key, msg []byte) uint32 {
	return crc32.Update(crc32.Checksum(key, castagnoli), castagnoli, msg)
}

// seal appends the trailer for key to msg, a record's message.
func seal(key, msg []byte) []byte {
	msg = append(msg, sealTag...)
	return binary.LittleEndian.AppendUint32(msg, sealSum(key, msg[:len(msg)-len(sealTag)]))
}

// unseal checks the trailer of val, stored under key, and returns the
// message without it.
func unseal(key, val []byte) ([]byte, error) {
	n := len(val) - sealLen
	if n < 0 || string(val[n:n+len(sealTag)]) != string(sealTag) {
		return nil, fmt.Errorf("%w: record of key %q has no checksum", ErrCorrupt, key)
	}
	msg := val[:n]
	if got, want := sealSum(key, msg), binary.LittleEndian.Uint32(val[n+len(sealTag):]); got != want {
		return nil, fmt.Errorf("%w: record of key %q fails its checksum (crc32c %08x, stored %08x)", ErrCorrupt, key, got, want)
	}
	return msg, nil
}

// isSealed reports whether val carries a valid trailer for key. The format
// migration uses it to tell records it already sealed from older ones.
func isSealed(key, val []byte) bool {
	_, err := unseal(key, val)
	return err == nil
}

// --- decoding ---

// fieldReader walks the fields of one message. Errors are sticky: after
// the first, next reports false and err returns it.
type fieldReader struct {
	b   []byte
	num protowire.Number
	typ protowire.Type
	val []byte // BytesType payload
	u   uint64 // VarintType payload
	err error
}

func (r *fieldReader) next() bool {
	if r.err != nil || len(r.b) == 0 {
		return false
	}
	num, typ, n := protowire.ConsumeTag(r.b)
	if n < 0 {
		r.err = protowire.ParseError(n)
		return false
	}
	r.b = r.b[n:]
	r.num, r.typ = num, typ
	switch typ {
	case protowire.VarintType:
		r.u, n = protowire.ConsumeVarint(r.b)
	case protowire.BytesType:
		r.val, n = protowire.ConsumeBytes(r.b)
	default:
		n = protowire.ConsumeFieldValue(num, typ, r.b)
	}
	if n < 0 {
		r.err = protowire.ParseError(n)
		return false
	}
	r.b = r.b[n:]
	return true
}

func (r *fieldReader) fail(err error) { r.err = err }

func (r *fieldReader) want(typ protowire.Type) bool {
	if r.typ != typ {
		r.err = fmt.Errorf("field %d has wire type %d, want %d", r.num, r.typ, typ)
		return false
	}
	return true
}

func (r *fieldReader) string() string {
	if !r.want(protowire.BytesType) {
		return ""
	}
	return string(r.val)
}

func (r *fieldReader) bytes() []byte {
	if !r.want(protowire.BytesType) {
		return nil
	}
	return append([]byte(nil), r.val...)
}

func (r *fieldReader) int64() int64 {
	if !r.want(protowire.VarintType) {
		return 0
	}
	return int64(r.u)
}

func (r *fieldReader) int32() int32 {
	v := r.int64()
	if v < math.MinInt32 || v > math.MaxInt32 {
		r.fail(fmt.Errorf("field %d: %d overflows int32", r.num, v))
		return 0
	}
	return int32(v)
}

func (r *fieldReader) bool() bool { return r.int64() != 0 }

func (r *fieldReader) time() time.Time {
	if !r.want(protowire.BytesType) {
		return time.Time{}
	}
	var sec, nsec int64
	tr := fieldReader{b: r.val}
	for tr.next() {
		switch tr.num {
		case tsSeconds:
			sec = tr.int64()
		case tsNanos:
			nsec = tr.int64()
		}
	}
	if tr.err != nil {
		r.fail(fmt.Errorf("field %d: %w", r.num, tr.err))
		return time.Time{}
	}
	if nsec < 0 || nsec >= 1e9 {
		r.fail(fmt.Errorf("field %d: nanos %d out of range", r.num, nsec))
		return time.Time{}
	}
	return time.Unix(sec, nsec).UTC()
}

func decodeGlobal(b []byte) (*storage.Global, error) {
	g := &storage.Global{}
	r := fieldReader{b: b}
	for r.next() {
		switch r.num {
		case gXID:
			g.XID = r.string()
		case gName:
			g.Name = r.string()
		case gStatus:
			g.Status = storage.Status(r.int32())
		case gTimeout:
			g.Timeout = time.Duration(r.int64())
		case gBeganAt:
			g.BeganAt = r.time()
		case gDeadline:
			g.Deadline = r.time()
		case gNextAt:
			g.NextAt = r.time()
		case gAttempts:
			g.Attempts = int(r.int64())
		case gParked:
			g.Parked = r.bool()
		case gReason:
			g.Reason = r.string()
		case gUpdatedAt:
			g.UpdatedAt = r.time()
		case gBranchSeq:
			g.BranchSeq = r.int64()
		case gHistory:
			if !r.want(protowire.BytesType) {
				break
			}
			var e storage.Event
			er := fieldReader{b: r.val}
			for er.next() {
				switch er.num {
				case eAt:
					e.At = er.time()
				case eWhat:
					e.What = er.string()
				}
			}
			if er.err != nil {
				r.fail(fmt.Errorf("history: %w", er.err))
				break
			}
			g.History = append(g.History, e)
		case gFinished:
			g.Finished = r.bool()
		case gReleased:
			g.LocksReleased = r.bool()
		}
	}
	if r.err != nil {
		return nil, fmt.Errorf("%w: global: %w", ErrCorrupt, r.err)
	}
	return g, nil
}

func decodeBranch(b []byte) (*storage.Branch, error) {
	br := &storage.Branch{}
	r := fieldReader{b: b}
	for r.next() {
		switch r.num {
		case bXID:
			br.XID = r.string()
		case bID:
			br.ID = r.int64()
		case bResource:
			br.Resource = r.string()
		case bType:
			br.Type = storage.BranchType(r.int32())
		case bStatus:
			br.Status = storage.BranchStatus(r.int32())
		case bLockKeys:
			br.LockKeys = append(br.LockKeys, r.string())
		case bAppData:
			br.AppData = r.bytes()
		case bRegisteredAt:
			br.RegisteredAt = r.time()
		case bReason:
			br.Reason = r.string()
		case bAttempts:
			br.Attempts = int(r.int64())
		case bReleased:
			br.LocksReleased = r.bool()
		}
	}
	if r.err != nil {
		return nil, fmt.Errorf("%w: branch: %w", ErrCorrupt, r.err)
	}
	return br, nil
}

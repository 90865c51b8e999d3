package badger

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"os"
	"path/filepath"
)

// The state file (stateFileName) lets Open notice records that went
// missing without a trace in any file: a WAL truncated or deleted at an
// entry boundary, a table dropped together with its MANIFEST entries.
// Checksums cannot see those; what is gone has none to fail. It holds:
//
//   - version: a Badger commit version known to be durable. While the
//     store runs, the committer records, after each sync, the version
//     that sync covered; at a clean Close, the last one. Badger's largest
//     stored version must be at least that at the next Open, or
//     acknowledged writes are gone. (Every transaction keeps a
//     non-expiring entry at its version: see tx.Delete and markKey.)
//   - after a clean Close only: clean, and the number of live global and
//     branch records. Open counts them again (load reads every one anyway)
//     and refuses if they differ; and checkFiles then allows no crash
//     tail in any file.
//
// Open clears clean (writes a record without it) before it returns. The
// file has two 64-byte slots, written alternately without fsync (except at
// Close) and each with a CRC, so that a write cut short by a power loss
// leaves the previous record. A lost write only makes the check weaker:
// a record is written after what it claims is durable.
//
//	slot: "XST1" | u64 seq | u32 flags | u64 version | u64 globals | u64 branches | ... | u32 crc32c
const stateFileName = "xact-state"

const (
	stateSlot  = 64
	stateMagic = "XST1"
	stateClean = 1
)

// state is one record of the state file.
type state struct {
	seq      uint64
	clean    bool
	version  uint64
	globals  uint64
	branches uint64
}

func (st state) encode() []byte {
	b := make([]byte, stateSlot)
	copy(b, stateMagic)
	binary.BigEndian.PutUint64(b[4:], st.seq)
	if st.clean {
		binary.BigEndian.PutUint32(b[12:], stateClean)
	}
	binary.BigEndian.PutUint64(b[16:], st.version)
	binary.BigEndian.PutUint64(b[24:], st.globals)
	binary.BigEndian.PutUint64(b[32:], st.branches)
	binary.BigEndian.PutUint32(b[stateSlot-4:], crc32.Checksum(b[:stateSlot-4], castagnoli))
	return b
}

func decodeState(b []byte) (state, bool) {
	if len(b) != stateSlot || string(b[:4]) != stateMagic ||
		binary.BigEndian.Uint32(b[stateSlot-4:]) != crc32.Checksum(b[:stateSlot-4], castagnoli) {
		return state{}, false
	}
	return state{
		seq:      binary.BigEndian.Uint64(b[4:]),
		clean:    binary.BigEndian.Uint32(b[12:])&stateClean != 0,
		version:  binary.BigEndian.Uint64(b[16:]),
		globals:  binary.BigEndian.Uint64(b[24:]),
		branches: binary.BigEndian.Uint64(b[32:]),
	}, true
}

// readState returns the newest valid record of dir's state file; ok is
// false if there is none (a new directory, or one written by an older
// xact). A file that exists but holds no valid record is damage.
func readState(dir string) (st state, ok bool, err error) {
	b, err := os.ReadFile(filepath.Join(dir, stateFileName))
	if errors.Is(err, fs.ErrNotExist) {
		return state{}, false, nil
	}
	if err != nil {
		return state{}, false, err
	}
	if len(b) == 0 {
		return state{}, false, nil // created, never written
	}
	for i := 0; i+stateSlot <= len(b) && i < 2*stateSlot; i += stateSlot {
		if s, valid := decodeState(b[i : i+stateSlot]); valid && (!ok || s.seq > st.seq) {
			st, ok = s, true
		}
	}
	if !ok {
		return state{}, false, fmt.Errorf("%w: no valid record in %d bytes (delete the file to start without the check it enables)", ErrCorrupt, len(b))
	}
	return st, true, nil
}

// stateFile writes the state file. Only one goroutine at a time uses it
// (the committer's, or Open and Close).
type stateFile struct {
	f    *os.File
	last state
}

func openStateFile(dir string, last state) (*stateFile, error) {
	f, err := os.OpenFile(filepath.Join(dir, stateFileName), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	return &stateFile{f: f, last: last}, nil
}

// write stores st as the next record; sync fsyncs it.
func (sf *stateFile) write(st state, sync bool) error {
	st.seq = sf.last.seq + 1
	if _, err := sf.f.WriteAt(st.encode(), int64(st.seq%2)*stateSlot); err != nil {
		return err
	}
	sf.last = st
	if sync {
		return sf.f.Sync()
	}
	return nil
}

// mark records that version is durable, if it is newer than the last
// record's.
func (sf *stateFile) mark(version uint64) error {
	if version <= sf.last.version {
		return nil
	}
	return sf.write(state{version: version}, false)
}

func (sf *stateFile) close() error { return sf.f.Close() }

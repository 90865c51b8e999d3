package embedded

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
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
//
//   - after a clean Close only: clean, and the number of live global and
//     branch records. Open counts them again (load reads every one anyway)
//     and refuses if they differ; and checkFiles then allows no crash
//     tail in any file.
//
//   - the size of the MANIFEST and the CRC-32C of its content, refreshed
//     when its size changes (checked at each sync, and every second while
//     idle). Badger only appends to it, so at the next Open it must start
//     with those bytes (after a clean Close: be exactly them). A MANIFEST
//     cut at a change boundary parses fine, and Badger would then delete
//     every table file it no longer lists. (Badger also rewrites it, about
//     once per 10000 table deletions; a crash within a second of that
//     makes Open refuse until the state file is deleted.)
//
// Open clears clean (writes a record without it) before it returns. The
// file has two 64-byte slots, written alternately without fsync (except at
// Open and Close) and each with a CRC, so that a write cut short by a
// power loss leaves the previous record. A lost write only makes the
// check weaker: a record is written after what it claims is durable.
//
//	slot: "XST1" | u64 seq | u32 flags | u64 version | u64 globals | u64 branches |
//	      u64 manifest size | u32 manifest crc32c | ... | u32 crc32c
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
	manifest manifestSig
}

// manifestSig identifies the MANIFEST's content: its size and CRC-32C.
type manifestSig struct {
	size int64
	crc  uint32
}

// readManifestSig returns the signature of dir's MANIFEST, or of its first
// prefix bytes if prefix >= 0 (ok is false if it is shorter).
func readManifestSig(dir string, prefix int64) (sig manifestSig, ok bool, err error) {
	b, err := os.ReadFile(filepath.Join(dir, manifestName))
	if errors.Is(err, fs.ErrNotExist) {
		return manifestSig{}, prefix <= 0, nil
	}
	if err != nil {
		return manifestSig{}, false, err
	}
	if prefix >= 0 {
		if int64(len(b)) < prefix {
			return manifestSig{size: int64(len(b))}, false, nil
		}
		b = b[:prefix]
	}
	return manifestSig{size: int64(len(b)), crc: crc32.Checksum(b, castagnoli)}, true, nil
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
	binary.BigEndian.PutUint64(b[40:], uint64(st.manifest.size))
	binary.BigEndian.PutUint32(b[48:], st.manifest.crc)
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
		manifest: manifestSig{size: int64(binary.BigEndian.Uint64(b[40:])), crc: binary.BigEndian.Uint32(b[48:])},
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

// stateFile writes the state file. It is safe for concurrent use (the
// committer and the store's background goroutine).
type stateFile struct {
	dir string
	mu  sync.Mutex
	f   *os.File
	// last is the record written last; the next is written to the other
	// slot.
	last state
}

func openStateFile(dir string, last state) (*stateFile, error) {
	f, err := os.OpenFile(filepath.Join(dir, stateFileName), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	return &stateFile{dir: dir, f: f, last: last}, nil
}

// write stores st, with the MANIFEST's current signature, as the next
// record; sync fsyncs it.
func (sf *stateFile) write(st state, sync bool) error {
	sf.mu.Lock()
	defer sf.mu.Unlock()
	sig, _, err := readManifestSig(sf.dir, -1)
	if err != nil {
		return err
	}
	st.manifest = sig
	return sf.writeLocked(st, sync)
}

func (sf *stateFile) writeLocked(st state, sync bool) error {
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

// mark records that version (0: no newer one) is durable, and the
// MANIFEST's signature if its size changed. It writes nothing if neither
// is news.
func (sf *stateFile) mark(version uint64) error {
	sf.mu.Lock()
	defer sf.mu.Unlock()
	st := sf.last
	st.clean = false
	changed := false
	if version > st.version {
		st.version, changed = version, true
	}
	fi, err := os.Stat(filepath.Join(sf.dir, manifestName))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if err == nil && fi.Size() != st.manifest.size {
		if st.manifest, _, err = readManifestSig(sf.dir, -1); err != nil {
			return err
		}
		changed = true
	}
	if !changed {
		return nil
	}
	return sf.writeLocked(st, false)
}

func (sf *stateFile) close() error { return sf.f.Close() }

// checkManifestSig checks the MANIFEST against the signature prev
// recorded; end is where its last complete change ends.
func checkManifestSig(dir string, prev state, end int64) error {
	if prev.manifest.size == 0 {
		return nil // not recorded
	}
	if prev.manifest.size > end {
		return fmt.Errorf("the changes in its first %d bytes were complete before (now they end at %d)", prev.manifest.size, end)
	}
	sig, ok, err := readManifestSig(dir, prev.manifest.size)
	switch {
	case err != nil:
		return err
	case !ok || sig.crc != prev.manifest.crc:
		return fmt.Errorf("does not start with the %d bytes it held when last recorded (or Badger rewrote it just before a crash; if so, delete %s and start again)", prev.manifest.size, stateFileName)
	}
	if prev.clean {
		if sig, _, err := readManifestSig(dir, -1); err != nil {
			return err
		} else if sig.size != prev.manifest.size {
			return fmt.Errorf("%d bytes, %d at the last clean stop", sig.size, prev.manifest.size)
		}
	}
	return nil
}

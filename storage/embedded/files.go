package embedded

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	bdb "github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/fb"
	"github.com/dgraph-io/badger/v4/options"
	"github.com/dgraph-io/badger/v4/pb"
	"github.com/dgraph-io/badger/v4/y"
	"github.com/klauspost/compress/snappy"
	"google.golang.org/protobuf/proto"
)

// The files of a data directory are checked before Badger opens them
// (checkFiles), because Badger v4.9.6 does not fail safely on damaged
// files:
//
//   - It verifies no block checksum by default, and reads a damaged table
//     block as whatever it decodes to: records vanish or turn into garbage.
//   - With OnTableRead it skips a table whose checksum fails, with a log
//     line, and serves the rest; with OnTableAndBlockRead its
//     Table.VerifyChecksum dereferences the nil block it got with the
//     error and panics, in one of its own goroutines, where no caller can
//     recover; with OnBlockRead an iterator stops at the damaged block and
//     a scan returns the keys before it, without an error.
//   - A table footer that points outside the file ends the process
//     (y.Check, log.Fatalf).
//   - Replaying a memtable WAL (*.mem) or the last value log (*.vlog), it
//     stops at the first entry that fails its CRC, truncates the file
//     there and carries on: every entry after a damaged one is dropped.
//     A MANIFEST whose last change is cut short is truncated the same way,
//     and tables the MANIFEST no longer lists are deleted.
//
// So the store verifies every table block, the MANIFEST and the logs with
// code that cannot crash the process (pure parsing, panics recovered), and
// refuses to open a directory that fails; and it opens Badger with
// OnBlockRead, so that a block damaged while it runs fails a read instead
// of being served. What a replay may legitimately drop is the tail a crash
// cut short, and nothing else (checkLog).

// Damage is one problem found in a data directory.
type Damage struct {
	// File is the file of the data directory that holds the damage,
	// when known ("000001.sst", "MANIFEST", "00003.mem").
	File string
	// What describes it.
	What string
}

func (d Damage) String() string {
	if d.File == "" {
		return d.What
	}
	return d.File + ": " + d.What
}

// CorruptError reports a data directory that Open (or Verify) found
// damaged. It matches storage.ErrCorrupt with errors.Is.
type CorruptError struct {
	Dir    string
	Damage []Damage
}

// maxListed bounds the damage an error message lists.
const maxListed = 5

func (e *CorruptError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "storage/embedded: data directory %s is damaged: ", e.Dir)
	for i, d := range e.Damage {
		if i == maxListed {
			fmt.Fprintf(&b, "; and %d more", len(e.Damage)-maxListed)
			break
		}
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(d.String())
	}
	fmt.Fprintf(&b, ". The coordinator will not start on it: what is damaged may hold decisions it must keep. "+
		"Keep a copy of the directory as it is, run `xact store verify --data-dir %s` for the full report, "+
		"and restore the last backup (`xact store restore`); see docs/operations.md", e.Dir)
	return b.String()
}

// Is reports whether target is storage.ErrCorrupt.
func (e *CorruptError) Is(target error) bool { return target == ErrCorrupt }

// File names of a Badger directory.
const (
	manifestName    = "MANIFEST"
	keyRegistryName = "KEYREGISTRY"
	sstExt          = ".sst"
	vlogExt         = ".vlog"
	// logHeaderSize is the header of a WAL or value log file (key id and
	// IV of the encryption, unused here).
	logHeaderSize = 20
)

// Badger's entry meta bits (value.go), for checkLog.
const (
	bitTxn    byte = 1 << 6
	bitFinTxn byte = 1 << 7
)

// checkFiles verifies the files of the data directory dir, before Badger
// opens it. clean: the store was closed cleanly last time (state.go), so
// no file may hold a tail cut short by a crash.
func checkFiles(dir string, prev state) []Damage {
	clean := prev.clean
	var out []Damage
	add := func(file, format string, args ...any) {
		out = append(out, Damage{File: file, What: fmt.Sprintf(format, args...)})
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		add("", "read directory: %v", err)
		return out
	}
	ssts := map[uint64]string{}
	var logs []string
	for _, e := range entries {
		name := e.Name()
		switch {
		case strings.HasSuffix(name, sstExt):
			if id, err := strconv.ParseUint(strings.TrimSuffix(name, sstExt), 10, 64); err == nil {
				ssts[id] = name
			}
		case strings.HasSuffix(name, walExt), strings.HasSuffix(name, vlogExt):
			logs = append(logs, name)
		}
	}

	tables, ok := checkManifest(dir, prev, len(ssts) > 0, add)
	if ok {
		ids := make([]uint64, 0, len(tables))
		for id := range tables {
			ids = append(ids, id)
		}
		slices.Sort(ids)
		for _, id := range ids {
			name := fmt.Sprintf("%06d%s", id, sstExt)
			if _, found := ssts[id]; !found {
				add(name, "listed in the MANIFEST but missing")
				continue
			}
			if err := checkTable(filepath.Join(dir, name), tables[id]); err != nil {
				add(name, "%v", err)
			}
		}
		if clean {
			for id, name := range ssts {
				if _, listed := tables[id]; !listed {
					// Only a crash between writing a table and recording it
					// leaves one; Badger would delete it.
					add(name, "not listed in the MANIFEST, after a clean stop (Badger would delete it)")
				}
			}
		}
	}
	slices.Sort(logs)
	for _, name := range logs {
		if err := checkLog(filepath.Join(dir, name), clean); err != nil {
			add(name, "%v", err)
		}
	}
	if err := checkKeyRegistry(dir); err != nil {
		add(keyRegistryName, "%v", err)
	}
	return out
}

// guard turns a panic in fn into an error.
func guard(fn func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("does not parse (panic: %v)", r)
		}
	}()
	return fn()
}

// checkManifest replays the MANIFEST as Badger will and returns the tables
// it lists. ok is false if they cannot be known.
func checkManifest(dir string, prev state, haveTables bool, add func(file, format string, args ...any)) (map[uint64]bdb.TableManifest, bool) {
	path := filepath.Join(dir, manifestName)
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		if haveTables || prev.manifest.size > 0 {
			add(manifestName, "missing, while the directory held tables (Badger would start empty and delete them)")
			return nil, false
		}
		return nil, true // a new directory
	}
	if err != nil {
		add(manifestName, "%v", err)
		return nil, false
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		add(manifestName, "%v", err)
		return nil, false
	}
	var m bdb.Manifest
	var end int64
	err = guard(func() error {
		var err error
		m, end, err = bdb.ReplayManifestFile(f, 0, bdb.Options{})
		return err
	})
	if err != nil {
		add(manifestName, "%v", err)
		return nil, false
	}
	if end < fi.Size() {
		// A change cut short by a crash is dropped by Badger, and is
		// harmless: the tables it would have added are written again from
		// the WAL, the ones it would have removed are still there. After a
		// clean stop, or when a complete change follows, it is damage.
		tail := make([]byte, fi.Size()-end)
		if _, err := f.ReadAt(tail, end); err != nil {
			add(manifestName, "%v", err)
			return nil, false
		}
		if prev.clean || !tornManifestTail(tail) {
			add(manifestName, "%d bytes after the last complete change at offset %d (Badger would drop them and every change after them)", len(tail), end)
			return nil, false
		}
	}
	if err := checkManifestSig(dir, prev, end); err != nil {
		add(manifestName, "%v", err)
		return nil, false
	}
	return m.Tables, true
}

// tornManifestTail reports whether tail, the bytes after the last complete
// MANIFEST change, can be one change cut short: a header (length, CRC)
// announcing more bytes than follow it, or part of a header.
func tornManifestTail(tail []byte) bool {
	if len(tail) < 8 {
		return true
	}
	return uint64(binary.BigEndian.Uint32(tail)) > uint64(len(tail)-8)
}

// checkTable verifies a table file: its footer, its index checksum and
// every block's checksum, by parsing it without Badger's table code.
func checkTable(path string, tm bdb.TableManifest) error {
	if tm.KeyID != 0 {
		return errors.New("encrypted table: cannot be verified")
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	return guard(func() error { return verifyTable(data, tm.Compression) })
}

// verifyTable checks a table's bytes (table/builder.go's layout):
//
//	block... | index | u32 index length | checksum | u32 checksum length
//
// and each block, once decompressed:
//
//	entries | u32 offsets... | u32 count | checksum | u32 checksum length
//
// where a block's checksum covers everything before it.
func verifyTable(data []byte, c options.CompressionType) error {
	pos := len(data) - 4
	if pos < 0 {
		return fmt.Errorf("%d bytes: shorter than a footer", len(data))
	}
	chkLen := int(binary.BigEndian.Uint32(data[pos:]))
	if chkLen > pos-4 {
		return fmt.Errorf("footer: checksum length %d past the start of the file", chkLen)
	}
	pos -= chkLen
	var sum pb.Checksum
	if err := proto.Unmarshal(data[pos:pos+chkLen], &sum); err != nil {
		return fmt.Errorf("footer: index checksum does not decode: %v", err)
	}
	pos -= 4
	indexLen := int(binary.BigEndian.Uint32(data[pos:]))
	if indexLen > pos {
		return fmt.Errorf("footer: index length %d past the start of the file", indexLen)
	}
	pos -= indexLen
	index := data[pos : pos+indexLen]
	if err := verifySum(index, &sum); err != nil {
		return fmt.Errorf("index: %v", err)
	}
	indexStart := pos
	ti := fb.GetRootAsTableIndex(index, 0)
	var keys uint32
	for i := 0; i < ti.OffsetsLength(); i++ {
		var bo fb.BlockOffset
		if !ti.Offsets(&bo, i) {
			return fmt.Errorf("index: block %d missing", i)
		}
		off, n := int(bo.Offset()), int(bo.Len())
		if off < 0 || n < 0 || off+n > indexStart {
			return fmt.Errorf("block %d: offset %d length %d outside the data", i, off, n)
		}
		count, err := verifyBlock(data[off:off+n], c)
		if err != nil {
			return fmt.Errorf("block %d at offset %d: %v", i, off, err)
		}
		keys += count
	}
	if keys != ti.KeyCount() {
		return fmt.Errorf("blocks hold %d entries, the index says %d", keys, ti.KeyCount())
	}
	return nil
}

// verifyBlock checks one block and returns its entry count.
func verifyBlock(b []byte, c options.CompressionType) (uint32, error) {
	switch c {
	case options.None:
	case options.Snappy:
		var err error
		if b, err = snappy.Decode(nil, b); err != nil {
			return 0, fmt.Errorf("does not decompress: %v", err)
		}
	case options.ZSTD:
		var err error
		if b, err = y.ZSTDDecompress(nil, b); err != nil {
			return 0, fmt.Errorf("does not decompress: %v", err)
		}
	default:
		return 0, fmt.Errorf("unknown compression %d", c)
	}
	pos := len(b) - 4
	if pos < 0 {
		return 0, errors.New("shorter than its footer")
	}
	chkLen := int(binary.BigEndian.Uint32(b[pos:]))
	if chkLen > pos-4 {
		return 0, fmt.Errorf("checksum length %d past the start of the block", chkLen)
	}
	pos -= chkLen
	var sum pb.Checksum
	if err := proto.Unmarshal(b[pos:pos+chkLen], &sum); err != nil {
		return 0, fmt.Errorf("checksum does not decode: %v", err)
	}
	if err := verifySum(b[:pos], &sum); err != nil {
		return 0, err
	}
	count := binary.BigEndian.Uint32(b[pos-4:])
	if uint64(count)*4 > uint64(pos-4) {
		return 0, fmt.Errorf("%d entries do not fit", count)
	}
	return count, nil
}

// verifySum is y.VerifyChecksum without its panic on an unknown algorithm.
func verifySum(data []byte, sum *pb.Checksum) error {
	switch sum.Algo {
	case pb.Checksum_CRC32C, pb.Checksum_XXHash64:
	default:
		return fmt.Errorf("unknown checksum algorithm %d", sum.Algo)
	}
	if got := y.CalculateChecksum(data, sum.Algo); got != sum.Sum {
		return fmt.Errorf("checksum mismatch (%s %x, stored %x)", sum.Algo, got, sum.Sum)
	}
	return nil
}

// checkKeyRegistry opens the key registry as Badger will.
func checkKeyRegistry(dir string) error {
	if _, err := os.Stat(filepath.Join(dir, keyRegistryName)); errors.Is(err, fs.ErrNotExist) {
		return nil // Badger writes a new one
	}
	return guard(func() error {
		kr, err := bdb.OpenKeyRegistry(bdb.KeyRegistryOptions{Dir: dir, ReadOnly: true})
		if err != nil {
			return err
		}
		return kr.Close()
	})
}

// checkLog checks a memtable WAL or value log file: what Badger's replay
// would drop (logFile.iterate: everything from the first entry that does
// not read back, or that breaks a transaction) must be a tail a crash cut
// short. That is, after the last complete transaction the file may hold
// entries of one transaction whose end marker was not written, then at
// most one entry cut short (its CRC not written), then zeros (Badger
// preallocates the file and zeroes ahead of every write). Anything else
// there is damage. After a clean stop no tail is allowed: then nothing was
// being written.
//
// A WAL truncated or deleted at an entry boundary leaves nothing to see
// here; the state file's version mark catches that (state.go).
func checkLog(path string, clean bool) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	size := fi.Size()
	switch {
	case size == 0:
		// Badger refuses to open an empty log ("Create a new file"). A
		// crash between creating and sizing one leaves it, holding
		// nothing; damage leaves it too.
		return errors.New("empty: Badger cannot open it (if a crash left it and nothing else is reported, delete it)")
	case size < logHeaderSize:
		return fmt.Errorf("%d bytes: shorter than its %d-byte header", size, logHeaderSize)
	}
	var hdr [logHeaderSize]byte
	if _, err := f.ReadAt(hdr[:], 0); err != nil {
		return err
	}
	if binary.BigEndian.Uint64(hdr[:8]) != 0 {
		return errors.New("header names an encryption key: encrypted logs cannot be verified")
	}
	end := dataEnd(f, size)
	lastNZ, err := lastNonZero(f, end)
	if err != nil {
		return err
	}
	sc := logScanner{r: bufio.NewReaderSize(io.NewSectionReader(f, logHeaderSize, size-logHeaderSize), 1<<20), off: logHeaderSize, size: size}

	// Badger's replay (memtable.go, logFile.iterate).
	valid := int64(logHeaderSize)
	var txnTs uint64
	var e logEntry
	for {
		if !sc.next(&e) {
			break
		}
		if len(e.key) == 0 {
			break
		}
		if e.meta&bitTxn != 0 {
			ts := keyTs(e.key)
			if txnTs == 0 {
				txnTs = ts
			}
			if ts != txnTs {
				break
			}
			continue
		}
		if e.meta&bitFinTxn != 0 {
			ts, err := strconv.ParseUint(string(e.val), 10, 64)
			if err != nil || ts != txnTs {
				break
			}
			txnTs = 0
			valid = sc.off
			continue
		}
		if txnTs != 0 {
			break
		}
		valid = sc.off
	}
	if lastNZ < valid {
		return nil
	}
	describe := func() error {
		return fmt.Errorf("%d bytes after the last complete transaction at offset %d are not a tail cut short by a crash (Badger would drop them and everything after them)", lastNZ+1-valid, valid)
	}
	if clean {
		return describe()
	}
	// Past valid: entries of one unfinished transaction, ...
	sc = logScanner{r: bufio.NewReaderSize(io.NewSectionReader(f, valid, size-valid), 1<<16), off: valid, size: size}
	txnTs = 0
	for {
		at := sc.off
		if !sc.next(&e) {
			// ... then an entry cut short, then zeros.
			if lastNZ < at || sc.torn && lastNZ < sc.tornEnd {
				return nil
			}
			return describe()
		}
		if e.meta&bitTxn == 0 || len(e.key) == 0 {
			return describe()
		}
		if ts := keyTs(e.key); txnTs == 0 {
			txnTs = ts
		} else if ts != txnTs {
			return describe()
		}
	}
}

// keyTs is y.ParseTs, without its panic on a short key.
func keyTs(key []byte) uint64 {
	if len(key) < 8 {
		return 0
	}
	return math.MaxUint64 - binary.BigEndian.Uint64(key[len(key)-8:])
}

// logEntry is one entry of a log file (structs.go, header).
type logEntry struct {
	meta     byte
	key, val []byte
}

// logScanner reads the entries of a log file as logFile.iterate does.
type logScanner struct {
	r    *bufio.Reader
	off  int64 // file offset of the next entry
	size int64 // file size
	buf  []byte
	// After next returned false: whether the entry there is one cut short
	// (its header reads, it fits in the file, its CRC bytes are zero), and
	// the offset just after it.
	torn    bool
	tornEnd int64
}

// next reads the next entry whose CRC matches into e, or returns false.
func (s *logScanner) next(e *logEntry) bool {
	s.torn = false
	h := crc32.New(castagnoli)
	hr := &hashingReader{r: s.r, h: h}
	var hdr [2]byte
	if _, err := io.ReadFull(hr, hdr[:]); err != nil {
		return false
	}
	klen, err1 := binary.ReadUvarint(hr)
	vlen, err2 := binary.ReadUvarint(hr)
	_, err3 := binary.ReadUvarint(hr)
	if err1 != nil || err2 != nil || err3 != nil || klen > 1<<16 {
		return false
	}
	n := hr.n + int64(klen) + int64(vlen) + crc32.Size
	if vlen > uint64(s.size) || s.off+n > s.size {
		return false
	}
	kv := int(klen + vlen)
	if cap(s.buf) < kv {
		s.buf = make([]byte, kv)
	}
	s.buf = s.buf[:kv]
	if _, err := io.ReadFull(hr, s.buf); err != nil {
		return false
	}
	var sum [crc32.Size]byte
	if _, err := io.ReadFull(s.r, sum[:]); err != nil {
		return false
	}
	if binary.BigEndian.Uint32(sum[:]) != h.Sum32() {
		s.torn = sum == [crc32.Size]byte{}
		s.tornEnd = s.off + n
		return false
	}
	e.meta, e.key, e.val = hdr[0], s.buf[:klen], s.buf[klen:]
	s.off += n
	return true
}

// hashingReader hashes and counts what it reads.
type hashingReader struct {
	r *bufio.Reader
	h hash.Hash32
	n int64
}

func (r *hashingReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	r.h.Write(p[:n])
	r.n += int64(n)
	return n, err
}

func (r *hashingReader) ReadByte() (byte, error) {
	b, err := r.r.ReadByte()
	if err == nil {
		r.h.Write([]byte{b})
		r.n++
	}
	return b, err
}

// lastNonZero returns the offset of the last non-zero byte of f before
// end, or -1.
func lastNonZero(f *os.File, end int64) (int64, error) {
	const chunk, page = 1 << 20, 4096
	buf := make([]byte, chunk)
	zero := make([]byte, page)
	for hi := end; hi > 0; {
		lo := max(hi-chunk, 0)
		b := buf[:hi-lo]
		if _, err := f.ReadAt(b, lo); err != nil && err != io.EOF {
			return 0, err
		}
		for p := len(b); p > 0; {
			q := max(p-page, 0)
			if !bytes.Equal(b[q:p], zero[:p-q]) {
				for j := p - 1; j >= q; j-- {
					if b[j] != 0 {
						return lo + int64(j), nil
					}
				}
			}
			p = q
		}
		hi = lo
	}
	return -1, nil
}

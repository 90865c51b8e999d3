package embedded

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"os"

	bdb "github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/pb"
	"google.golang.org/protobuf/proto"
)

// Backups.
//
// Backup writes a consistent copy of the store while it serves: Badger's
// DB.Backup streams every key at one read timestamp (a snapshot) as
// protobuf KV lists. The store wraps that stream in a format of its own,
// so that a backup is checked end to end before anything is restored
// from it:
//
//	header:  "XACTBAK\x00" | u32 format (1)
//	frame:   u32 length (> 0) | u32 CRC-32C of the payload | payload (a pb.KVList)
//	...
//	trailer: u32 0 | u32 CRC-32C of the rest | "XACTEND\x00" | u64 globals |
//	         u64 branches | u64 tombstones | u64 frames
//
// (all integers big-endian). Every global, tombstone and branch record is
// checked against its seal as it goes by: a backup of damaged data fails
// instead of carrying the damage into the copy. Restore writes the lists
// into a new directory with Badger's KVLoader, then opens it as the server
// would (every check of Open) and compares its counts with the trailer's.
const (
	backupMagic   = "XACTBAK\x00"
	backupEnd     = "XACTEND\x00"
	backupVersion = 1
	// maxFrame bounds a frame's payload when reading a backup.
	maxFrame = 1 << 30
)

// BackupInfo describes a backup: what it holds.
type BackupInfo struct {
	Globals, Branches, Tombstones uint64
	// Frames is the number of KV lists it holds.
	Frames uint64
}

// counter counts and checks the records of KV lists.
type counter struct {
	info BackupInfo
}

// add checks and counts the records of list. Badger's stream sends the
// versions of one key together, newest first; only the newest counts
// (and is checked: older versions may predate the seals).
func (c *counter) add(list *pb.KVList) error {
	var prev []byte
	for _, kv := range list.Kv {
		newest := prev == nil || !bytes.Equal(kv.Key, prev)
		prev = kv.Key
		if !newest || len(kv.Key) == 0 || len(kv.Value) == 0 {
			continue // an older version, or a deletion or expiry marker
		}
		var n *uint64
		switch kv.Key[0] {
		case prefixGlobal:
			n = &c.info.Globals
		case prefixTombstone:
			n = &c.info.Tombstones
		case prefixBranch:
			n = &c.info.Branches
		default:
			continue
		}
		if _, err := unseal(kv.Key, kv.Value); err != nil {
			return err
		}
		*n++
	}
	c.info.Frames++
	return nil
}

// Backup writes a consistent copy of the store to w (see above). It may
// run while the store serves.
func (s *Store) Backup(ctx context.Context, w io.Writer) (BackupInfo, error) {
	if err := s.enter(ctx); err != nil {
		return BackupInfo{}, err
	}
	defer s.ops.Done()
	bw := &backupWriter{ctx: ctx, w: bufio.NewWriterSize(w, 1<<20)}
	if err := bw.header(); err != nil {
		return BackupInfo{}, err
	}
	err := guardBadger(func() error {
		// One producer: Badger's stream gives each producer goroutine its
		// own read transaction, so with several (DB.Backup's default) the
		// key ranges are read at different versions, and a backup taken
		// while writes go on can hold a branch without the global write
		// that came with it. One goroutine reads every range in one
		// snapshot.
		stream := s.db.NewStream()
		stream.LogPrefix = "xact backup"
		stream.NumGo = 1
		_, err := stream.Backup(bw, 0)
		return err
	})
	if bw.err != nil {
		err = bw.err // Badger reports it as its context's cancellation
	}
	if err != nil {
		return BackupInfo{}, fmt.Errorf("storage/embedded: backup: %w", err)
	}
	if err := bw.trailer(); err != nil {
		return BackupInfo{}, fmt.Errorf("storage/embedded: backup: %w", err)
	}
	return bw.count.info, nil
}

// backupWriter takes Badger's backup stream (u64 little-endian length,
// then the KV list, in two writes per list, from one goroutine) and
// writes it as frames.
type backupWriter struct {
	ctx   context.Context
	w     *bufio.Writer
	pend  []byte // Badger's stream not yet framed
	count counter
	err   error
}

func (b *backupWriter) header() error {
	var h [12]byte
	copy(h[:], backupMagic)
	binary.BigEndian.PutUint32(h[8:], backupVersion)
	_, err := b.w.Write(h[:])
	return err
}

func (b *backupWriter) Write(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	if err := b.ctx.Err(); err != nil {
		b.err = err
		return 0, err
	}
	b.pend = append(b.pend, p...)
	for len(b.pend) >= 8 {
		n := binary.LittleEndian.Uint64(b.pend)
		if uint64(len(b.pend)-8) < n {
			break
		}
		payload := b.pend[8 : 8+n]
		list := &pb.KVList{}
		if err := proto.Unmarshal(payload, list); err != nil {
			b.err = fmt.Errorf("Badger's backup stream does not decode: %w", err)
			return 0, b.err
		}
		if err := b.count.add(list); err != nil {
			b.err = err
			return 0, err
		}
		var hdr [8]byte
		binary.BigEndian.PutUint32(hdr[:], uint32(n))
		binary.BigEndian.PutUint32(hdr[4:], crc32.Checksum(payload, castagnoli))
		if _, err := b.w.Write(hdr[:]); err != nil {
			b.err = err
			return 0, err
		}
		if _, err := b.w.Write(payload); err != nil {
			b.err = err
			return 0, err
		}
		b.pend = b.pend[8+n:]
	}
	if len(b.pend) == 0 {
		b.pend = nil
	}
	return len(p), nil
}

func (b *backupWriter) trailer() error {
	if len(b.pend) > 0 {
		return fmt.Errorf("Badger's backup stream ends inside a list (%d bytes)", len(b.pend))
	}
	t := encodeTrailer(b.count.info)
	if _, err := b.w.Write(t); err != nil {
		return err
	}
	return b.w.Flush()
}

func encodeTrailer(info BackupInfo) []byte {
	body := []byte(backupEnd)
	for _, n := range []uint64{info.Globals, info.Branches, info.Tombstones, info.Frames} {
		body = binary.BigEndian.AppendUint64(body, n)
	}
	t := make([]byte, 8, 8+len(body))
	binary.BigEndian.PutUint32(t[4:], crc32.Checksum(body, castagnoli))
	return append(t, body...)
}

// trailerBody is the length of the trailer after its 8-byte header.
const trailerBody = len(backupEnd) + 4*8

// readBackup reads a backup from r, checking every frame and the trailer,
// and hands each KV list to fn (which may be nil).
func readBackup(r io.Reader, fn func(*pb.KVList) error) (BackupInfo, error) {
	br := bufio.NewReaderSize(r, 1<<20)
	var h [12]byte
	if _, err := io.ReadFull(br, h[:]); err != nil {
		return BackupInfo{}, fmt.Errorf("%w: backup: header: %v", ErrCorrupt, err)
	}
	if string(h[:8]) != backupMagic {
		return BackupInfo{}, fmt.Errorf("%w: not an xact backup (magic %q)", ErrCorrupt, h[:8])
	}
	if v := binary.BigEndian.Uint32(h[8:]); v != backupVersion {
		return BackupInfo{}, fmt.Errorf("backup format %d; this xact reads %d", v, backupVersion)
	}
	var c counter
	var buf []byte
	for frame := 0; ; frame++ {
		var fh [8]byte
		if _, err := io.ReadFull(br, fh[:]); err != nil {
			return BackupInfo{}, fmt.Errorf("%w: backup: frame %d: %v (cut short?)", ErrCorrupt, frame, err)
		}
		n, sum := binary.BigEndian.Uint32(fh[:]), binary.BigEndian.Uint32(fh[4:])
		if n == 0 {
			body := make([]byte, trailerBody)
			if _, err := io.ReadFull(br, body); err != nil {
				return BackupInfo{}, fmt.Errorf("%w: backup: trailer: %v", ErrCorrupt, err)
			}
			if crc32.Checksum(body, castagnoli) != sum || string(body[:len(backupEnd)]) != backupEnd {
				return BackupInfo{}, fmt.Errorf("%w: backup: trailer fails its checksum", ErrCorrupt)
			}
			var want BackupInfo
			p := body[len(backupEnd):]
			for _, f := range []*uint64{&want.Globals, &want.Branches, &want.Tombstones, &want.Frames} {
				*f, p = binary.BigEndian.Uint64(p), p[8:]
			}
			if want != c.info {
				return BackupInfo{}, fmt.Errorf("%w: backup: the trailer counts %+v, the frames hold %+v", ErrCorrupt, want, c.info)
			}
			if _, err := br.ReadByte(); err != io.EOF {
				return BackupInfo{}, fmt.Errorf("%w: backup: data after the trailer", ErrCorrupt)
			}
			return c.info, nil
		}
		if n > maxFrame {
			return BackupInfo{}, fmt.Errorf("%w: backup: frame %d: length %d", ErrCorrupt, frame, n)
		}
		if cap(buf) < int(n) {
			buf = make([]byte, n)
		}
		buf = buf[:n]
		if _, err := io.ReadFull(br, buf); err != nil {
			return BackupInfo{}, fmt.Errorf("%w: backup: frame %d: %v (cut short?)", ErrCorrupt, frame, err)
		}
		if crc32.Checksum(buf, castagnoli) != sum {
			return BackupInfo{}, fmt.Errorf("%w: backup: frame %d fails its checksum", ErrCorrupt, frame)
		}
		list := &pb.KVList{}
		if err := proto.Unmarshal(buf, list); err != nil {
			return BackupInfo{}, fmt.Errorf("%w: backup: frame %d does not decode: %v", ErrCorrupt, frame, err)
		}
		if err := c.add(list); err != nil {
			return BackupInfo{}, fmt.Errorf("backup: frame %d: %w", frame, err)
		}
		if fn != nil {
			if err := fn(list); err != nil {
				return BackupInfo{}, err
			}
		}
	}
}

// CheckBackup reads a backup and checks it (frames, record seals,
// trailer) without restoring it.
func CheckBackup(r io.Reader) (BackupInfo, error) {
	return readBackup(r, nil)
}

// Restore writes the backup read from r into dir, a new data directory
// (it must not exist or be empty), and then opens and closes it as the
// server would, so that every check of Open has passed when it returns.
// On failure it removes what it wrote.
func Restore(dir string, r io.Reader, opts ...Option) (info BackupInfo, err error) {
	created := false
	switch entries, err := os.ReadDir(dir); {
	case errors.Is(err, fs.ErrNotExist):
		created = true
	case err != nil:
		return BackupInfo{}, fmt.Errorf("storage/embedded: restore: %w", err)
	case len(entries) > 0:
		return BackupInfo{}, fmt.Errorf("storage/embedded: restore into %s: the directory is not empty (restore into a new one)", dir)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return BackupInfo{}, fmt.Errorf("storage/embedded: restore: %w", err)
	}
	defer func() {
		if err != nil {
			if created {
				os.RemoveAll(dir)
			} else {
				clearDir(dir)
			}
		}
	}()
	db, err := bdb.Open(bdb.DefaultOptions(dir).WithLogger(nil))
	if err != nil {
		return BackupInfo{}, fmt.Errorf("storage/embedded: restore: %w", err)
	}
	loader := db.NewKVLoader(16)
	info, err = readBackup(r, func(list *pb.KVList) error {
		for _, kv := range list.Kv {
			if err := loader.Set(kv); err != nil {
				return err
			}
		}
		return nil
	})
	if err == nil {
		err = loader.Finish()
	}
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return BackupInfo{}, fmt.Errorf("storage/embedded: restore: %w", err)
	}
	s, err := Open(dir, opts...)
	if err != nil {
		return BackupInfo{}, fmt.Errorf("storage/embedded: restore: the restored directory does not open: %w", err)
	}
	got := s.loaded
	var tombs uint64
	verr := s.view(context.Background(), func(txn *bdb.Txn) error {
		tombs = countKeys(txn, []byte{prefixTombstone})
		return nil
	})
	if cerr := s.Close(); verr == nil {
		verr = cerr
	}
	if verr != nil {
		return BackupInfo{}, fmt.Errorf("storage/embedded: restore: %w", verr)
	}
	// Tombstones may expire between the backup and now; nothing else may
	// differ.
	if got.globals != info.Globals || got.branches != info.Branches || tombs > info.Tombstones {
		return BackupInfo{}, fmt.Errorf("storage/embedded: restore: %w: the backup holds %d globals, %d branches; the restored directory %d, %d",
			ErrCorrupt, info.Globals, info.Branches, got.globals, got.branches)
	}
	return info, nil
}

// clearDir removes what is in dir.
func clearDir(dir string) {
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		os.RemoveAll(dir + string(os.PathSeparator) + e.Name())
	}
}

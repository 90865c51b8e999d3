package tc

import (
	"context"
	"fmt"
	"io"

	"github.com/xact-io/xact/protocol"
	"github.com/xact-io/xact/protocol/xactpb"
	"github.com/xact-io/xact/storage/embedded"
)

// backuper is a store that writes a consistent copy of itself while it
// serves (storage/embedded).
type backuper interface {
	Backup(ctx context.Context, w io.Writer) (embedded.BackupInfo, error)
}

// backupChunk is the most a BackupChunk carries, well under gRPC's
// default 4 MiB message limit.
const backupChunk = 1 << 20

// Backup streams a backup of the store (`xact store backup --server`).
// Another process cannot open the data directory while the server runs,
// so the server writes it; the snapshot is consistent (one read
// timestamp) and the server keeps serving.
func (a *admin) Backup(_ *xactpb.BackupRequest, stream xactpb.Admin_BackupServer) error {
	b, ok := a.s.store.(backuper)
	if !ok {
		return fmt.Errorf("tc: backup: a %T store cannot be backed up: %w", a.s.store, protocol.ErrInvalidArgument)
	}
	a.s.log.Info("operator: backup")
	w := &chunkWriter{send: func(p []byte) error { return stream.Send(&xactpb.BackupChunk{Data: p}) }}
	info, err := b.Backup(stream.Context(), w)
	if err == nil {
		err = w.flush()
	}
	if err != nil {
		a.s.log.Warn("backup failed", "err", err)
		return err
	}
	a.s.log.Info("backup sent", "globals", info.Globals, "branches", info.Branches, "tombstones", info.Tombstones, "bytes", w.sent)
	return nil
}

// chunkWriter sends what is written to it in chunks of backupChunk.
type chunkWriter struct {
	send func([]byte) error
	buf  []byte
	sent int64
}

func (w *chunkWriter) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		k := min(len(p), backupChunk-len(w.buf))
		w.buf = append(w.buf, p[:k]...)
		p = p[k:]
		if len(w.buf) == backupChunk {
			if err := w.flush(); err != nil {
				return 0, err
			}
		}
	}
	return n, nil
}

func (w *chunkWriter) flush() error {
	if len(w.buf) == 0 {
		return nil
	}
	if err := w.send(w.buf); err != nil {
		return err
	}
	w.sent += int64(len(w.buf))
	w.buf = make([]byte, 0, backupChunk) // the sent chunk may still be in use
	return nil
}

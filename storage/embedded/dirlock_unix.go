//go:build unix

package embedded

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"

	"github.com/xact-io/xact/storage"
)

// lockFileName is the file the store flocks for as long as it is open.
// Badger holds a lock of its own (a flock on the directory), but reports a
// failure to take it only as text; this one gives callers storage.ErrLocked.
const lockFileName = "xact.lock"

// lockDir takes an exclusive, non-blocking flock on dir's lock file. The
// kernel drops it when the process dies, so a crash never leaves the
// directory locked.
func lockDir(dir string) (unlock func() error, err error) {
	f, err := os.OpenFile(filepath.Join(dir, lockFileName), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("storage/embedded: open lock file: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("storage/embedded: %s: %w", dir, storage.ErrLocked)
		}
		return nil, fmt.Errorf("storage/embedded: lock %s: %w", dir, err)
	}
	return f.Close, nil
}

// dirBusy reports whether another descriptor holds a flock on dir itself,
// which is how Badger locks its directory. Open asks after Badger failed,
// to report a directory held by a plain Badger process as
// storage.ErrLocked too.
func dirBusy(dir string) bool {
	f, err := os.Open(dir)
	if err != nil {
		return false
	}
	defer f.Close()
	err = syscall.Flock(int(f.Fd()), syscall.LOCK_SH|syscall.LOCK_NB)
	if err != nil {
		return errors.Is(err, syscall.EWOULDBLOCK)
	}
	syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
	return false
}

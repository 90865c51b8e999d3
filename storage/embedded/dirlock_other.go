//go:build !unix

package embedded

// lockDir relies on Badger's own directory lock where flock is not
// available; a second Open then fails with Badger's error, which does not
// match storage.ErrLocked.
func lockDir(string) (func() error, error) {
	return func() error { return nil }, nil
}

func dirBusy(string) bool { return false }

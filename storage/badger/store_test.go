package badger

import (
	"testing"

	"github.com/xact-io/xact/storage"
	"github.com/xact-io/xact/storage/storetest"
)

// openTest opens a store in a fresh directory, closed when the test ends.
func openTest(tb testing.TB, opts ...Option) *Store {
	tb.Helper()
	s, err := Open(tb.TempDir(), opts...)
	if err != nil {
		tb.Fatalf("Open = %v", err)
	}
	tb.Cleanup(func() {
		if err := s.Close(); err != nil {
			tb.Errorf("Close = %v", err)
		}
	})
	return s
}

func TestContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storage.Store { return openTest(t) })
}

func BenchmarkStore(b *testing.B) {
	storetest.Bench(b, func(b *testing.B) storage.Store { return openTest(b) })
}

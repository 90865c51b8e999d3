package tc_test

import (
	"testing"

	"go.uber.org/goleak"
)

// Every goroutine the server, its hub, its driver and its store start must
// be gone when the tests end.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

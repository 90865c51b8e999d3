package tc

import (
	"errors"

	"github.com/xact-io/xact/protocol"
)

func asLockConflict(err error, target **protocol.LockConflictError) bool {
	return errors.As(err, target)
}

package tm

import (
	"context"
	"math/rand/v2"
	"time"
)

// backoff is capped exponential backoff with jitter.
type backoff struct {
	base, max time.Duration
}

// delay returns the wait before retry number attempt (0-based): a random
// duration in [d/2, d] where d = min(base*2^attempt, max). The jitter keeps
// many clients that lost the TC at once from coming back in lock step.
func (b backoff) delay(attempt int) time.Duration {
	d := b.max
	if attempt < 32 {
		if e := b.base << attempt; e > 0 && e < b.max {
			d = e
		}
	}
	half := d / 2
	return half + rand.N(d-half+1)
}

// sleep waits for d or until ctx is done, whichever is first.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Package backoff is the one retry schedule of xact: capped exponential
// backoff with jitter, used by the TC between phase-two rounds and by the
// clients between attempts of calls that are safe to repeat.
package backoff

import (
	"context"
	"math/rand/v2"
	"time"
)

// Policy is capped exponential backoff with jitter.
type Policy struct {
	Base, Max time.Duration
}

// Delay returns the wait before retry number attempt (0-based): a random
// duration in [d/2, d] where d = min(Base·2^attempt, Max). The jitter keeps
// many parties that failed at once from coming back in lock step.
func (p Policy) Delay(attempt int) time.Duration {
	d := p.Max
	if attempt < 32 {
		if e := p.Base << attempt; e > 0 && e < p.Max {
			d = e
		}
	}
	half := d / 2
	return half + rand.N(d-half+1)
}

// Sleep waits for d or until ctx is done, whichever is first.
func Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Package backoff is the one retry schedule of xact: capped exponential
// backoff with jitter, used by the TC between phase-two rounds, by the
// clients between attempts of calls that are safe to repeat, by saga steps
// between attempts of their actions, by the TCC fence after a lost race,
// and (at a fixed pace, see Fixed) by AT branches waiting for a global
// lock.
//
//	p := backoff.Policy{Base: 100 * time.Millisecond, Max: 5 * time.Second}
//	err := p.Retry(ctx, protocol.Retryable, nil, func(attempt int) error {
//		return call(ctx)
//	})
package backoff

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"
)

// Policy is capped exponential backoff with jitter.
type Policy struct {
	Base, Max time.Duration
}

// Fixed returns the policy of a loop that polls at a steady pace: every
// wait is drawn from [2/3, 4/3] of every, so waits average every and
// pollers that started together drift apart.
func Fixed(every time.Duration) Policy {
	d := every * 4 / 3
	return Policy{Base: d, Max: d}
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

// Wait waits for Delay(attempt) or until ctx is done; it returns ctx's
// error in the latter case.
func (p Policy) Wait(ctx context.Context, attempt int) error {
	return Sleep(ctx, p.Delay(attempt))
}

// Retry calls op with attempt 0, 1, … until it returns nil or an error
// that retryable rejects, waiting Delay(attempt) after each failed attempt.
// onWait, if not nil, is told of each wait before it starts. Retry returns
// nil, op's last error, or, when ctx ends during a wait, a *GiveUpError
// holding op's last error. Only for operations that are safe to repeat.
func (p Policy) Retry(ctx context.Context, retryable func(error) bool, onWait func(attempt int, wait time.Duration, err error), op func(attempt int) error) error {
	for attempt := 0; ; attempt++ {
		err := op(attempt)
		if err == nil || !retryable(err) {
			return err
		}
		d := p.Delay(attempt)
		if onWait != nil {
			onWait(attempt, d, err)
		}
		if Sleep(ctx, d) != nil {
			return &GiveUpError{Attempts: attempt + 1, Err: err}
		}
	}
}

// GiveUpError is Retry's error when its context ended while it waited to
// try again.
type GiveUpError struct {
	// Attempts is how many times op ran.
	Attempts int
	// Err is the last attempt's error.
	Err error
}

func (e *GiveUpError) Error() string {
	return fmt.Sprintf("gave up after %d attempts: %v", e.Attempts, e.Err)
}

// Unwrap returns the last attempt's error.
func (e *GiveUpError) Unwrap() error { return e.Err }

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

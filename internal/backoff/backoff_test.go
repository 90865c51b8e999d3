package backoff

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestDelay(t *testing.T) {
	p := Policy{Base: 10 * time.Millisecond, Max: 80 * time.Millisecond}
	for attempt, want := range []time.Duration{10, 20, 40, 80, 80} {
		want *= time.Millisecond
		for i := 0; i < 100; i++ {
			if d := p.Delay(attempt); d < want/2 || d > want {
				t.Fatalf("Delay(%d) = %v, want within [%v, %v]", attempt, d, want/2, want)
			}
		}
	}
	if d := p.Delay(1000); d < 40*time.Millisecond || d > 80*time.Millisecond {
		t.Errorf("Delay(1000) = %v, want the cap", d)
	}
}

func TestSleepCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := Sleep(ctx, time.Hour); err != context.Canceled {
		t.Errorf("Sleep(cancelled) = %v, want context.Canceled", err)
	}
}

func TestFixed(t *testing.T) {
	p := Fixed(30 * time.Millisecond)
	var sum time.Duration
	const n = 3000
	for i := 0; i < n; i++ {
		d := p.Delay(i % 40)
		if d < 20*time.Millisecond || d > 40*time.Millisecond {
			t.Fatalf("Fixed(30ms).Delay(%d) = %v, want within [20ms, 40ms]", i%40, d)
		}
		sum += d
	}
	if mean := sum / n; mean < 29*time.Millisecond || mean > 31*time.Millisecond {
		t.Errorf("Fixed(30ms) mean delay = %v, want about 30ms", mean)
	}
}

func TestRetry(t *testing.T) {
	errAgain, errFinal := errors.New("again"), errors.New("final")
	p := Policy{Base: time.Microsecond, Max: time.Microsecond}
	retryable := func(err error) bool { return err == errAgain }
	for _, tt := range []struct {
		name    string
		results []error // op's results, in order
		want    error
		calls   int
	}{
		{"first", []error{nil}, nil, 1},
		{"after retries", []error{errAgain, errAgain, nil}, nil, 3},
		{"answer", []error{errAgain, errFinal}, errFinal, 2},
	} {
		t.Run(tt.name, func(t *testing.T) {
			calls, waits := 0, 0
			err := p.Retry(context.Background(), retryable, func(attempt int, _ time.Duration, err error) {
				if attempt != waits || err != errAgain {
					t.Errorf("onWait(%d, _, %v), want (%d, _, again)", attempt, err, waits)
				}
				waits++
			}, func(attempt int) error {
				if attempt != calls {
					t.Errorf("op(%d), want op(%d)", attempt, calls)
				}
				calls++
				return tt.results[attempt]
			})
			if err != tt.want || calls != tt.calls || waits != calls-1 {
				t.Errorf("Retry = %v after %d calls, %d waits; want %v after %d calls, %d waits", err, calls, waits, tt.want, tt.calls, tt.calls-1)
			}
		})
	}
}

func TestRetryGivesUp(t *testing.T) {
	errAgain := errors.New("again")
	ctx, cancel := context.WithCancel(context.Background())
	calls := 0
	err := Policy{Base: time.Hour, Max: time.Hour}.Retry(ctx, func(error) bool { return true }, nil, func(int) error {
		calls++
		cancel() // ends the first wait at once
		return errAgain
	})
	var g *GiveUpError
	if !errors.As(err, &g) || g.Attempts != 1 || !errors.Is(err, errAgain) {
		t.Fatalf("Retry with a cancelled wait = %v, want a *GiveUpError after 1 attempt wrapping the last error", err)
	}
	if got, want := err.Error(), "gave up after 1 attempts: again"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}

package backoff

import (
	"context"
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

package it

import (
	"context"
	"math/rand/v2"
	"sync"
	"testing"
	"time"
)

// TestPhaseTwoDuplicatesDelays runs AT and TCC transfers, a third of them
// rolled back, while the RMs' link to the TC is slow and jittery (toxiproxy
// latency 100±90 ms each way, against a phase-two timeout of 300 ms, so
// that the TC gives up on answers that are still coming and sends the
// action again) and is cut every second or two (the RMs reconnect, and the
// TC delivers again what it never heard back about). Phase-two messages
// are thus duplicated, delayed and reordered across streams; every effect
// must still happen at most once (I7), and every other invariant hold.
func TestPhaseTwoDuplicatesDelays(t *testing.T) {
	t.Parallel()
	run := 15 * time.Second
	if d := soak(t); d > 0 {
		run = d / 4
	}
	g := newRig(t, "--phase-two-timeout", "300ms").withBank(8, 1000)
	ptc := newProxy(t, g.tc.addr)
	ptc.latency(100, 90)
	workers := []*workerProc{g.worker("w1", ptc.addr(), nil, ""), g.worker("w2", ptc.addr(), nil, "")}

	stop := make(chan struct{})
	var wg sync.WaitGroup
	bounces := 0
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			case <-time.After(time.Second + rand.N(1500*time.Millisecond)):
			}
			ptc.bounce(50*time.Millisecond + rand.N(250*time.Millisecond))
			bounces++
		}
	}()
	var (
		mu   sync.Mutex
		recs []txRec
	)
	deadline := time.Now().Add(run)
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) {
				mode := []string{"at", "tcc"}[rand.IntN(2)]
				from, to := "a", "b"
				if rand.IntN(2) == 0 {
					from, to = to, from
				}
				// AT and TCC keep to their own accounts: TCC writes
				// without AT's global row locks, and an AT rollback
				// would find its rows changed (dirty) and park.
				base := map[string]int64{"at": 1, "tcc": 5}[mode]
				tr := transfer{From: acct{from, base + rand.Int64N(4)}, To: acct{to, base + rand.Int64N(4)}, Amount: 1 + rand.Int64N(20)}
				rec := g.transfer(context.Background(), workers[rand.IntN(2)], mode, tr, rand.IntN(3) == 0, 60*time.Second)
				mu.Lock()
				recs = append(recs, rec)
				mu.Unlock()
			}
		}()
	}
	time.Sleep(time.Until(deadline))
	close(stop)
	wg.Wait()
	ptc.heal()

	r := g.check(recs, true, 30*time.Second)
	r.clean(t)
	var deliveries, dups int64
	for _, w := range workers {
		rep, err := w.call(context.Background(), "/stats", nil)
		if err != nil {
			t.Fatal(err)
		}
		deliveries, dups = deliveries+rep.Deliveries, dups+rep.Duplicates
	}
	kinds := map[string]int{}
	for _, r := range recs {
		if r.err != nil {
			k := kindOf(r.err)
			kinds[k]++
		}
	}
	commit, rollback, unknown := outcomes(recs)
	summary(t, "duplicates and delays: %d transactions (%d committed, %d rolled back, %d unknown; failures %v); %d phase-two deliveries, %d of them repeats; %d reconnects; invariants %s",
		len(recs), commit, rollback, unknown, kinds, deliveries, dups, bounces, verdict(r))
	if commit == 0 || rollback == 0 {
		t.Errorf("the run exercised too little: %d commits, %d rollbacks", commit, rollback)
	}
	if dups == 0 {
		t.Errorf("no phase-two action was delivered twice: the test exercised no duplicate")
	}
}

package it

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/xact-io/xact/internal/mysqltest"
)

// TestKillDatabase kills mariadbd with SIGKILL twice while AT transfers
// run, and restarts it on the same data directory and port. It uses a
// private server (the shared one must stay up for the other tests) with
// InnoDB's durable flush at commit, as a production database would run:
// a local commit the database acknowledged survives the crash, and one in
// flight is rolled back by its crash recovery. Afterwards every invariant
// holds.
func TestKillDatabase(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	srv, err := mysqltest.Start(ctx, mysqltest.Options{Dir: dir, Durable: true})
	if err != nil {
		t.Fatal(err)
	}
	var smu sync.Mutex
	t.Cleanup(func() {
		smu.Lock()
		defer smu.Unlock()
		if err := srv.Stop(context.Background()); err != nil {
			t.Error(err)
		}
	})
	g := newRig(t)
	g.bank = newBankOn(t, srv.Config(), 16, 1000)
	workers := []*workerProc{g.worker("w1", "", nil, ""), g.worker("w2", "", nil, "")}

	var (
		mu    sync.Mutex
		recs  []txRec
		wg    sync.WaitGroup
		kills int
	)
	stop := make(chan struct{})
	for i := 0; i < 6; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				from, to := "a", "b"
				if rand.IntN(2) == 0 {
					from, to = to, from
				}
				tr := transfer{From: acct{from, 1 + rand.Int64N(16)}, To: acct{to, 1 + rand.Int64N(16)}, Amount: 1 + rand.Int64N(50)}
				rec := g.transfer(ctx, workers[rand.IntN(2)], "at", tr, rand.IntN(5) == 0, 10*time.Second)
				mu.Lock()
				recs = append(recs, rec)
				mu.Unlock()
				if rec.err != nil {
					time.Sleep(20 * time.Millisecond) // do not spin while the database is down
				}
			}
		}()
	}
	committedBefore := func() int {
		mu.Lock()
		defer mu.Unlock()
		n := 0
		for _, r := range recs {
			if r.outcome == "commit" {
				n++
			}
		}
		return n
	}
	for round := 0; round < 2; round++ {
		// Let work commit between the crashes, whatever the machine's pace.
		want := committedBefore() + 20
		if !waitFor(120*time.Second, func() bool { return committedBefore() >= want }) {
			t.Fatalf("no progress before crash %d", round+1)
		}
		killMariaDB(t, dir)
		kills++
		time.Sleep(500 * time.Millisecond)
		smu.Lock()
		srv.Stop(ctx) // reaps the killed process
		srv, err = mysqltest.Start(ctx, mysqltest.Options{Dir: dir, Port: srv.Port(), Durable: true})
		smu.Unlock()
		if err != nil {
			t.Fatalf("restart mariadbd after SIGKILL: %v", err)
		}
	}
	lastFault := time.Now()
	want := committedBefore() + 20
	if !waitFor(120*time.Second, func() bool { return committedBefore() >= want }) {
		t.Error("no progress after the last restart")
	}
	close(stop)
	wg.Wait()

	r := settle(t, g.admin, time.Until(lastFault.Add(30*time.Second)))
	r = append(r, g.bank.check(g.admin, g.coord, recs, true)...)
	r = append(r, g.cliViews()...)
	commit, rollback, unknown := outcomes(recs)
	t.Logf("%d transactions (%d committed, %d rolled back, %d unknown), mariadbd killed %d times", len(recs), commit, rollback, unknown, kills)
	r.clean(t)
}

// killMariaDB sends SIGKILL to the mariadbd serving dir (its pid file,
// checked against its command line) and waits until it is gone.
func killMariaDB(t *testing.T, dir string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "mariadbd.pid"))
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	cmd, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil || !strings.Contains(string(cmd), dir) {
		t.Fatalf("process %d is not the mariadbd of %s (%v)", pid, dir, err)
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if !waitFor(30*time.Second, func() bool { return syscall.Kill(pid, 0) != nil }) {
		t.Fatalf("mariadbd %d survived SIGKILL", pid)
	}
}

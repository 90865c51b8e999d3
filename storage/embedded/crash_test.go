package embedded

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/xact-io/xact/storage"
)

// crashDirEnv tells the test binary, re-executed by TestCrashDurability, to
// run the writer in TestCrashChild against that directory.
const crashDirEnv = "XACT_BADGER_CRASH_DIR"

const crashAckPrefix = "ack "

// TestCrashChild is the child half of TestCrashDurability: it writes global
// transactions from several goroutines and prints each XID after the store
// acknowledged all its changes, until it is killed (or a bound is hit).
func TestCrashChild(t *testing.T) {
	dir := os.Getenv(crashDirEnv)
	if dir == "" {
		t.Skip("helper process for TestCrashDurability")
	}
	s, err := Open(dir)
	if err != nil {
		fmt.Println("open:", err)
		os.Exit(2)
	}
	ctx := context.Background()
	now := time.Now()
	var (
		out  sync.Mutex
		next atomic.Int64
		wg   sync.WaitGroup
	)
	stop := time.Now().Add(20 * time.Second)
	for range 16 {
		wg.Go(func() {
			for time.Now().Before(stop) {
				xid := fmt.Sprintf("crash-%d", next.Add(1))
				g := &storage.Global{XID: xid, Status: begin, Deadline: now.Add(time.Hour), NextAt: now.Add(time.Hour)}
				if err := s.CreateGlobal(ctx, g, storage.Durable); err != nil {
					fmt.Println("create:", err)
					os.Exit(2)
				}
				b := &storage.Branch{XID: xid, Resource: "r", LockKeys: []string{xid}}
				if _, err := addBranch(ctx, s, b); err != nil {
					fmt.Println("register:", err)
					os.Exit(2)
				}
				if _, err := s.UpdateGlobal(ctx, xid, func(g *storage.Global) error {
					g.Status = committing
					return nil
				}, storage.Durable); err != nil {
					fmt.Println("update:", err)
					os.Exit(2)
				}
				// One write call per line: a kill never splits a line.
				out.Lock()
				os.Stdout.WriteString(crashAckPrefix + xid + "\n")
				out.Unlock()
			}
		})
	}
	wg.Wait()
	s.Close()
}

// TestCrashDurability SIGKILLs a process that is writing through the store
// and checks that every change it acknowledged is there after reopening.
// (A process kill keeps the page cache, so this checks acknowledgement
// order and recovery; fsync itself is covered by the WAL sync design and
// cannot be tested without cutting power.)
func TestCrashDurability(t *testing.T) {
	if testing.Short() {
		t.Skip("re-executes the test binary")
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashDirEnv+"="+dir)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting child: %v", err)
	}
	const killAfter = 500
	var acked []string
	var other []string
	killed := false
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		line := sc.Text()
		xid, ok := strings.CutPrefix(line, crashAckPrefix)
		if !ok {
			other = append(other, line)
			continue
		}
		acked = append(acked, xid)
		if len(acked) == killAfter && !killed {
			if err := cmd.Process.Kill(); err != nil {
				t.Fatalf("kill: %v", err)
			}
			killed = true
		}
	}
	werr := cmd.Wait()
	if !killed {
		t.Fatalf("child exited after %d acks (%v), before it could be killed; output: %q", len(acked), werr, other)
	}
	t.Logf("child killed after %d acknowledged transactions", len(acked))

	s := openDir(t, dir)
	ctx := context.Background()
	for _, xid := range acked {
		g, err := s.GetGlobal(ctx, xid)
		if err != nil {
			t.Errorf("GetGlobal(%s) after crash = %v, want the acknowledged global", xid, err)
			continue
		}
		if g.Status != committing || g.BranchSeq != 1 {
			t.Errorf("GetGlobal(%s) after crash = {Status:%v BranchSeq:%d}, want {Status:%v BranchSeq:1}", xid, g.Status, g.BranchSeq, committing)
		}
		locks, err := locksOf(ctx, s, xid)
		if err != nil || len(locks) != 1 || locks[0].Key != xid {
			t.Errorf("Locks(%s) after crash = %+v, %v, want its one lock", xid, locks, err)
		}
	}
	// The store is usable: new transactions go in.
	if err := s.CreateGlobal(ctx, &storage.Global{XID: "after-crash", Status: begin}, storage.Durable); err != nil {
		t.Errorf("CreateGlobal after crash recovery = %v", err)
	}
}

package it

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"os/exec"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/xact-io/xact/internal/mysqltest"
	"github.com/xact-io/xact/internal/pgtest"
	"github.com/xact-io/xact/protocol"
	"github.com/xact-io/xact/protocol/xactpb"
	"github.com/xact-io/xact/tm"
)

// TestClusterBank is the bank on a cluster: three coordinators (a, b, c)
// share one store, and two bank workers, given the list of all three,
// attach their RMs to every one (rm.WithDialOptions); the test's TM
// balances its calls over them. 12 TMs run AT, TCC and saga transfers
// (a third each, on separate thirds of the accounts), a fifth rolled back
// on purpose, while faults come one at a time: a random
// coordinator is killed with SIGKILL and restarted, c is partitioned from
// the store (toxiproxy in front of its DSN) for twice its lease, and (on
// MariaDB) mariadbd itself, which holds the store and both banks, is
// killed and restarted. Afterwards every invariant of the bank holds (see
// bank.check: the total, I1, I2 against what each TM was told, I5 no lock,
// I6 no undo row, I7, I9 sagas compensated last step first, I11 nothing
// unfinished), and no global was driven by
// two coordinators at once: every phase-two action a coordinator sends is
// logged with its node id and epoch, and for each global the actions of
// one (node, epoch) all come before those of the next.
//
// The store is MariaDB (a private, durable server this test starts, as
// it kills it) and, in a smaller run without the database kill,
// PostgreSQL. `make soak` runs it for its DURATION with the gaps
// of 7-15 s between faults.
func TestClusterBank(t *testing.T) {
	t.Run("mysql", func(t *testing.T) {
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
			srv.Stop(context.Background())
		})
		cfg := srv.Config()
		admin := mysqltest.Open(t, cfg)
		if _, err := admin.Exec("CREATE DATABASE xact_store"); err != nil {
			t.Fatal(err)
		}
		admin.Close()
		cfg.DBName = "xact_store"
		killDB := func() {
			killMariaDB(t, dir)
			smu.Lock()
			defer smu.Unlock()
			srv.Stop(ctx) // reaps the killed process
			if srv, err = mysqltest.Start(ctx, mysqltest.Options{Dir: dir, Port: srv.Port(), Durable: true}); err != nil {
				t.Errorf("restart mariadbd after SIGKILL: %v", err)
			}
		}
		clusterBank(t, "mysql", cfg.FormatDSN(), cfg.Addr, func(proxied string) string {
			c := cfg.Clone()
			c.Addr = proxied
			return c.FormatDSN()
		}, newBankOn(t, srv.Config(), 32, 1000), killDB)
	})
	t.Run("postgres", func(t *testing.T) {
		t.Parallel()
		dsn := pgtest.DSN(t)
		addr := pgAddr(t, dsn)
		clusterBank(t, "postgres", dsn, addr, func(proxied string) string {
			return strings.Replace(dsn, addr, proxied, 1)
		}, newBank(t, 32, 1000), nil)
	})
}

// pgAddr is the host:port of a postgres:// DSN.
func pgAddr(t *testing.T, dsn string) string {
	m := regexp.MustCompile(`@([^/]+)/`).FindStringSubmatch(dsn)
	if m == nil {
		t.Fatalf("no host:port in %q", dsn)
	}
	return m[1]
}

// clusterBank runs the bank on three coordinators of a store (dsn at
// dbAddr; proxied(addr) is the DSN through a proxy at addr) under faults;
// killDB, if not nil, kills the database and restarts it.
func clusterBank(t *testing.T, store, dsn, dbAddr string, proxied func(string) string, bk *bank, killDB func()) {
	const lease = 2 * time.Second
	run, gap := 24*time.Second, [2]time.Duration{3 * time.Second, 5 * time.Second}
	if store == "postgres" {
		run = 14 * time.Second
	}
	if d := soak(t); d > 0 {
		run, gap = d, [2]time.Duration{7 * time.Second, 15 * time.Second}
	}
	if out, err := exec.Command(xactBin, "sql", "migrate", "--store", store, "--store-dsn", dsn).CombinedOutput(); err != nil {
		t.Fatalf("xact sql migrate: %v\n%s", err, out)
	}
	pstore := newProxy(t, dbAddr)
	args := func(id, dsn string) []string {
		return append([]string{"--store", store, "--store-dsn", dsn, "--lease", lease.String(), "--node-id", id}, faultTCArgs...)
	}
	var (
		nmu   sync.Mutex
		nodes = []*tcProc{
			startTC(t, t.TempDir(), "127.0.0.1:0", args("a", dsn)...),
			startTC(t, t.TempDir(), "127.0.0.1:0", args("b", dsn)...),
			startTC(t, t.TempDir(), "127.0.0.1:0", args("c", proxied(pstore.addr()))...),
		}
		gone []*tcProc // killed nodes, whose logs are checked too
	)
	list := nodes[0].addr + "," + nodes[1].addr + "," + nodes[2].addr
	target, topts, err := protocol.Target(list)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := grpc.NewClient(target, append(append(protocol.DialOptions(), grpc.WithTransportCredentials(insecure.NewCredentials())), topts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	g := &rig{t: t, tc: nodes[0], conn: conn, bank: bk,
		mgr:   tm.New(conn, tm.WithDecisionTimeout(60*time.Second), tm.WithBackoff(20*time.Millisecond, 300*time.Millisecond)),
		admin: xactpb.NewAdminClient(conn), coord: xactpb.NewCoordinatorClient(conn)}
	workers := []*workerProc{g.worker("w1", list, nil, ""), g.worker("w2", list, nil, "")}
	// Every worker attaches to every coordinator before the load starts,
	// so that a global decided anywhere finds its RMs.
	for _, w := range workers {
		var got []string
		if !waitFor(30*time.Second, func() bool {
			rep, err := w.call(context.Background(), "/stats", nil)
			got = rep.Coordinators
			return err == nil && len(got) == 3
		}) {
			t.Fatalf("worker %s is attached to %v, want a, b and c", w.cfg.ClientID, got)
		}
	}

	var (
		recMu                      sync.Mutex
		recs                       []txRec
		wg                         sync.WaitGroup
		kills, partitions, dbKills atomic.Int64
	)
	// The load runs until the faults end: at least run, and until each
	// kind of fault happened once, however slow the machine.
	deadline := time.Now().Add(run)
	faultsDone := make(chan struct{})
	loading := func() bool {
		select {
		case <-faultsDone:
			return false
		default:
			return true
		}
	}
	for i := 0; i < 12; i++ {
		wg.Go(func() {
			for loading() {
				from, to := "a", "b"
				if rand.IntN(2) == 0 {
					from, to = to, from
				}
				// AT's global locks isolate AT writers from each other
				// only (as in Seata: a write outside AT must take them
				// with @GlobalLock), and a saga's steps are not isolated
				// at all, so each mode moves money within its own third
				// of the accounts: AT the first, TCC the second, saga the
				// third.
				third := int64(bk.accounts / 3)
				m := rand.IntN(3)
				mode, base := []string{"at", "tcc", "saga"}[m], 1+int64(m)*third
				tr := transfer{From: acct{from, base + rand.Int64N(third)}, To: acct{to, base + rand.Int64N(third)}, Amount: 1 + rand.Int64N(100)}
				rec := g.transfer(context.Background(), workers[rand.IntN(2)], mode, tr, rand.IntN(5) == 0, 10*time.Second)
				recMu.Lock()
				recs = append(recs, rec)
				recMu.Unlock()
				if rec.err != nil {
					time.Sleep(20 * time.Millisecond) // do not spin through an outage
				}
			}
		})
	}
	var lastFault time.Time
	wg.Go(func() {
		defer close(faultsDone)
		faults := []string{"node", "db", "partition", "node"}
		if killDB == nil {
			faults = []string{"node", "partition", "node"}
		}
		for i := 0; ; i++ {
			wait := gap[0] + rand.N(gap[1]-gap[0])
			if i >= len(faults)-1 && time.Now().Add(wait).After(deadline) {
				break // every kind happened, and the run is over
			}
			time.Sleep(wait)
			switch faults[i%len(faults)] {
			case "node":
				j := rand.IntN(3)
				nmu.Lock()
				old := nodes[j]
				nmu.Unlock()
				old.kill()
				time.Sleep(200*time.Millisecond + rand.N(800*time.Millisecond))
				// The restarted node waits for its old lease to run out.
				nw := old.restart()
				nmu.Lock()
				gone = append(gone, old)
				nodes[j] = nw
				nmu.Unlock()
				kills.Add(1)
			case "partition":
				if rand.IntN(2) == 0 {
					pstore.cutOff()
				} else {
					pstore.blackhole()
				}
				time.Sleep(2 * lease)
				pstore.heal()
				partitions.Add(1)
			case "db":
				killDB()
				dbKills.Add(1)
			}
			lastFault = time.Now()
		}
	})
	wg.Wait()
	if lastFault.IsZero() {
		lastFault = time.Now()
	}

	r := settle(t, g.admin, time.Until(lastFault.Add(45*time.Second)))
	r = append(r, bk.check(g.admin, g.coord, recs, true)...)
	r = append(r, g.cliViews()...)
	nmu.Lock()
	procs := append(append([]*tcProc{}, gone...), nodes...)
	nmu.Unlock()
	drivers, takeovers := oneDriverAtATime(procs, &r)

	commit, rollback, unknown := outcomes(recs)
	kinds := map[string]int{}
	byMode := map[string][]txRec{}
	for _, rec := range recs {
		byMode[rec.mode] = append(byMode[rec.mode], rec)
		if rec.err != nil {
			k := rec.mode + "/" + rec.outcome + "/" + kindOf(rec.err)
			if kinds[k] == 0 {
				t.Logf("%s: first %s: %v", store, k, rec.err)
			}
			kinds[k]++
		}
	}
	t.Logf("%s: errors by mode/outcome/kind: %v", store, kinds)
	t.Logf("%s: %d transactions (%d committed, %d rolled back, %d unknown); %d node kills, %d store partitions of node c, %d database kills; %d phase-two actions logged, %d globals driven by more than one (node, epoch)",
		store, len(recs), commit, rollback, unknown, kills.Load(), partitions.Load(), dbKills.Load(), drivers, takeovers)
	for _, mode := range []string{"at", "tcc", "saga"} {
		c, rb, u := outcomes(byMode[mode])
		t.Logf("%s: %s: %d transactions (%d committed, %d rolled back, %d unknown)", store, mode, len(byMode[mode]), c, rb, u)
		if c == 0 || rb == 0 {
			t.Errorf("the run exercised too little %s: %d commits, %d rollbacks", mode, c, rb)
		}
	}
	r.clean(t)
	if commit == 0 || rollback == 0 || kills.Load() == 0 || partitions.Load() == 0 || killDB != nil && dbKills.Load() == 0 || drivers == 0 {
		t.Errorf("the run exercised too little: %d commits, %d rollbacks, %d node kills, %d store partitions, %d database kills, %d actions logged",
			commit, rollback, kills.Load(), partitions.Load(), dbKills.Load(), drivers)
	}
}

// actionLine is a coordinator's log line for one phase-two action
// (tc/phasetwo.go, at debug level).
var actionLine = regexp.MustCompile(`^time=(\S+) level=DEBUG msg="phase two action" xid=(\S+) branch_id=\d+ kind=\S+ node_id=(\S+) epoch=(\d+)`)

// oneDriverAtATime checks, from the coordinators' logs, that for each
// global the phase-two actions of one driver (node id, epoch) all come
// before those of the next: no global was driven by two at once. It
// returns how many actions it read and how many globals had more than one
// driver.
func oneDriverAtATime(procs []*tcProc, r *report) (actions, takeovers int) {
	type span struct {
		driver      string
		first, last time.Time
	}
	byXID := map[string]map[string]*span{}
	for _, p := range procs {
		sc := bufio.NewScanner(strings.NewReader(p.log()))
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			m := actionLine.FindStringSubmatch(sc.Text())
			if m == nil {
				continue
			}
			at, err := time.Parse(time.RFC3339Nano, m[1])
			if err != nil {
				r.add("driver", "unreadable time in %q: %v", sc.Text(), err)
				continue
			}
			actions++
			epoch, _ := strconv.Atoi(m[4])
			driver := fmt.Sprintf("%s/%d", m[3], epoch)
			spans := byXID[m[2]]
			if spans == nil {
				spans = map[string]*span{}
				byXID[m[2]] = spans
			}
			s := spans[driver]
			if s == nil {
				spans[driver] = &span{driver, at, at}
				continue
			}
			if at.Before(s.first) {
				s.first = at
			}
			if at.After(s.last) {
				s.last = at
			}
		}
	}
	for xid, spans := range byXID {
		if len(spans) < 2 {
			continue
		}
		takeovers++
		var ss []*span
		for _, s := range spans {
			ss = append(ss, s)
		}
		sort.Slice(ss, func(i, j int) bool { return ss[i].first.Before(ss[j].first) })
		for i := 1; i < len(ss); i++ {
			if ss[i-1].last.After(ss[i].first) {
				r.add("driver", "%s was driven by %s until %s and by %s from %s", xid,
					ss[i-1].driver, ss[i-1].last.Format(time.RFC3339Nano), ss[i].driver, ss[i].first.Format(time.RFC3339Nano))
			}
		}
	}
	return actions, takeovers
}

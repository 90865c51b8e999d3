package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/pprof"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"

	"github.com/xact-io/xact/protocol/xactpb"
	"github.com/xact-io/xact/rm"
	"github.com/xact-io/xact/rm/saga"
	"github.com/xact-io/xact/rm/tcc"
	"github.com/xact-io/xact/tm"
)

// benchResult is what `xact bench` prints.
type benchResult struct {
	Mode        string  `json:"mode"`
	Branches    int     `json:"branches"`
	Concurrency int     `json:"concurrency"`
	Seconds     float64 `json:"seconds"`
	Committed   int64   `json:"committed"`
	Errors      int64   `json:"errors"`
	TxPerSec    float64 `json:"tx_per_sec"`
	P50Ms       float64 `json:"p50_ms"`
	P99Ms       float64 `json:"p99_ms"`
	MaxMs       float64 `json:"max_ms"`
	FirstError  string  `json:"first_error,omitempty"`
}

const (
	// benchStartTimeout bounds the wait for the coordinator to welcome the
	// bench's RM.
	benchStartTimeout = 10 * time.Second
	// benchDrain is how long the transactions in flight at the end of the
	// run get to finish before they count as errors.
	benchDrain = 3 * time.Second
)

// noop is the phase-two handler of the benchmark's branches.
type noop struct{ commits, rollbacks atomic.Int64 }

func (n *noop) Commit(context.Context, rm.Action) error   { n.commits.Add(1); return nil }
func (n *noop) Rollback(context.Context, rm.Action) error { n.rollbacks.Add(1); return nil }

func benchCmd(ctx context.Context, args []string, out io.Writer) error {
	var cf clientFlags
	fs := newFlagSet("xact bench", "[flags]",
		"Runs global transactions with no-op branches against a coordinator for\n--duration and prints the rate and latencies. Each transaction that fails,\nand each one still without an answer shortly after the run, counts as an\nerror.", out)
	cf.register(fs)
	branches := fs.Int("branches", 2, "branches per global transaction")
	concurrency := fs.Int("concurrency", 16, "concurrent global transactions")
	var duration, warmup time.Duration
	durationVar(fs, &duration, "duration", 10*time.Second, "how long to measure")
	durationVar(fs, &warmup, "warmup", time.Second, "run this long before measuring")
	conns := fs.Int("conns", 1, "gRPC connections to the coordinator (one batches best)")
	cpuProfile := fs.String("cpuprofile", "", "write the bench process's CPU profile to this `file`")
	mode := fs.String("mode", "at", "at (no-op AT branches), tcc (no-op TCC resources) or saga (no-op steps)")
	traced := fs.Bool("trace", false, "record the clients' spans (OpenTelemetry SDK, batched, then dropped), to measure what tracing costs; OTEL_TRACES_EXPORTER=discard does the same for the server")
	if pos, err := parseFlags(fs, args); err != nil {
		return err
	} else if len(pos) > 0 {
		return fmt.Errorf("unexpected argument %q", pos[0])
	}
	if *branches < 0 || *concurrency < 1 || duration <= 0 || warmup < 0 || *conns < 1 {
		return usagef(fs.Name(), "need --branches >= 0, --concurrency >= 1, --duration > 0, --warmup >= 0, --conns >= 1")
	}
	var runSaga func(ctx context.Context, i int) error // saga mode runs whole sagas
	// --trace: the clients record spans (otel.go).
	tr, err := benchTracing(ctx, *traced)
	if err != nil {
		return err
	}
	defer tr.stop()
	var cc []*grpc.ClientConn
	for i := 0; i < *conns; i++ {
		c, err := cf.dial(fs.Name(), tr.dial...)
		if err != nil {
			return err
		}
		defer c.Close()
		cc = append(cc, c)
	}
	h := &noop{}
	// The RM attaches to every coordinator of a cluster, so that whichever
	// decides a global pushes its phase two.
	creds, err := cf.credentials(fs.Name())
	if err != nil {
		return err
	}
	rmc := rm.New(cc[0], append(tr.rm, rm.WithClientID("xact-bench"), rm.WithDialOptions(creds...))...)
	defer rmc.Close()
	// Phase-one calls spread over the connections; rmc serves phase two.
	tms := make([]*tm.Manager, len(cc))
	rms := make([]*rm.Client, len(cc))
	for i, c := range cc {
		tms[i], rms[i] = tm.New(c, tr.tm...), rmc
		if i > 0 {
			rms[i] = rm.New(c, append(tr.rm, rm.WithClientID("xact-bench-"+strconv.Itoa(i)))...)
			defer rms[i].Close()
		}
	}
	// txFn builds, per connection, the body of one global transaction.
	var txFn func(i, w, seq int) func(ctx context.Context) error
	switch *mode {
	case "at":
		resources := make([]string, *branches)
		for i := range resources {
			resources[i] = "bench-" + strconv.Itoa(i)
			if err := rmc.Serve(resources[i], xactpb.BranchType_BRANCH_TYPE_AT, h); err != nil {
				return err
			}
		}
		txFn = func(i, w, seq int) func(ctx context.Context) error {
			client := rms[i]
			return func(ctx context.Context) error {
				xid, _ := tm.XID(ctx)
				for b, res := range resources {
					key := fmt.Sprintf("bench:%d-%d-%d", w, seq, b)
					if _, err := client.RegisterBranch(ctx, xid, res, xactpb.BranchType_BRANCH_TYPE_AT, []string{key}, nil); err != nil {
						return err
					}
				}
				return nil
			}
		}
	case "tcc":
		// Every connection's RM registers the resources (Try registers
		// through the client it was declared on); rmc serves phase two.
		perConn := make([][]*tcc.Resource[struct{}], len(rms))
		for i, client := range rms {
			for b := 0; b < *branches; b++ {
				res, err := tcc.Register(client, "bench-tcc-"+strconv.Itoa(b), tcc.Funcs[struct{}]{
					Try: func(context.Context, struct{}) error { return nil },
				})
				if err != nil {
					return err
				}
				perConn[i] = append(perConn[i], res)
			}
		}
		txFn = func(i, w, seq int) func(ctx context.Context) error {
			return func(ctx context.Context) error {
				for _, res := range perConn[i] {
					if err := res.Try(ctx, struct{}{}); err != nil {
						return err
					}
				}
				return nil
			}
		}
	case "saga":
		perConn := make([]*saga.Saga[int], len(rms))
		for i, client := range rms {
			var steps []saga.StepDef[int]
			for b := 0; b < *branches; b++ {
				steps = append(steps, saga.Step("step-"+strconv.Itoa(b),
					func(_ context.Context, s int) (int, error) { return s + 1, nil }, nil))
			}
			def, err := saga.Define(tms[i], client, "bench-saga", steps...)
			if err != nil {
				return err
			}
			perConn[i] = def
		}
		runSaga = func(ctx context.Context, i int) error {
			_, err := perConn[i].RunWith(ctx, tm.Options{Name: "bench", Timeout: 30 * time.Second}, 0)
			return err
		}
	default:
		return fmt.Errorf("--mode %q: want at, tcc or saga", *mode)
	}
	// A coordinator that is down or refuses the token is reported before
	// the run, not as a run that hangs.
	sctx, cancel := context.WithTimeout(ctx, benchStartTimeout)
	defer cancel()
	if err := rmc.Start(sctx); err != nil {
		return err
	}
	for _, client := range rms[1:] {
		if client != rmc {
			if err := client.Start(sctx); err != nil {
				return err
			}
		}
	}

	var (
		measuring atomic.Bool
		committed atomic.Int64
		errs      atomic.Int64
		inFlight  atomic.Int64 // transactions begun in the measured window and not returned
		firstErr  atomic.Value
		// countMu: a worker counts its transaction under RLock unless
		// abandoned, which the end of the drain sets under Lock, after
		// which inFlight is final.
		countMu   sync.RWMutex
		abandoned bool
		mu        sync.Mutex
		lat       []time.Duration
		wg        sync.WaitGroup
	)
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	for w := 0; w < *concurrency; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			i := w % len(cc)
			var mine []time.Duration
			for seq := 0; runCtx.Err() == nil; seq++ {
				start := time.Now()
				measured := measuring.Load()
				if measured {
					inFlight.Add(1)
				}
				var err error
				if runSaga != nil {
					err = runSaga(runCtx, i)
				} else {
					err = tms[i].Do(runCtx, tm.Options{Name: "bench", Timeout: 30 * time.Second}, txFn(i, w, seq))
				}
				countMu.RLock()
				if abandoned {
					countMu.RUnlock()
					break
				}
				if measured {
					inFlight.Add(-1)
				}
				switch {
				case err == nil:
					if measuring.Load() { // committed within the window
						committed.Add(1)
						mine = append(mine, time.Since(start))
					}
				case !measured:
					// Begun in the warmup.
				case runCtx.Err() != nil && errors.Is(err, context.Canceled):
					// Cut short by the end of the run.
				default:
					// Counted also when it comes after the window: a
					// transaction begun in it failed.
					errs.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
				}
				countMu.RUnlock()
			}
			mu.Lock()
			lat = append(lat, mine...)
			mu.Unlock()
		}()
	}
	select {
	case <-time.After(warmup):
	case <-ctx.Done():
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	measuring.Store(true)
	began := time.Now()
	select {
	case <-time.After(duration):
	case <-ctx.Done():
	}
	elapsed := time.Since(began)
	measuring.Store(false)
	stop()
	// What the end of the run does not cut short (a commit or rollback
	// decision being asked, which the TM keeps asking while the outcome is
	// unknown) gets benchDrain to answer. One that does not is an error:
	// with a coordinator gone, waiting for the TM to give up would keep the
	// run going for most of a minute and report nothing.
	drained := make(chan struct{})
	go func() {
		wg.Wait()
		close(drained)
	}()
	select {
	case <-drained:
	case <-time.After(benchDrain):
		countMu.Lock()
		abandoned = true
		n := inFlight.Load()
		countMu.Unlock()
		errs.Add(n)
		firstErr.CompareAndSwap(nil, fmt.Sprintf("%d transactions had no outcome %v after the run ended (is the coordinator down?)", n, benchDrain))
		for _, c := range cc {
			c.Close() // fails their calls at once
		}
		<-drained
	}

	slices.Sort(lat)
	q := func(p float64) float64 {
		if len(lat) == 0 {
			return 0
		}
		return float64(lat[min(len(lat)-1, int(p*float64(len(lat))))].Microseconds()) / 1000
	}
	r := benchResult{
		Mode: *mode, Branches: *branches, Concurrency: *concurrency, Seconds: elapsed.Seconds(),
		Committed: committed.Load(), Errors: errs.Load(),
		TxPerSec: float64(committed.Load()) / elapsed.Seconds(),
		P50Ms:    q(0.50), P99Ms: q(0.99), MaxMs: q(1),
	}
	if s, ok := firstErr.Load().(string); ok {
		r.FirstError = s
	}
	if cf.json {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(r)
	}
	fmt.Fprintf(out, "mode=%s branches=%d concurrency=%d duration=%.1fs\n", r.Mode, r.Branches, r.Concurrency, r.Seconds)
	fmt.Fprintf(out, "committed=%d errors=%d  %.0f global tx/s  p50=%.2fms p99=%.2fms max=%.2fms\n",
		r.Committed, r.Errors, r.TxPerSec, r.P50Ms, r.P99Ms, r.MaxMs)
	if r.FirstError != "" {
		fmt.Fprintf(out, "first error: %s\n", r.FirstError)
	}
	return nil
}

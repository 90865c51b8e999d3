package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/xact-io/xact/protocol"
	"github.com/xact-io/xact/protocol/xactpb"
)

// lockedBuffer is a bytes.Buffer the server's goroutines write to.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestServerObservability: `xact server --http-addr --log-format json`
// serves /readyz and /metrics, and logs JSON lines, those about a
// transaction with its XID as xid.
func TestServerObservability(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pr, pw := io.Pipe()
	var stderr lockedBuffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"server", "--store", "memory", "--listen", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--log-format", "json"}, pw, &stderr)
		pw.Close()
	}()
	r := bufio.NewReader(pr)
	line1, err1 := r.ReadString('\n')
	line2, err2 := r.ReadString('\n')
	if err1 != nil || err2 != nil || !strings.HasPrefix(line1, "listening on ") || !strings.HasPrefix(line2, "http on ") {
		cancel()
		t.Fatalf("xact server printed %q, %q (%v, %v); want the gRPC and HTTP addresses", line1, line2, err1, err2)
	}
	go io.Copy(io.Discard, pr)
	addr := strings.TrimSpace(strings.TrimPrefix(line1, "listening on "))
	httpAddr := strings.TrimSpace(strings.TrimPrefix(line2, "http on "))

	get := func(path string) (int, string) {
		resp, err := http.Get("http://" + httpAddr + path)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	deadline := time.Now().Add(10 * time.Second)
	for code, _ := get("/readyz"); code != http.StatusOK; code, _ = get("/readyz") {
		if time.Now().After(deadline) {
			t.Fatalf("/readyz = %d, never 200", code)
		}
		time.Sleep(10 * time.Millisecond)
	}

	conn, err := grpc.NewClient(addr, append(protocol.DialOptions(), grpc.WithTransportCredentials(insecure.NewCredentials()))...)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	begun, err := xactpb.NewCoordinatorClient(conn).Begin(ctx, &xactpb.BeginRequest{TimeoutMs: 60000})
	if err != nil {
		t.Fatalf("Begin: %v", err)
	}
	xid := begun.GetXid()
	if _, err := xactpb.NewAdminClient(conn).ForceRollback(ctx, &xactpb.ForceRequest{Xid: xid}); err != nil {
		t.Fatalf("ForceRollback: %v", err)
	}

	code, body := get("/metrics")
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(strings.NewReader(body))
	if code != http.StatusOK || err != nil {
		t.Fatalf("/metrics = %d, parse: %v", code, err)
	}
	var finished float64
	for _, m := range mfs["xact_globals_finished_total"].GetMetric() {
		finished += m.GetCounter().GetValue()
	}
	if finished != 1 {
		t.Errorf("xact_globals_finished_total = %v, want 1", finished)
	}

	cancel()
	if code := <-done; code != 0 {
		t.Fatalf("xact server exited %d; stderr:\n%s", code, stderr.String())
	}
	found := false
	for _, line := range strings.Split(strings.TrimSpace(stderr.String()), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Errorf("log line is not JSON: %q: %v", line, err)
			continue
		}
		if rec["msg"] == "operator: force rollback" {
			found = true
			if rec["xid"] != xid {
				t.Errorf("log line about %s has xid %v: %q", xid, rec["xid"], line)
			}
		}
	}
	if !found {
		t.Errorf("no JSON log line about the forced rollback; stderr:\n%s", stderr.String())
	}
}

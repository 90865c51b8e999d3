package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/xact-io/xact/tc"
	"github.com/xact-io/xact/tc/tctest"
)

// xact runs one command line and returns its exit code and output. A
// command still running after a minute (a server that should have refused
// its flags) is stopped.
func xact(args ...string) (int, string) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var out bytes.Buffer
	code := run(ctx, args, &out, &out)
	return code, out.String()
}

// TestHelp: every command and command group answers --help with its usage
// and exit code 0, and each subcommand lists only the flags it takes.
func TestHelp(t *testing.T) {
	tests := []struct {
		args    []string
		want    []string
		wantNot []string
	}{
		{[]string{"--help"}, []string{"--json", "XACT_SERVER", "XACT_TOKEN", "xact version"}, nil},
		{[]string{"tx", "--help"}, []string{"xact tx list", "xact tx show XID"}, []string{"unknown subcommand"}},
		{[]string{"tx", "help"}, []string{"xact tx list"}, nil},
		{[]string{"lock", "--help"}, []string{"xact lock list"}, []string{"unknown subcommand"}},
		{[]string{"sql", "--help"}, []string{"undo-log", "tcc-fence"}, []string{"unknown table"}},
		{[]string{"tx", "list", "--help"}, []string{"--status", "--parked", "--limit", "--server", "--token", "--json"}, nil},
		{[]string{"tx", "show", "--help"}, []string{"--server", "--token", "--json"}, []string{"-limit", "-parked", "-status"}},
		{[]string{"tx", "commit", "--help"}, []string{"--server"}, []string{"-limit", "-parked", "-status"}},
		{[]string{"tx", "rollback", "--help"}, []string{"--server"}, []string{"-limit", "-parked", "-status"}},
		{[]string{"lock", "list", "--help"}, []string{"--xid", "--limit"}, nil},
		{[]string{"server", "--help"}, []string{"--default-timeout duration", "XACT_<FLAG>"}, nil},
		{[]string{"bench", "--help"}, []string{"--duration duration"}, nil},
		{[]string{"version", "--help"}, []string{"--json"}, nil},
	}
	for _, tt := range tests {
		code, out := xact(tt.args...)
		if code != 0 {
			t.Errorf("xact %v = %d, want 0; output:\n%s", tt.args, code, out)
		}
		for _, w := range tt.want {
			if !strings.Contains(out, w) {
				t.Errorf("xact %v output does not contain %q:\n%s", tt.args, w, out)
			}
		}
		for _, w := range tt.wantNot {
			if strings.Contains(out, w) {
				t.Errorf("xact %v output contains %q:\n%s", tt.args, w, out)
			}
		}
	}
}

// TestCommandLineErrors: a command line that is wrong as written exits
// with 2 and a short message that says what is wrong in the operator's
// terms (flags, not Config fields), before anything is dialed or opened.
func TestCommandLineErrors(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"tx", "list", "extra-arg"}, `unexpected argument "extra-arg"`},
		{[]string{"tx", "show", "--limit", "5", "XID"}, "-limit"},
		{[]string{"tx", "commit", "--parked", "XID"}, "-parked"},
		{[]string{"tx", "show", "a", "b"}, "exactly one XID"},
		{[]string{"tx", "nope"}, `unknown subcommand "nope"`},
		{[]string{"lock", "nope"}, `unknown subcommand "nope"`},
		{[]string{"lock", "list", "extra"}, `unexpected argument "extra"`},
		{[]string{"tx", "list", "--server", "127.0.0.1"}, "want host:port"},
		{[]string{"lock", "list", "--server", "localhost"}, "want host:port"},
		{[]string{"server", "--default-timeout", "-5s"}, "--default-timeout must be positive, got -5s"},
		{[]string{"server", "--max-timeout", "1s"}, "--default-timeout must not exceed --max-timeout (1s), got 1m0s"},
		{[]string{"server", "--retry-budget", "0", "--keepalive-time", "10ms"},
			"--keepalive-time must be at least 1s, got 10ms\n--retry-budget must be at least 1, got 0"},
		{[]string{"server", "--node-id", "a b"}, `--node-id must be 1-32 characters`},
		{[]string{"server", "--default-timeout", "10"}, "a duration needs a unit: 10s"},
		{[]string{"server", "--gc-percent", "-7"}, "--gc-percent must be positive, got -7"},
		{[]string{"server", "--log-format", "xml"}, `--log-format "xml": want text or json`},
		{[]string{"bench", "--duration", "5"}, "a duration needs a unit"},
	}
	for _, tt := range tests {
		args := tt.args
		timeout := time.Minute
		if args[0] == "server" {
			// Should it start after all: not on the default port and
			// directory, and not for long.
			args = append(args, "--listen", "127.0.0.1:0", "--store", "memory")
			timeout = 3 * time.Second
		}
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		var buf bytes.Buffer
		code := run(ctx, args, &buf, &buf)
		cancel()
		out := buf.String()
		if code != 2 || !strings.Contains(out, tt.want) {
			t.Errorf("xact %v = %d, output %q; want 2 and output containing %q", tt.args, code, out, tt.want)
		}
		if strings.Contains(out, "DefaultTimeout") || strings.Contains(out, "RetryBudget") {
			t.Errorf("xact %v names a Config field: %q", tt.args, out)
		}
		// The errors and a pointer to --help; not the whole usage.
		if n := strings.Count(out, "\n"); n > 3 {
			t.Errorf("xact %v printed %d lines, want the error and a pointer to --help:\n%s", tt.args, n, out)
		}
	}
}

func TestVersion(t *testing.T) {
	code, out := xact("version")
	if code != 0 || !strings.HasPrefix(out, "xact ") || !strings.Contains(out, "go1.") {
		t.Errorf("xact version = %d, %q; want 0 and \"xact <version> ... go1...\"", code, out)
	}
	code, out = xact("version", "--json")
	var b buildInfo
	if err := json.Unmarshal([]byte(out), &b); code != 0 || err != nil || b.Version == "" || b.Go == "" {
		t.Errorf("xact version --json = %d, %q (%v); want JSON with version and go", code, out, err)
	}
}

// TestBenchServerDiesMidRun: a coordinator that goes away during the run
// does not keep the bench going long past --duration (the TM would keep
// asking for the decisions in flight for half a minute), and the
// transactions it cut off count as errors.
func TestBenchServerDiesMidRun(t *testing.T) {
	srv := tctest.Start(t)
	const duration = 3 * time.Second
	type result struct {
		code int
		out  string
	}
	done := make(chan result, 1)
	began := time.Now()
	go func() {
		code, out := xact("bench", "--server", srv.Addr(), "--duration", duration.String(), "--warmup", "0s",
			"--concurrency", "4", "--json")
		done <- result{code, out}
	}()
	time.Sleep(time.Second)
	srv.Stop()
	var r result
	select {
	case r = <-done:
	case <-time.After(duration + benchDrain + 10*time.Second):
		t.Fatalf("xact bench still running %v after it began (--duration %v)", time.Since(began), duration)
	}
	if took := time.Since(began); took > duration+benchDrain+5*time.Second {
		t.Errorf("xact bench took %v, want about --duration %v plus at most %v", took, duration, benchDrain)
	}
	var res benchResult
	if err := json.Unmarshal([]byte(r.out[strings.Index(r.out, "{"):]), &res); r.code != 0 || err != nil {
		t.Fatalf("xact bench = %d, %q (%v)", r.code, r.out, err)
	}
	if res.Errors == 0 || res.FirstError == "" {
		t.Errorf("errors = %d (first %q), want the transactions the dead coordinator cut off", res.Errors, res.FirstError)
	}
}

// TestBenchWrongToken: a token the coordinator refuses ends the bench at
// once with a message that says so.
func TestBenchWrongToken(t *testing.T) {
	srv := tctest.Start(t, tctest.WithConfig(func(c *tc.Config) { c.Token = "right" }))
	began := time.Now()
	code, out := xact("bench", "--server", srv.Addr(), "--token", "wrong", "--duration", "1s")
	if code != 1 || !strings.Contains(out, "unauthenticated") {
		t.Errorf("xact bench --token wrong = %d, %q; want 1 and \"unauthenticated\"", code, out)
	}
	if took := time.Since(began); took > 5*time.Second {
		t.Errorf("xact bench --token wrong took %v, want an answer at once", took)
	}
	code, out = xact("bench", "--server", srv.Addr(), "--token", "right", "--duration", "500ms", "--warmup", "0s", "--json")
	if code != 0 || !strings.Contains(out, `"errors": 0`) {
		t.Errorf("xact bench --token right = %d, %q; want 0 and no errors", code, out)
	}
}

// TestServerList: --server takes a list of coordinators; calls go to the
// ones that are up, so a dead address in the list does not fail them, and
// a list of dead ones fails clearly.
func TestServerList(t *testing.T) {
	srv := tctest.Start(t)
	list := "127.0.0.1:1," + srv.Addr()
	if code, out := xact("tx", "list", "--server", list); code != 0 {
		t.Errorf("xact tx list --server %s = %d, %q; want 0", list, code, out)
	}
	code, out := xact("bench", "--server", list, "--duration", "500ms", "--warmup", "0s", "--json")
	if code != 0 || !strings.Contains(out, `"errors": 0`) {
		t.Errorf("xact bench --server %s = %d, %q; want no errors", list, code, out)
	}
	if code, out := xact("tx", "list", "--server", "127.0.0.1:1,127.0.0.1:2"); code == 0 {
		t.Errorf("xact tx list against two dead addresses = 0, %q; want a failure", out)
	}
	if code, out := xact("tx", "list", "--server", "127.0.0.1:1,dns:///x:1"); code != 2 {
		t.Errorf("xact tx list --server with a scheme in a list = %d, %q; want a usage error", code, out)
	}
}

package tc_test

import (
	"context"
	"encoding/json"
	"flag"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/xact-io/xact/protocol/xactpb"
	"github.com/xact-io/xact/tc"
	"github.com/xact-io/xact/tc/console"
	"github.com/xact-io/xact/tc/tctest"
)

const operatorToken = "op-Zk3q9-console-test"

var withOperatorToken = tctest.WithConfig(func(c *tc.Config) { c.OperatorToken = operatorToken })

// TestMetricsNeedOperatorToken: with an operator token, /metrics wants it
// as a bearer token (Prometheus' bearer_token); the probes stay open.
func TestMetricsNeedOperatorToken(t *testing.T) {
	srv := tctest.Start(t, withHTTP, withOperatorToken)
	base := "http://" + srv.Server().HTTPAddr()
	for _, auth := range []string{"", "Bearer wrong", "Bearer " + operatorToken + "x", operatorToken, "Basic " + operatorToken} {
		req, _ := http.NewRequest(http.MethodGet, base+"/metrics", nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized || !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer") {
			t.Errorf("GET /metrics with Authorization %q = %d (WWW-Authenticate %q), want 401 asking for a bearer token",
				auth, resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
		}
	}
	req, _ := http.NewRequest(http.MethodGet, base+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+operatorToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("GET /metrics with the bearer token = %d, want 200", resp.StatusCode)
	}
	for _, path := range []string{"/healthz", "/readyz"} {
		if code, _ := get(t, srv.Server().HTTPAddr(), path); code != http.StatusOK {
			t.Errorf("GET %s without a token = %d, want 200", path, code)
		}
	}

	// Without an operator token /metrics is open, as before.
	open := tctest.Start(t, withHTTP)
	if code, _ := get(t, open.Server().HTTPAddr(), "/metrics"); code != http.StatusOK {
		t.Errorf("GET /metrics without an operator token configured = %d, want 200", code)
	}
}

// TestConsoleOnServer: the console mounted on a real coordinator reads
// its globals and metrics, and answers a malformed XID with 400 and an
// unknown one with 404.
func TestConsoleOnServer(t *testing.T) {
	srv := tctest.Start(t, withHTTP, withOperatorToken, waitAT)
	c := newClient(t, srv)
	attachRM(t, srv.Conn(t), "db1")
	xid := c.begin(time.Minute)
	c.mustRegister(xid, "db1", "k1")
	if st, err := c.commit(xid); err != nil || st != committed {
		t.Fatalf("Commit = %v, %v", st, err)
	}
	open := c.begin(time.Hour)
	c.mustRegister(open, "db1", "k2")

	jar, _ := cookiejar.New(nil)
	hc := &http.Client{Jar: jar}
	base := "http://" + srv.Server().HTTPAddr()
	resp, err := hc.Get(base + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.Request.URL.Path != "/ui/login" {
		t.Fatalf("GET / ended at %s, want the console's login form", resp.Request.URL)
	}
	resp, err = hc.PostForm(base+"/ui/login", url.Values{"token": {operatorToken}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Request.URL.Path != console.Path {
		t.Fatalf("login = %d at %s, want the globals", resp.StatusCode, resp.Request.URL)
	}

	resp, err = hc.Get(base + "/ui/summary.json")
	if err != nil {
		t.Fatal(err)
	}
	var sum console.Summary
	err = json.NewDecoder(resp.Body).Decode(&sum)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	want := console.Summary{NodeID: "tc1", Ready: true, Begun: 2, Committed: 1, AttachedRMs: 1, LocksHeld: 1}
	if sum != want {
		t.Errorf("summary = %+v, want %+v", sum, want)
	}

	pages := []struct {
		path string
		code int
		want string
	}{
		{"/ui/", http.StatusOK, open},
		{"/ui/tx/" + open, http.StatusOK, "k2"},
		{"/ui/tx/" + xid, http.StatusOK, "COMMITTED"},
		{"/ui/locks", http.StatusOK, open},
		{"/ui/tx/tc1%01x", http.StatusBadRequest, "Malformed XID"},
		{"/ui/tx/" + strings.Repeat("x", 200), http.StatusBadRequest, "Malformed XID"},
		{"/ui/tx/tc1:nope:1", http.StatusNotFound, "No global transaction"},
		{"/ui/locks?xid=tc1%00", http.StatusBadRequest, "Malformed XID"},
	}
	for _, p := range pages {
		resp, err := hc.Get(base + p.path)
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != p.code || !strings.Contains(string(body), p.want) {
			t.Errorf("GET %s = %d, want %d with %q:\n%s", p.path, resp.StatusCode, p.code, p.want, body)
		}
	}
}

// TestConsoleInBrowser: in headless Chromium, an operator logs in, finds
// a parked global in the list, opens it, resumes its commit through the
// confirmation page, and sees it committed. Screenshots of the list and
// the finished global are kept (the path is logged).
func TestConsoleInBrowser(t *testing.T) {
	browserPath := chromium(t)
	srv := tctest.Start(t, withHTTP, withOperatorToken, waitAT)
	c := newClient(t, srv)
	rm := attachRM(t, srv.Conn(t), "db1")
	rm.setAnswer(func(*xactpb.BranchAction) (xactpb.Outcome, string) {
		return outcomeFailed, "dirty row: orders/42 changed since phase one"
	})
	b, err := c.coord.Begin(context.Background(), &xactpb.BeginRequest{Name: "transfer", TimeoutMs: time.Minute.Milliseconds()})
	if err != nil {
		t.Fatal(err)
	}
	xid := b.GetXid()
	c.mustRegister(xid, "db1", "orders:42")
	if st, err := c.commit(xid); err != nil || st != xactpb.GlobalStatus_GLOBAL_STATUS_COMMIT_FAILED {
		t.Fatalf("Commit = %v, %v; want COMMIT_FAILED (parked)", st, err)
	}
	other := c.begin(time.Hour) // unfinished, not parked
	// The operator fixes the cause; the RM now commits.
	rm.setAnswer(func(*xactpb.BranchAction) (xactpb.Outcome, string) { return outcomeDone, "" })

	opts := []chromedp.ExecAllocatorOption{chromedp.ExecPath(browserPath), chromedp.WindowSize(1280, 860)}
	if os.Geteuid() == 0 {
		opts = append(opts, chromedp.NoSandbox) // Chromium refuses to run its sandbox as root
	}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		append(chromedp.DefaultExecAllocatorOptions[:], opts...)...)
	defer cancelAlloc()
	ctx, cancelBrowser := chromedp.NewContext(allocCtx)
	defer cancelBrowser()
	if err := chromedp.Do(ctx); err != nil { // starts the browser, without a deadline
		t.Fatalf("start %s: %v", browserPath, err)
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()

	out := artifactDir(t)
	shot := func(name string) {
		t.Helper()
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatalf("screenshot: %v", err)
		}
		p := filepath.Join(out, name)
		if err := os.WriteFile(p, png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("screenshot: %s", p)
	}
	text := func(sel chromedp.ID) string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.Text(sel))
		if err != nil {
			t.Fatalf("text of %s: %v", sel, err)
		}
		return s
	}
	step := func(what string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, actions...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}

	base := "http://" + srv.Server().HTTPAddr()
	link := chromedp.CSS(`#globals a[href="/ui/tx/` + xid + `"]`)
	step("log in",
		chromedp.Navigate(base+"/ui/"),
		chromedp.WaitVisible(chromedp.ID("token")),
		chromedp.SendKeys(chromedp.ID("token"), operatorToken),
		chromedp.Click(chromedp.ID("login")),
		chromedp.WaitVisible(link))
	if got := text("parked-count"); got != "1" {
		t.Errorf("parked in the summary = %q, want 1", got)
	}
	list, err := chromedp.Run(ctx, chromedp.OuterHTML(chromedp.ID("globals")))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(list, other) || !strings.Contains(list, "parked") || !strings.Contains(list, "orders/42 changed") {
		t.Errorf("the list lacks the other global, the parked badge or the reason:\n%s", list)
	}
	shot("globals.png")

	step("open the parked global", chromedp.Click(link), chromedp.WaitVisible(chromedp.ID("resume-commit")))
	if got := text("parked"); !strings.Contains(got, "orders/42 changed") {
		t.Errorf("parked banner = %q, want the reason", got)
	}
	if got := text("branches"); !strings.Contains(got, "PHASE_TWO_COMMIT_FAILED_UNRETRYABLE") {
		t.Errorf("branches = %q, want the failed branch", got)
	}
	shot("global.png")
	step("resume commit", chromedp.Click(chromedp.ID("resume-commit")), chromedp.WaitVisible(chromedp.ID("confirm")))
	shot("confirm.png")
	step("confirm", chromedp.Click(chromedp.ID("confirm")), chromedp.WaitVisible(chromedp.CSS(`#status[data-final="true"]`)))
	if got := text("status"); got != "COMMITTED" {
		t.Errorf("status after the resume = %q, want COMMITTED", got)
	}
	if got := text("flash"); !strings.Contains(got, "Commit resumed") {
		t.Errorf("flash = %q", got)
	}
	shot("finished.png")

	if got := c.status(xid); got != committed {
		t.Errorf("GetStatus = %v, want %v", got, committed)
	}
	if got := rm.effectCounts()["ACTION_KIND_COMMIT/"+xid+"/1"]; got != 1 {
		t.Errorf("commit effects = %d, want 1", got)
	}
	step("back to the list", chromedp.Navigate(base+"/ui/"), chromedp.WaitVisible(chromedp.ID("globals")))
	if got := text("parked-count"); got != "0" {
		t.Errorf("parked in the summary after the resume = %q, want 0", got)
	}
	if list, err := chromedp.Run(ctx, chromedp.OuterHTML(chromedp.ID("globals"))); err != nil || strings.Contains(list, xid) {
		t.Errorf("the list still shows the committed global (err %v):\n%s", err, list)
	}
}

// chromium is the browser for TestConsoleInBrowser: $XACT_TEST_CHROMIUM,
// or chromium, chromium-browser or google-chrome on PATH. Without one the
// test fails where a browser is required (`make test`, which installs
// Debian's chromium and sets XACT_TEST_REQUIRE_BROWSER, or CI), and is
// skipped with the fix elsewhere.
func chromium(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("XACT_TEST_CHROMIUM"); p != "" {
		if _, err := exec.LookPath(p); err != nil {
			t.Fatalf("XACT_TEST_CHROMIUM=%s: %v", p, err)
		}
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	const msg = "no Chromium (looked for $XACT_TEST_CHROMIUM, then chromium, chromium-browser, google-chrome on PATH): " +
		"`make test` installs it (apt-get install chromium), or set XACT_TEST_CHROMIUM"
	if os.Getenv("XACT_TEST_REQUIRE_BROWSER") != "" || os.Getenv("CI") != "" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// artifactDir is where a test keeps its screenshots: under
// $XACT_TEST_ARTIFACTS if set, in t.ArtifactDir with go test -artifacts,
// and otherwise in testdata/out (ignored by git).
func artifactDir(t *testing.T) string {
	t.Helper()
	if f := flag.Lookup("test.artifacts"); os.Getenv("XACT_TEST_ARTIFACTS") == "" && f != nil && f.Value.String() == "true" {
		return t.ArtifactDir()
	}
	root := os.Getenv("XACT_TEST_ARTIFACTS")
	if root == "" {
		root = filepath.Join("testdata", "out")
	}
	dir, err := filepath.Abs(filepath.Join(root, t.Name()))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

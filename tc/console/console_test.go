package console

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/xact-io/xact/protocol"
	"github.com/xact-io/xact/protocol/xactpb"
)

// fakeBackend holds globals in memory and records the forced decisions.
type fakeBackend struct {
	mu     sync.Mutex
	gs     map[string]*xactpb.ShowGlobalResponse
	forced []string // "commit xid", "rollback xid"
}

func newFake() *fakeBackend {
	now := time.Now()
	return &fakeBackend{gs: map[string]*xactpb.ShowGlobalResponse{
		"tc1:abc:1": {
			Global: &xactpb.GlobalTransaction{Xid: "tc1:abc:1", Name: "transfer", Status: xactpb.GlobalStatus_GLOBAL_STATUS_COMMIT_RETRYING,
				Parked: true, Reason: "dirty row", BeginUnixMs: now.Add(-time.Hour).UnixMilli(), Attempts: 3,
				History: []*xactpb.RetryEvent{{AtUnixMs: now.UnixMilli(), What: "commit decided"}}},
			Branches: []*xactpb.Branch{{Xid: "tc1:abc:1", BranchId: 1, ResourceId: "db1", BranchType: xactpb.BranchType_BRANCH_TYPE_TCC,
				Status: xactpb.BranchStatus_BRANCH_STATUS_PHASE_TWO_COMMIT_FAILED_UNRETRYABLE, Reason: "dirty row"}},
			Locks: []*xactpb.RowLock{{ResourceId: "db1", Key: "t:1", Xid: "tc1:abc:1", BranchId: 1}},
		},
		"tc1:abc:2": {
			Global: &xactpb.GlobalTransaction{Xid: "tc1:abc:2", Name: "order", Status: xactpb.GlobalStatus_GLOBAL_STATUS_BEGIN,
				BeginUnixMs: now.Add(-time.Second).UnixMilli()},
			Branches: []*xactpb.Branch{{Xid: "tc1:abc:2", BranchId: 1, ResourceId: "db2", BranchType: xactpb.BranchType_BRANCH_TYPE_AT}},
		},
		"tc1:abc:3": {
			Global: &xactpb.GlobalTransaction{Xid: "tc1:abc:3", Name: "refund", Status: xactpb.GlobalStatus_GLOBAL_STATUS_ROLLBACK_RETRY_TIMEOUT,
				Parked: true, Reason: "unreachable", BeginUnixMs: now.Add(-2 * time.Hour).UnixMilli()},
		},
	}}
}

func (f *fakeBackend) ListGlobals(ctx context.Context, req *xactpb.ListGlobalsRequest) (*xactpb.ListGlobalsResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	resp := &xactpb.ListGlobalsResponse{}
	for _, g := range f.gs {
		st := g.GetGlobal().GetStatus()
		if protocol.Final(st) || req.GetParkedOnly() && !g.GetGlobal().GetParked() {
			continue
		}
		if len(req.GetStatuses()) > 0 && req.GetStatuses()[0] != st {
			continue
		}
		resp.Globals = append(resp.Globals, g.GetGlobal())
	}
	return resp, nil
}

func (f *fakeBackend) ShowGlobal(ctx context.Context, req *xactpb.ShowGlobalRequest) (*xactpb.ShowGlobalResponse, error) {
	if err := protocol.ValidateXID(req.GetXid()); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	g, ok := f.gs[req.GetXid()]
	if !ok {
		return nil, fmt.Errorf("%w: %s", protocol.ErrNotFound, req.GetXid())
	}
	return g, nil
}

func (f *fakeBackend) ListLocks(ctx context.Context, req *xactpb.ListLocksRequest) (*xactpb.ListLocksResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	resp := &xactpb.ListLocksResponse{}
	for _, g := range f.gs {
		for _, l := range g.GetLocks() {
			if req.GetXid() == "" || req.GetXid() == l.GetXid() {
				resp.Locks = append(resp.Locks, l)
			}
		}
	}
	return resp, nil
}

func (f *fakeBackend) force(xid string, commit bool) (*xactpb.ForceResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	g, ok := f.gs[xid]
	if !ok {
		return nil, fmt.Errorf("%w: %s", protocol.ErrNotFound, xid)
	}
	if commit && protocol.DecidedRollback(g.GetGlobal().GetStatus()) {
		return nil, fmt.Errorf("%w: %s", protocol.ErrRolledBack, xid)
	}
	what := "rollback"
	g.Global.Status = xactpb.GlobalStatus_GLOBAL_STATUS_ROLLBACKED
	if commit {
		what = "commit"
		g.Global.Status = xactpb.GlobalStatus_GLOBAL_STATUS_COMMITTED
	}
	g.Global.Parked, g.Branches, g.Locks = false, nil, nil
	f.forced = append(f.forced, what+" "+xid)
	return &xactpb.ForceResponse{Status: g.Global.Status}, nil
}

func (f *fakeBackend) ForceCommit(ctx context.Context, req *xactpb.ForceRequest) (*xactpb.ForceResponse, error) {
	return f.force(req.GetXid(), true)
}

func (f *fakeBackend) ForceRollback(ctx context.Context, req *xactpb.ForceRequest) (*xactpb.ForceResponse, error) {
	return f.force(req.GetXid(), false)
}

func (f *fakeBackend) Summary(ctx context.Context) (Summary, error) {
	return Summary{NodeID: "tc1", Ready: true, Begun: 7, Committed: 4, Parked: 2, AttachedRMs: 1, LocksHeld: -1}, nil
}

func (f *fakeBackend) forcedCalls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.forced...)
}

// browser is a client with a cookie jar against a console.
type browser struct {
	t   *testing.T
	srv *httptest.Server
	c   *http.Client
}

func newBrowser(t *testing.T, h http.Handler) *browser {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return (&browser{t: t, srv: srv}).another()
}

// another is a second browser (its own cookies) on the same console.
func (b *browser) another() *browser {
	jar, err := cookiejar.New(nil)
	if err != nil {
		b.t.Fatal(err)
	}
	c := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	return &browser{t: b.t, srv: b.srv, c: c}
}

func (b *browser) do(req *http.Request) (int, http.Header, string) {
	b.t.Helper()
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		b.t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, string(body)
}

func (b *browser) get(path string) (int, http.Header, string) {
	b.t.Helper()
	req, err := http.NewRequest(http.MethodGet, b.srv.URL+path, nil)
	if err != nil {
		b.t.Fatal(err)
	}
	return b.do(req)
}

// post sends a form; header adds headers (name, value, ...).
func (b *browser) post(path string, form url.Values, header ...string) (int, http.Header, string) {
	b.t.Helper()
	req, err := http.NewRequest(http.MethodPost, b.srv.URL+path, strings.NewReader(form.Encode()))
	if err != nil {
		b.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	return b.do(req)
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// csrf is the CSRF token of the forms on page path.
func (b *browser) csrf(path string) string {
	b.t.Helper()
	code, _, body := b.get(path)
	m := csrfField.FindStringSubmatch(body)
	if code != http.StatusOK || m == nil {
		b.t.Fatalf("GET %s = %d, no csrf field:\n%s", path, code, body)
	}
	return m[1]
}

func (b *browser) login(token string) (int, http.Header, string) {
	b.t.Helper()
	return b.post("/ui/login", url.Values{"token": {token}, "next": {"/ui/locks"}})
}

const token = "s3cret-operator-token"

func TestLoginRequired(t *testing.T) {
	b := newBrowser(t, New(newFake(), Options{Token: token}))
	for _, path := range []string{"/ui/", "/ui/tx/tc1:abc:1", "/ui/locks", "/ui/tx/tc1:abc:1/resume?action=commit"} {
		code, h, _ := b.get(path)
		if code != http.StatusSeeOther || !strings.HasPrefix(h.Get("Location"), "/ui/login?next=") {
			t.Errorf("GET %s without a session = %d to %q, want 303 to the login form", path, code, h.Get("Location"))
		}
	}
	if code, _, body := b.get("/ui/summary.json"); code != http.StatusUnauthorized || !strings.Contains(body, `"error"`) {
		t.Errorf("GET /ui/summary.json without a session = %d %q, want 401 JSON", code, body)
	}
	if code, _, body := b.get("/ui/login"); code != http.StatusOK || !strings.Contains(body, `name="token"`) {
		t.Errorf("GET /ui/login = %d, want the form:\n%s", code, body)
	}
	// The static files need no session (the login page uses them).
	if code, h, _ := b.get("/ui/static/style.css"); code != http.StatusOK || !strings.HasPrefix(h.Get("Content-Type"), "text/css") {
		t.Errorf("GET style.css = %d %q", code, h.Get("Content-Type"))
	}
	if code, _, _ := b.get("/ui/static/"); code != http.StatusNotFound {
		t.Errorf("GET /ui/static/ = %d, want 404 (no listing)", code)
	}
}

func TestWrongTokenRefused(t *testing.T) {
	b := newBrowser(t, New(newFake(), Options{Token: token}))
	for _, tok := range []string{"", "wrong", token + "x", token[:len(token)-1]} {
		code, h, body := b.login(tok)
		if code != http.StatusUnauthorized || !strings.Contains(body, "Wrong token") {
			t.Errorf("login with %q = %d, want 401 and the form again", tok, code)
		}
		if h.Get("Set-Cookie") != "" {
			t.Errorf("login with %q set a cookie: %q", tok, h.Get("Set-Cookie"))
		}
	}
	if code, _, _ := b.get("/ui/"); code != http.StatusSeeOther {
		t.Errorf("GET /ui/ after wrong logins = %d, want 303 to the login form", code)
	}
}

func TestLoginSession(t *testing.T) {
	b := newBrowser(t, New(newFake(), Options{Token: token}))
	code, h, _ := b.login(token)
	if code != http.StatusSeeOther || h.Get("Location") != "/ui/locks" {
		t.Fatalf("login = %d to %q, want 303 to next (/ui/locks)", code, h.Get("Location"))
	}
	ck := h.Get("Set-Cookie")
	for _, want := range []string{cookieName + "=", "Path=/ui/", "HttpOnly", "SameSite=Strict"} {
		if !strings.Contains(ck, want) {
			t.Errorf("session cookie %q lacks %q", ck, want)
		}
	}
	if strings.Contains(ck, token) {
		t.Errorf("session cookie %q contains the token", ck)
	}
	code, _, body := b.get("/ui/")
	if code != http.StatusOK || !strings.Contains(body, "tc1:abc:1") || !strings.Contains(body, "Log out") {
		t.Fatalf("GET /ui/ logged in = %d:\n%s", code, body)
	}
	code, _, body = b.get("/ui/summary.json")
	if code != http.StatusOK || !strings.Contains(body, `"begun":7`) {
		t.Errorf("GET /ui/summary.json = %d %q", code, body)
	}
	// A tampered cookie is no session.
	u, _ := url.Parse(b.srv.URL + "/ui/")
	cks := b.c.Jar.Cookies(u)
	if len(cks) != 1 {
		t.Fatalf("cookies = %v", cks)
	}
	v := []byte(cks[0].Value)
	v[5] ^= 1
	b2 := b.another()
	b2.c.Jar.SetCookies(u, []*http.Cookie{{Name: cookieName, Value: string(v)}})
	if code, _, _ := b2.get("/ui/"); code != http.StatusSeeOther {
		t.Errorf("GET /ui/ with a tampered cookie = %d, want 303 to the login form", code)
	}
	// Logging out ends the session in the browser.
	code, _, _ = b.post("/ui/logout", url.Values{"csrf": {b.csrf("/ui/")}})
	if code != http.StatusSeeOther {
		t.Errorf("logout = %d, want 303", code)
	}
	if code, _, _ := b.get("/ui/"); code != http.StatusSeeOther {
		t.Errorf("GET /ui/ after logout = %d, want 303 to the login form", code)
	}
}

func TestSessionExpires(t *testing.T) {
	c := New(newFake(), Options{Token: token, SessionTTL: time.Hour})
	now := time.Now()
	c.now = func() time.Time { return now }
	b := newBrowser(t, c)
	if code, _, _ := b.login(token); code != http.StatusSeeOther {
		t.Fatalf("login = %d", code)
	}
	if code, _, _ := b.get("/ui/"); code != http.StatusOK {
		t.Fatalf("GET /ui/ = %d", code)
	}
	now = now.Add(time.Hour + time.Second)
	if code, _, _ := b.get("/ui/"); code != http.StatusSeeOther {
		t.Errorf("GET /ui/ after the session's TTL = %d, want 303 to the login form", code)
	}
}

func TestLoginNextStaysOnConsole(t *testing.T) {
	for _, next := range []string{"", "https://evil.example/", "//evil.example/ui/", "/ui/../../x", "/elsewhere", "/ui/login", `/ui/\evil`, "javascript:alert(1)"} {
		got := safeNext(next)
		if next != "/ui/../../x" && got != Path {
			t.Errorf("safeNext(%q) = %q, want %q", next, got, Path)
		}
		if strings.Contains(got, "evil") || strings.Contains(got, ":") {
			t.Errorf("safeNext(%q) = %q", next, got)
		}
	}
	if got := safeNext("/ui/tx/tc1:abc:1"); got != "/ui/tx/tc1:abc:1" {
		t.Errorf("safeNext(a console page) = %q", got)
	}
}

// TestCSRF: a resume without the session's CSRF token, with another
// session's, or from another origin changes nothing.
func TestCSRF(t *testing.T) {
	for _, open := range []bool{false, true} {
		t.Run(fmt.Sprintf("open=%v", open), func(t *testing.T) {
			fake := newFake()
			tok := token
			if open {
				tok = ""
			}
			h := New(fake, Options{Token: tok})
			b := newBrowser(t, h)
			other := b.another()
			if !open {
				b.login(token)
				other.login(token)
			}
			page := "/ui/tx/tc1:abc:1/resume?action=commit"
			good, stranger := b.csrf(page), other.csrf(page)
			if good == stranger {
				t.Fatal("two sessions have the same CSRF token")
			}
			const action = "/ui/tx/tc1:abc:1/resume"
			cases := []struct {
				name   string
				form   url.Values
				header []string
			}{
				{"missing", url.Values{"action": {"commit"}}, nil},
				{"empty", url.Values{"action": {"commit"}, "csrf": {""}}, nil},
				{"wrong", url.Values{"action": {"commit"}, "csrf": {"AAAA" + good[4:]}}, nil},
				{"another session's", url.Values{"action": {"commit"}, "csrf": {stranger}}, nil},
				{"cross-site (Sec-Fetch-Site)", url.Values{"action": {"commit"}, "csrf": {good}}, []string{"Sec-Fetch-Site", "cross-site"}},
				{"cross-origin (Origin)", url.Values{"action": {"commit"}, "csrf": {good}}, []string{"Origin", "https://evil.example"}},
			}
			for _, tc := range cases {
				code, _, body := b.post(action, tc.form, tc.header...)
				if code != http.StatusForbidden {
					t.Errorf("resume with %s CSRF token = %d, want 403:\n%s", tc.name, code, body)
				}
			}
			if f := fake.forcedCalls(); len(f) != 0 {
				t.Fatalf("refused requests forced %v", f)
			}
			code, h2, _ := b.post(action, url.Values{"action": {"commit"}, "csrf": {good}}, "Sec-Fetch-Site", "same-origin", "Origin", b.srv.URL)
			if code != http.StatusSeeOther || h2.Get("Location") != "/ui/tx/tc1:abc:1?done=commit" {
				t.Fatalf("resume with the CSRF token = %d to %q, want 303 to the global", code, h2.Get("Location"))
			}
			if f := fake.forcedCalls(); len(f) != 1 || f[0] != "commit tc1:abc:1" {
				t.Errorf("forced = %v, want [commit tc1:abc:1]", f)
			}
			code, _, body := b.get("/ui/tx/tc1:abc:1?done=commit")
			if code != http.StatusOK || !strings.Contains(body, `data-final="true">COMMITTED`) || !strings.Contains(body, "Commit resumed") {
				t.Errorf("global after the resume = %d:\n%s", code, body)
			}
		})
	}
}

func TestXIDErrors(t *testing.T) {
	b := newBrowser(t, New(newFake(), Options{}))
	long := strings.Repeat("x", protocol.MaxXIDLen+1)
	for _, path := range []string{
		"/ui/tx/bad%01xid", "/ui/tx/bad%20xid", "/ui/tx/%C3%A9", "/ui/tx/" + long,
		"/ui/tx/bad%7Fxid/resume?action=commit", "/ui/locks?xid=a%00b",
	} {
		code, _, body := b.get(path)
		if code != http.StatusBadRequest || !strings.Contains(body, "Malformed XID") || strings.Contains(body, "goroutine") {
			t.Errorf("GET %s = %d, want 400 Malformed XID:\n%s", path, code, body)
		}
	}
	csrf := b.csrf("/ui/tx/tc1:abc:1/resume?action=commit")
	if code, _, body := b.post("/ui/tx/bad%01xid/resume", url.Values{"csrf": {csrf}, "action": {"commit"}}); code != http.StatusBadRequest || !strings.Contains(body, "Malformed XID") {
		t.Errorf("POST resume of a malformed XID = %d:\n%s", code, body)
	}
	for _, path := range []string{"/ui/tx/tc1:nope:1", "/ui/tx/tc1:nope:1/resume?action=rollback", "/ui/tx/a%2Fb"} {
		code, _, body := b.get(path)
		if code != http.StatusNotFound || !strings.Contains(body, "No global transaction") {
			t.Errorf("GET %s = %d, want 404:\n%s", path, code, body)
		}
	}
	if code, _, _ := b.post("/ui/tx/tc1:nope:1/resume", url.Values{"csrf": {csrf}, "action": {"commit"}}); code != http.StatusNotFound {
		t.Errorf("POST resume of an unknown XID = %d, want 404", code)
	}
	if code, _, _ := b.get("/ui/tx/tc1:abc:1/resume?action=explode"); code != http.StatusBadRequest {
		t.Errorf("unknown action = %d, want 400", code)
	}
	if code, _, _ := b.get("/ui/nowhere"); code != http.StatusNotFound {
		t.Errorf("GET /ui/nowhere = %d, want 404", code)
	}
}

func TestResumeConflict(t *testing.T) {
	fake := newFake()
	b := newBrowser(t, New(fake, Options{}))
	// A rollback cannot be committed: the page offers no commit, and a
	// forged request is refused with the coordinator's reason.
	code, _, body := b.get("/ui/tx/tc1:abc:3")
	if code != http.StatusOK || strings.Contains(body, `id="resume-commit"`) || !strings.Contains(body, `id="resume-rollback"`) {
		t.Errorf("page of a parked rollback = %d, want only the rollback action:\n%s", code, body)
	}
	if code, _, _ := b.get("/ui/tx/tc1:abc:3/resume?action=commit"); code != http.StatusConflict {
		t.Errorf("confirm commit of a rollback = %d, want 409", code)
	}
	code, _, body = b.post("/ui/tx/tc1:abc:3/resume", url.Values{"csrf": {b.csrf("/ui/tx/tc1:abc:3/resume?action=rollback")}, "action": {"commit"}})
	if code != http.StatusConflict || !strings.Contains(body, "rolled back") {
		t.Errorf("POST commit of a rollback = %d, want 409 naming the rollback:\n%s", code, body)
	}
	if f := fake.forcedCalls(); len(f) != 0 {
		t.Errorf("forced = %v, want none", f)
	}
}

func TestGlobalsFilters(t *testing.T) {
	b := newBrowser(t, New(newFake(), Options{}))
	cases := []struct {
		query     string
		want, not []string
	}{
		{"", []string{"tc1:abc:1", "tc1:abc:2", "tc1:abc:3"}, nil},
		{"?parked=1", []string{"tc1:abc:1", "tc1:abc:3"}, []string{"tc1:abc:2"}},
		{"?status=begin", []string{"tc1:abc:2"}, []string{"tc1:abc:1", "tc1:abc:3"}},
		{"?status=3", []string{"tc1:abc:1"}, []string{"tc1:abc:2", "tc1:abc:3"}},
		{"?name=TRANS", []string{"tc1:abc:1"}, []string{"tc1:abc:2", "tc1:abc:3"}},
		{"?older=30m", []string{"tc1:abc:1", "tc1:abc:3"}, []string{"tc1:abc:2"}},
		{"?older=1d", nil, []string{"tc1:abc:1", "tc1:abc:2", "tc1:abc:3"}},
		{"?mode=tcc", []string{"tc1:abc:1"}, []string{"tc1:abc:2", "tc1:abc:3"}},
		{"?mode=AT", []string{"tc1:abc:2"}, []string{"tc1:abc:1", "tc1:abc:3"}},
		{"?limit=1", []string{"tc1:abc:3", "3 matching, showing the first 1"}, []string{"tc1:abc:1", "tc1:abc:2"}},
	}
	for _, tc := range cases {
		code, _, body := b.get("/ui/" + tc.query)
		if code != http.StatusOK {
			t.Errorf("GET /ui/%s = %d", tc.query, code)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(body, w) {
				t.Errorf("GET /ui/%s lacks %q", tc.query, w)
			}
		}
		for _, n := range tc.not {
			if strings.Contains(body, n) {
				t.Errorf("GET /ui/%s shows %q", tc.query, n)
			}
		}
	}
	for _, q := range []string{"?status=NOPE", "?older=soon", "?mode=COBOL", "?limit=0"} {
		if code, _, body := b.get("/ui/" + q); code != http.StatusBadRequest || !strings.Contains(body, "Bad filter") {
			t.Errorf("GET /ui/%s = %d, want 400 Bad filter", q, code)
		}
	}
	// Parked first, then oldest first.
	_, _, body := b.get("/ui/")
	i3, i1, i2 := strings.Index(body, ">tc1:abc:3<"), strings.Index(body, ">tc1:abc:1<"), strings.Index(body, ">tc1:abc:2<")
	if !(i3 < i1 && i1 < i2) {
		t.Errorf("order: abc:3 at %d, abc:1 at %d, abc:2 at %d; want parked oldest first", i3, i1, i2)
	}
}

func TestPages(t *testing.T) {
	b := newBrowser(t, New(newFake(), Options{}))
	code, h, body := b.get("/ui/tx/tc1:abc:1")
	if code != http.StatusOK {
		t.Fatalf("GET global = %d", code)
	}
	for _, w := range []string{"dirty row", "PHASE_TWO_COMMIT_FAILED_UNRETRYABLE", "TCC", "t:1", "commit decided", `id="resume-commit"`, "No operator token"} {
		if !strings.Contains(body, w) {
			t.Errorf("global page lacks %q", w)
		}
	}
	if strings.Contains(body, `id="resume-rollback"`) {
		t.Error("a decided commit offers a rollback")
	}
	if csp := h.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") || h.Get("X-Frame-Options") != "DENY" {
		t.Errorf("headers: CSP %q, X-Frame-Options %q", csp, h.Get("X-Frame-Options"))
	}
	code, _, body = b.get("/ui/tx/tc1:abc:1/resume?action=commit")
	if code != http.StatusOK || !strings.Contains(body, `id="confirm"`) || !strings.Contains(body, `name="csrf"`) {
		t.Errorf("confirm page = %d:\n%s", code, body)
	}
	code, _, body = b.get("/ui/locks?resource=db1")
	if code != http.StatusOK || !strings.Contains(body, "t:1") || !strings.Contains(body, "1 lock.") {
		t.Errorf("locks page = %d:\n%s", code, body)
	}
	if code, _, body := b.get("/ui/locks?resource=nope"); code != http.StatusOK || strings.Contains(body, "t:1") {
		t.Errorf("locks page filtered = %d:\n%s", code, body)
	}
	if code, _, body := b.get("/ui/"); code != http.StatusOK || !strings.Contains(body, `data-k="parked" id="parked-count">2<`) {
		t.Errorf("summary = %d:\n%s", code, body)
	}
	// Names and reasons are escaped.
	fake := newFake()
	fake.gs["tc1:abc:1"].Global.Name = `<script>alert(1)</script>`
	b = newBrowser(t, New(fake, Options{}))
	if _, _, body := b.get("/ui/"); strings.Contains(body, "<script>alert") {
		t.Error("a global's name is not escaped")
	}
}

func TestAges(t *testing.T) {
	now := time.Now()
	for _, tc := range []struct {
		d    time.Duration
		want string
	}{{90 * time.Second, "1m30s"}, {72 * time.Hour, "3d"}, {-time.Second, "0s"}} {
		if got := ago(now, now.Add(-tc.d).UnixMilli()); got != tc.want {
			t.Errorf("ago(%v) = %q, want %q", tc.d, got, tc.want)
		}
	}
}

// TestPostWithoutSession: a POST from a browser without the console's
// cookie changes nothing.
func TestPostWithoutSession(t *testing.T) {
	for _, tc := range []struct {
		token string
		code  int
	}{{"", http.StatusForbidden}, {token, http.StatusUnauthorized}} {
		fake := newFake()
		b := newBrowser(t, New(fake, Options{Token: tc.token}))
		if code, _, _ := b.post("/ui/tx/tc1:abc:1/resume", url.Values{"action": {"commit"}, "csrf": {"x"}}); code != tc.code {
			t.Errorf("token %q: POST without a session = %d, want %d", tc.token, code, tc.code)
		}
		if f := fake.forcedCalls(); len(f) != 0 {
			t.Errorf("token %q: forced %v", tc.token, f)
		}
	}
}

// Package console is the coordinator's web console, served at /ui/ on the
// operators' HTTP server (tc.Config.HTTPAddr, `xact server --http-addr`):
// the unfinished and parked global transactions with filters, one global's
// branches, locks and retry history, the lock table, a live summary of the
// metrics, and the operator's resume commit / resume rollback, each behind
// a confirmation page.
//
// Pages are rendered on the server (html/template); a small stylesheet and
// a few lines of JavaScript (refreshing the summary) are embedded in the
// binary, so the console works without internet access.
//
// The coordinator gives it a Backend: the same functions its Admin gRPC
// service calls, called in process.
//
//	c := console.New(backend, console.Options{Token: operatorToken})
//	mux.Handle(console.Path, c)
//
// Security: with Options.Token set, every page but the login form needs a
// session, which a login with the token starts; the session cookie is
// HttpOnly, SameSite=Strict, and holds a signed session id, never the
// token. Without a token the console is open to whoever reaches the
// address. Either way every form that changes something carries the
// session's CSRF token in a hidden field, checked on POST, and cross-origin
// POSTs are refused (http.CrossOriginProtection).
package console

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/xact-io/xact/protocol"
	"github.com/xact-io/xact/protocol/xactpb"
)

// Path is where the console is mounted: every route is under it.
const Path = "/ui/"

// Backend is what the console needs from the coordinator. The first five
// methods are the Admin service's, with its semantics and errors (protocol
// sentinels); Summary reads the metrics.
type Backend interface {
	ListGlobals(ctx context.Context, req *xactpb.ListGlobalsRequest) (*xactpb.ListGlobalsResponse, error)
	ShowGlobal(ctx context.Context, req *xactpb.ShowGlobalRequest) (*xactpb.ShowGlobalResponse, error)
	ListLocks(ctx context.Context, req *xactpb.ListLocksRequest) (*xactpb.ListLocksResponse, error)
	ForceCommit(ctx context.Context, req *xactpb.ForceRequest) (*xactpb.ForceResponse, error)
	ForceRollback(ctx context.Context, req *xactpb.ForceRequest) (*xactpb.ForceResponse, error)
	Summary(ctx context.Context) (Summary, error)
}

// Summary is the live summary at the top of the console, read from the
// same instruments /metrics exports.
type Summary struct {
	NodeID string `json:"node_id"`
	// Ready is what /readyz says.
	Ready bool `json:"ready"`
	// Begun counts the globals begun since the start.
	Begun int64 `json:"begun"`
	// Committed, RolledBack and TimedOut count the finished globals by
	// outcome since the start.
	Committed  int64 `json:"committed"`
	RolledBack int64 `json:"rolled_back"`
	TimedOut   int64 `json:"timed_out"`
	// Parked is the xact_globals_parked gauge.
	Parked int64 `json:"parked"`
	// AttachedRMs is the xact_rms_attached gauge.
	AttachedRMs int64 `json:"attached_rms"`
	// LocksHeld is the xact_locks_held gauge, -1 where it is not exported
	// (a shared-database store).
	LocksHeld int64 `json:"locks_held"`
	// Retries counts phase-two rounds scheduled again; Conflicts the
	// global lock conflicts.
	Retries   int64 `json:"retries"`
	Conflicts int64 `json:"conflicts"`
}

// Options configure a console.
type Options struct {
	// Token is the operator token (tc.Config.OperatorToken). Empty: the
	// console is open to whoever reaches its address.
	Token string
	// SessionTTL is how long a session lasts; 0 is DefaultSessionTTL.
	SessionTTL time.Duration
	// Logger receives the operators' actions; nil discards them.
	Logger *slog.Logger
}

// Console is the web console, an http.Handler for the paths under Path.
type Console struct {
	b       Backend
	token   []byte // nil: open
	ttl     time.Duration
	log     *slog.Logger
	keys    *keys
	now     func() time.Time
	handler http.Handler
}

var _ http.Handler = (*Console)(nil)

// New returns a console over b.
func New(b Backend, o Options) *Console {
	c := &Console{b: b, ttl: o.SessionTTL, log: o.Logger, keys: newKeys(), now: time.Now}
	if o.Token != "" {
		c.token = []byte(o.Token)
	}
	if c.ttl <= 0 {
		c.ttl = DefaultSessionTTL
	}
	if c.log == nil {
		c.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+Path+"{$}", c.page(c.globals))
	mux.HandleFunc("GET "+Path+"tx/{xid}", c.page(c.global))
	mux.HandleFunc("GET "+Path+"tx/{xid}/resume", c.page(c.confirm))
	mux.HandleFunc("POST "+Path+"tx/{xid}/resume", c.page(c.resume))
	mux.HandleFunc("GET "+Path+"locks", c.page(c.locks))
	mux.HandleFunc("GET "+Path+"summary.json", c.page(c.summaryJSON))
	mux.HandleFunc("GET "+Path+"login", c.loginForm)
	mux.HandleFunc("POST "+Path+"login", c.login)
	mux.HandleFunc("POST "+Path+"logout", c.page(c.logout))
	mux.Handle("GET "+Path+"static/", http.StripPrefix(Path, staticHandler()))
	mux.HandleFunc(Path, func(w http.ResponseWriter, r *http.Request) {
		c.fail(w, r, nil, http.StatusNotFound, "No such page: "+r.URL.Path)
	})
	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.fail(w, r, nil, http.StatusForbidden, "Cross-origin request refused: the console accepts forms only from its own pages.")
	}))
	c.handler = cop.Handler(mux)
	return c
}

// ServeHTTP serves the console's paths.
func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	// Everything the pages load comes from here; nothing frames them.
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "same-origin")
	c.handler.ServeHTTP(w, r)
}

// handlerFunc is a page's handler, given the request's session.
type handlerFunc func(w http.ResponseWriter, r *http.Request, s session)

// page makes h require a session: with a token, a logged-in one (a GET
// without one goes to the login form); without, the browser's own, made on
// its first GET. A POST must carry the session's CSRF token.
func (c *Console) page(h handlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		s, ok := c.session(r)
		if !ok {
			switch {
			case c.token == nil && r.Method == http.MethodGet:
				s = c.keys.newSession(c.ttl, false, c.now())
				c.setCookie(w, r, s)
			case r.Method == http.MethodGet && r.URL.Path != Path+"summary.json":
				http.Redirect(w, r, Path+"login?next="+urlQueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
				return
			case c.token == nil:
				// A POST from a browser without this console's cookie.
				c.fail(w, r, nil, http.StatusForbidden, "No session (expired, or the coordinator restarted): nothing was changed. Reload the page and try again.")
				return
			default:
				c.fail(w, r, nil, http.StatusUnauthorized, "Not logged in, or the session has expired: log in again.")
				return
			}
		}
		if r.Method == http.MethodPost {
			if err := r.ParseForm(); err != nil {
				c.fail(w, r, &s, http.StatusBadRequest, "Bad form: "+err.Error())
				return
			}
			if !c.keys.csrfOK(s, r.PostForm.Get("csrf")) {
				c.fail(w, r, &s, http.StatusForbidden, "Missing or wrong CSRF token: nothing was changed. Reload the page and try again.")
				return
			}
		}
		h(w, r, s)
	}
}

// statusOf is the HTTP status for an error of the Backend.
func statusOf(err error) int {
	switch {
	case errors.Is(err, protocol.ErrInvalidArgument), errors.Is(err, protocol.ErrTooLarge):
		return http.StatusBadRequest
	case errors.Is(err, protocol.ErrNotFound):
		return http.StatusNotFound
	case errors.Is(err, protocol.ErrUnauthenticated):
		return http.StatusUnauthorized
	case errors.Is(err, protocol.ErrCommitted), errors.Is(err, protocol.ErrRolledBack),
		errors.Is(err, protocol.ErrTimedOut), errors.Is(err, protocol.ErrNotBegin):
		return http.StatusConflict
	case errors.Is(err, protocol.ErrShuttingDown):
		return http.StatusServiceUnavailable
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return http.StatusGatewayTimeout
	}
	return http.StatusInternalServerError
}

// backendError answers err from the Backend.
func (c *Console) backendError(w http.ResponseWriter, r *http.Request, s *session, err error) {
	code := statusOf(err)
	if code == http.StatusInternalServerError {
		c.log.Error("console", "path", r.URL.Path, "err", err)
	}
	c.fail(w, r, s, code, err.Error())
}

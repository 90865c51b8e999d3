package console

import (
	"cmp"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/xact-io/xact/protocol"
	"github.com/xact-io/xact/protocol/xactpb"
)

const (
	// listFetch is how many globals the list asks the store for; the
	// filters the store does not know (name, mode, age) apply to those.
	listFetch = 10000
	// defaultRows and maxRows bound the rows of the globals list.
	defaultRows, maxRows = 200, 10000
	// modeScan caps the globals whose branches the mode filter reads.
	modeScan = 500
	// defaultLocks and maxLocks bound the rows of the lock table.
	defaultLocks, maxLocks = 1000, 100000
)

// unfinishedStatuses are the statuses the list's status filter offers.
var unfinishedStatuses = []xactpb.GlobalStatus{
	xactpb.GlobalStatus_GLOBAL_STATUS_BEGIN,
	xactpb.GlobalStatus_GLOBAL_STATUS_COMMITTING,
	xactpb.GlobalStatus_GLOBAL_STATUS_COMMIT_RETRYING,
	xactpb.GlobalStatus_GLOBAL_STATUS_ASYNC_COMMITTING,
	xactpb.GlobalStatus_GLOBAL_STATUS_COMMIT_FAILED,
	xactpb.GlobalStatus_GLOBAL_STATUS_COMMIT_RETRY_TIMEOUT,
	xactpb.GlobalStatus_GLOBAL_STATUS_ROLLBACKING,
	xactpb.GlobalStatus_GLOBAL_STATUS_ROLLBACK_RETRYING,
	xactpb.GlobalStatus_GLOBAL_STATUS_ROLLBACK_FAILED,
	xactpb.GlobalStatus_GLOBAL_STATUS_ROLLBACK_RETRY_TIMEOUT,
	xactpb.GlobalStatus_GLOBAL_STATUS_TIMEOUT_ROLLBACKING,
	xactpb.GlobalStatus_GLOBAL_STATUS_TIMEOUT_ROLLBACK_RETRYING,
	xactpb.GlobalStatus_GLOBAL_STATUS_TIMEOUT_ROLLBACK_FAILED,
}

// modes are the branch modes the list's mode filter offers.
var modes = []string{"AT", "TCC", "SAGA", "XA"}

// globalsFilter is the globals list's query.
type globalsFilter struct {
	Status    string // one status name, or "" for any
	Parked    bool
	Name      string // substring of the name
	Mode      string // a branch of this mode, or ""
	OlderThan string // began longer ago than this duration
	Limit     int

	status    xactpb.GlobalStatus
	olderThan time.Duration
}

func parseGlobalsFilter(q url.Values) (globalsFilter, error) {
	f := globalsFilter{
		Status:    strings.TrimSpace(q.Get("status")),
		Parked:    q.Get("parked") != "",
		Name:      strings.TrimSpace(q.Get("name")),
		Mode:      strings.ToUpper(strings.TrimSpace(q.Get("mode"))),
		OlderThan: strings.TrimSpace(q.Get("older")),
		Limit:     defaultRows,
	}
	if f.Status != "" {
		st, err := parseStatus(f.Status)
		if err != nil {
			return f, err
		}
		f.status, f.Status = st, statusName(st)
	}
	if f.Mode != "" && !slices.Contains(modes, f.Mode) {
		return f, fmt.Errorf("unknown mode %q: want one of %s", f.Mode, strings.Join(modes, ", "))
	}
	if f.OlderThan != "" {
		d, err := parseAge(f.OlderThan)
		if err != nil {
			return f, err
		}
		f.olderThan = d
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return f, fmt.Errorf("limit %q: want a positive number", v)
		}
		f.Limit = min(n, maxRows)
	}
	return f, nil
}

// parseAge reads a duration: Go's syntax (90s, 5m, 1h30m) or whole days
// (2d).
func parseAge(s string) (time.Duration, error) {
	if days, ok := strings.CutSuffix(s, "d"); ok {
		if n, err := strconv.Atoi(days); err == nil && n >= 0 && n < 100000 {
			return time.Duration(n) * 24 * time.Hour, nil
		}
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("age %q: want a duration such as 90s, 5m, 2h or 1d", s)
	}
	return d, nil
}

func parseStatus(s string) (xactpb.GlobalStatus, error) {
	u := strings.ToUpper(s)
	if v, ok := xactpb.GlobalStatus_value["GLOBAL_STATUS_"+u]; ok {
		return xactpb.GlobalStatus(v), nil
	}
	if v, ok := xactpb.GlobalStatus_value[u]; ok {
		return xactpb.GlobalStatus(v), nil
	}
	if n, err := strconv.ParseInt(s, 10, 32); err == nil {
		if _, ok := xactpb.GlobalStatus_name[int32(n)]; ok {
			return xactpb.GlobalStatus(n), nil
		}
	}
	return 0, fmt.Errorf("unknown status %q", s)
}

// globalRow is one row of the globals list.
type globalRow struct {
	G     *xactpb.GlobalTransaction
	Modes string // the modes of its branches, when the mode filter read them
}

type globalsPage struct {
	Summary    *Summary
	SummaryErr string
	Filter     globalsFilter
	Statuses   []xactpb.GlobalStatus
	Modes      []string
	Rows       []globalRow
	Matched    int  // rows that matched, before the limit
	Truncated  bool // the store had more than listFetch
	ModeCapped bool // the mode filter read only the first modeScan
}

// globals is the start page: the summary and the unfinished globals,
// parked first, then oldest first.
func (c *Console) globals(w http.ResponseWriter, r *http.Request, s session) {
	f, err := parseGlobalsFilter(r.URL.Query())
	if err != nil {
		c.fail(w, r, &s, http.StatusBadRequest, "Bad filter: "+err.Error())
		return
	}
	p := globalsPage{Filter: f, Statuses: unfinishedStatuses, Modes: modes}
	if sum, err := c.b.Summary(r.Context()); err != nil {
		p.SummaryErr = err.Error()
	} else {
		p.Summary = &sum
	}
	req := &xactpb.ListGlobalsRequest{ParkedOnly: f.Parked, Limit: listFetch}
	if f.status != 0 {
		req.Statuses = []xactpb.GlobalStatus{f.status}
	}
	resp, err := c.b.ListGlobals(r.Context(), req)
	if err != nil {
		c.backendError(w, r, &s, err)
		return
	}
	gs := resp.GetGlobals()
	p.Truncated = len(gs) >= listFetch
	now := c.now()
	var rows []globalRow
	for _, g := range gs {
		if f.Name != "" && !strings.Contains(strings.ToLower(g.GetName()), strings.ToLower(f.Name)) {
			continue
		}
		if f.olderThan > 0 && (g.GetBeginUnixMs() == 0 || now.Sub(time.UnixMilli(g.GetBeginUnixMs())) < f.olderThan) {
			continue
		}
		rows = append(rows, globalRow{G: g})
	}
	slices.SortStableFunc(rows, func(a, b globalRow) int {
		if a.G.GetParked() != b.G.GetParked() {
			if a.G.GetParked() {
				return -1
			}
			return 1
		}
		return cmp.Compare(a.G.GetBeginUnixMs(), b.G.GetBeginUnixMs())
	})
	if f.Mode != "" {
		// The mode is the branches': read them, for a bounded number.
		if len(rows) > modeScan {
			rows, p.ModeCapped = rows[:modeScan], true
		}
		kept := rows[:0]
		for _, row := range rows {
			show, err := c.b.ShowGlobal(r.Context(), &xactpb.ShowGlobalRequest{Xid: row.G.GetXid()})
			if err != nil {
				continue // finished meanwhile
			}
			var ms []string
			for _, b := range show.GetBranches() {
				if m := branchType(b.GetBranchType()); !slices.Contains(ms, m) {
					ms = append(ms, m)
				}
			}
			if slices.Contains(ms, f.Mode) {
				row.Modes = strings.Join(ms, ", ")
				kept = append(kept, row)
			}
		}
		rows = kept
	}
	p.Matched = len(rows)
	if len(rows) > f.Limit {
		rows = rows[:f.Limit]
	}
	p.Rows = rows
	c.render(w, r, &s, http.StatusOK, "globals", "Globals", p)
}

type globalPage struct {
	Show     *xactpb.ShowGlobalResponse
	Flash    string
	Commit   bool // the commit action applies
	Rollback bool // the rollback action applies
}

// xidOf is the request's XID, or false after answering 400 for a
// malformed one.
func (c *Console) xidOf(w http.ResponseWriter, r *http.Request, s *session) (string, bool) {
	xid := r.PathValue("xid")
	if err := protocol.ValidateXID(xid); err != nil {
		c.fail(w, r, s, http.StatusBadRequest, "Malformed XID "+strconv.QuoteToASCII(truncate(xid, 200))+": "+err.Error())
		return "", false
	}
	return xid, true
}

// show reads a global, or answers the error: 404 for an unknown XID.
func (c *Console) show(w http.ResponseWriter, r *http.Request, s *session, xid string) (*xactpb.ShowGlobalResponse, bool) {
	resp, err := c.b.ShowGlobal(r.Context(), &xactpb.ShowGlobalRequest{Xid: xid})
	if statusOf(err) == http.StatusNotFound {
		c.fail(w, r, s, http.StatusNotFound, "No global transaction "+xid+" here: never begun on this coordinator's store, or finished longer ago than the tombstone retention.")
		return nil, false
	}
	if err != nil {
		c.backendError(w, r, s, err)
		return nil, false
	}
	return resp, true
}

// actions says which operator actions apply to a global in status st:
// both while it is in Begin, the direction decided afterwards, none once
// it is final.
func actions(st xactpb.GlobalStatus) (commit, rollback bool) {
	switch {
	case protocol.Final(st):
		return false, false
	case st == xactpb.GlobalStatus_GLOBAL_STATUS_BEGIN:
		return true, true
	}
	return protocol.DecidedCommit(st), protocol.DecidedRollback(st)
}

var flashes = map[string]string{
	"commit":   "Commit resumed. The status below is the one the coordinator answered with.",
	"rollback": "Rollback resumed. The status below is the one the coordinator answered with.",
}

// global is one global's page: its fields, branches, locks and history,
// and the operator actions that apply.
func (c *Console) global(w http.ResponseWriter, r *http.Request, s session) {
	xid, ok := c.xidOf(w, r, &s)
	if !ok {
		return
	}
	show, ok := c.show(w, r, &s, xid)
	if !ok {
		return
	}
	p := globalPage{Show: show, Flash: flashes[r.URL.Query().Get("done")]}
	p.Commit, p.Rollback = actions(show.GetGlobal().GetStatus())
	c.render(w, r, &s, http.StatusOK, "global", "Global "+xid, p)
}

type confirmPage struct {
	Show   *xactpb.ShowGlobalResponse
	Action string // commit or rollback
}

func actionOf(r *http.Request) (string, bool) {
	a := r.FormValue("action")
	return a, a == "commit" || a == "rollback"
}

// confirm asks the operator to confirm a resume.
func (c *Console) confirm(w http.ResponseWriter, r *http.Request, s session) {
	xid, ok := c.xidOf(w, r, &s)
	if !ok {
		return
	}
	action, ok := actionOf(r)
	if !ok {
		c.fail(w, r, &s, http.StatusBadRequest, "Unknown action "+strconv.Quote(action)+": want commit or rollback.")
		return
	}
	show, ok := c.show(w, r, &s, xid)
	if !ok {
		return
	}
	commit, rollback := actions(show.GetGlobal().GetStatus())
	if action == "commit" && !commit || action == "rollback" && !rollback {
		c.fail(w, r, &s, http.StatusConflict, fmt.Sprintf("Cannot %s %s: it is %s.", action, xid, statusName(show.GetGlobal().GetStatus())))
		return
	}
	c.render(w, r, &s, http.StatusOK, "confirm", "Confirm "+action, confirmPage{Show: show, Action: action})
}

// resume runs a confirmed resume (Admin.ForceCommit or ForceRollback) and
// shows the global again.
func (c *Console) resume(w http.ResponseWriter, r *http.Request, s session) {
	xid, ok := c.xidOf(w, r, &s)
	if !ok {
		return
	}
	action, ok := actionOf(r)
	if !ok {
		c.fail(w, r, &s, http.StatusBadRequest, "Unknown action "+strconv.Quote(action)+": want commit or rollback.")
		return
	}
	c.log.Info("console: operator resumes", "xid", xid, "action", action, "remote", r.RemoteAddr)
	force := c.b.ForceCommit
	if action == "rollback" {
		force = c.b.ForceRollback
	}
	if _, err := force(r.Context(), &xactpb.ForceRequest{Xid: xid}); err != nil {
		if statusOf(err) == http.StatusNotFound {
			c.fail(w, r, &s, http.StatusNotFound, "No global transaction "+xid+" here: nothing was changed.")
			return
		}
		c.backendError(w, r, &s, err)
		return
	}
	http.Redirect(w, r, txURL(xid)+"?done="+action, http.StatusSeeOther)
}

type locksPage struct {
	XID, Resource string
	Limit         int
	Locks         []*xactpb.RowLock
	More          bool // there are more than Limit
}

// locks is the lock table, by XID and resource.
func (c *Console) locks(w http.ResponseWriter, r *http.Request, s session) {
	q := r.URL.Query()
	p := locksPage{XID: strings.TrimSpace(q.Get("xid")), Resource: strings.TrimSpace(q.Get("resource")), Limit: defaultLocks}
	if p.XID != "" {
		if err := protocol.ValidateXID(p.XID); err != nil {
			c.fail(w, r, &s, http.StatusBadRequest, "Malformed XID "+strconv.QuoteToASCII(truncate(p.XID, 200))+": "+err.Error())
			return
		}
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			c.fail(w, r, &s, http.StatusBadRequest, "Bad filter: limit "+strconv.Quote(v)+": want a positive number")
			return
		}
		p.Limit = min(n, maxLocks)
	}
	fetch := p.Limit + 1
	if p.Resource != "" {
		fetch = maxLocks
	}
	resp, err := c.b.ListLocks(r.Context(), &xactpb.ListLocksRequest{Xid: p.XID, Limit: int32(fetch)})
	if err != nil {
		c.backendError(w, r, &s, err)
		return
	}
	for _, l := range resp.GetLocks() {
		if p.Resource != "" && !strings.Contains(l.GetResourceId(), p.Resource) {
			continue
		}
		if len(p.Locks) == p.Limit {
			p.More = true
			break
		}
		p.Locks = append(p.Locks, l)
	}
	c.render(w, r, &s, http.StatusOK, "locks", "Locks", p)
}

// summaryJSON is the summary the start page's script refreshes.
func (c *Console) summaryJSON(w http.ResponseWriter, r *http.Request, s session) {
	sum, err := c.b.Summary(r.Context())
	if err != nil {
		c.backendError(w, r, &s, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(sum)
}

type loginPage struct {
	Next  string
	Error string
}

func (c *Console) loginForm(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	if c.token == nil {
		http.Redirect(w, r, Path, http.StatusSeeOther)
		return
	}
	c.render(w, r, nil, http.StatusOK, "login", "Log in", loginPage{Next: safeNext(r.URL.Query().Get("next"))})
}

// login checks the operator token and starts a session.
func (c *Console) login(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	if c.token == nil {
		http.Redirect(w, r, Path, http.StatusSeeOther)
		return
	}
	next := safeNext(r.FormValue("next"))
	// Compared as hashes: the time taken says nothing about the length.
	got, want := sha256.Sum256([]byte(r.PostFormValue("token"))), sha256.Sum256(c.token)
	if subtle.ConstantTimeCompare(got[:], want[:]) != 1 {
		c.log.Warn("console: login refused: wrong operator token", "remote", r.RemoteAddr)
		c.render(w, r, nil, http.StatusUnauthorized, "login", "Log in", loginPage{Next: next, Error: "Wrong token."})
		return
	}
	c.log.Info("console: operator logged in", "remote", r.RemoteAddr)
	c.setCookie(w, r, c.keys.newSession(c.ttl, true, c.now()))
	http.Redirect(w, r, next, http.StatusSeeOther)
}

func (c *Console) logout(w http.ResponseWriter, r *http.Request, s session) {
	c.clearCookie(w, r)
	if c.token == nil {
		http.Redirect(w, r, Path, http.StatusSeeOther)
		return
	}
	http.Redirect(w, r, Path+"login", http.StatusSeeOther)
}

// safeNext is where a login may send the browser: a page of the console,
// never another site.
func safeNext(next string) string {
	u, err := url.Parse(next)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || !strings.HasPrefix(next, Path) ||
		strings.ContainsAny(next, "\\\r\n") || strings.HasPrefix(u.Path, Path+"login") {
		return Path
	}
	return next
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

func urlQueryEscape(s string) string { return url.QueryEscape(s) }

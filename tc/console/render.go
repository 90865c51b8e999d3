package console

import (
	"bytes"
	"embed"
	"encoding/json"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/xact-io/xact/protocol"
	"github.com/xact-io/xact/protocol/xactpb"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// pages are the templates, each with the layout, parsed once.
var pages = func() map[string]*template.Template {
	funcs := template.FuncMap{
		"status":  statusName,
		"bstatus": func(s xactpb.BranchStatus) string { return strings.TrimPrefix(s.String(), "BRANCH_STATUS_") },
		"btype":   branchType,
		"final":   protocol.Final,
		"txURL":   txURL,
		"ms":      fmtMs,
		"dur":     func(ms int64) string { return (time.Duration(ms) * time.Millisecond).String() },
		"ago":     ago,
		"nonneg":  func(n int64) bool { return n >= 0 },
		"statusClass": func(st xactpb.GlobalStatus, parked bool) string {
			switch {
			case parked:
				return "parked"
			case protocol.Final(st):
				return "final"
			}
			return "open"
		},
	}
	out := map[string]*template.Template{}
	for _, name := range []string{"globals", "global", "confirm", "locks", "login", "error"} {
		out[name] = template.Must(template.New(name).Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/"+name+".html"))
	}
	return out
}()

// view is what every page's layout gets.
type view struct {
	Title    string
	Nav      string // the page, for the navigation
	Open     bool   // no operator token
	LoggedIn bool   // show the navigation and the logout button
	CSRF     string
	Now      time.Time
	Data     any
}

// render writes page name with data, or a 500 if it does not render.
func (c *Console) render(w http.ResponseWriter, r *http.Request, s *session, code int, name, title string, data any) {
	v := view{Title: title, Nav: name, Open: c.token == nil, Now: c.now(), Data: data}
	if s != nil {
		v.LoggedIn, v.CSRF = true, c.keys.csrfToken(*s)
	}
	var buf bytes.Buffer
	if err := pages[name].ExecuteTemplate(&buf, "layout", v); err != nil {
		c.log.Error("console: render", "page", name, "err", err)
		http.Error(w, "console: the page did not render; the coordinator's log has the error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(code)
	w.Write(buf.Bytes())
}

type errorPage struct {
	Code    int
	Status  string
	Message string
}

// fail answers with an error page (or JSON, for the summary's script):
// the status and a message that says what went wrong, never a stack.
func (c *Console) fail(w http.ResponseWriter, r *http.Request, s *session, code int, msg string) {
	if strings.HasSuffix(r.URL.Path, ".json") {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		json.NewEncoder(w).Encode(map[string]string{"error": msg})
		return
	}
	c.render(w, r, s, code, "error", http.StatusText(code), errorPage{Code: code, Status: http.StatusText(code), Message: msg})
}

// staticHandler serves the stylesheet and the script (files only, no
// listings).
func staticHandler() http.Handler {
	files := http.FileServerFS(staticFS)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/") {
			http.NotFound(w, r)
			return
		}
		if _, err := fs.Stat(staticFS, r.URL.Path); err != nil {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Cache-Control", "max-age=300")
		files.ServeHTTP(w, r)
	})
}

func statusName(s xactpb.GlobalStatus) string {
	return strings.TrimPrefix(s.String(), "GLOBAL_STATUS_")
}

func branchType(t xactpb.BranchType) string { return strings.TrimPrefix(t.String(), "BRANCH_TYPE_") }

// txURL is the page of global xid.
func txURL(xid string) string { return Path + "tx/" + url.PathEscape(xid) }

func fmtMs(ms int64) string {
	if ms == 0 {
		return "-"
	}
	return time.UnixMilli(ms).Local().Format("2006-01-02 15:04:05.000 MST")
}

// ago is how long before now ms was, to the second.
func ago(now time.Time, ms int64) string {
	if ms == 0 {
		return "-"
	}
	d := now.Sub(time.UnixMilli(ms)).Round(time.Second)
	if d < 0 {
		return "0s"
	}
	if d >= 48*time.Hour {
		return strconv.FormatInt(int64(d/(24*time.Hour)), 10) + "d" // whole days
	}
	return d.String()
}

package tm

import (
	"net/http"

	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/xact-io/xact/internal/global"
)

// Header is the HTTP header that carries the XID between services.
const Header = "Xact-Xid"

// Middleware returns a handler that puts the XID of the request's Header
// into the request's context (WithXID) before calling next, with the W3C
// trace context sent beside it (traceparent) if the context has no span
// yet (no otelhttp handler ran first). A request whose
// XID is invalid (see ValidateXID), or that carries two different XIDs, is
// answered with 400 Bad Request and next is not called: running it outside
// the caller's transaction would keep effects the caller may roll back.
func Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		vals := r.Header.Values(Header)
		if len(vals) == 0 {
			next.ServeHTTP(w, r)
			return
		}
		xid := vals[0]
		for _, v := range vals[1:] {
			if v != xid {
				http.Error(w, "xact: several different "+Header+" headers", http.StatusBadRequest)
				return
			}
		}
		if err := ValidateXID(xid); err != nil {
			http.Error(w, "xact: header "+Header+": "+err.Error(), http.StatusBadRequest)
			return
		}
		ctx := joinTrace(r.Context(), propagation.HeaderCarrier(r.Header))
		next.ServeHTTP(w, r.WithContext(WithXID(ctx, xid)))
	})
}

// Transport returns a RoundTripper that sets Header from the XID of each
// request's context and then calls base (http.DefaultTransport if nil). A
// context made by WithoutXID removes a Header set by hand. Beside the XID
// it sets the W3C trace context of the context's span (traceparent,
// tracestate). The caller's request is not modified; a copy is sent.
func Transport(base http.RoundTripper) http.RoundTripper {
	if base == nil {
		base = http.DefaultTransport
	}
	return &transport{base: base}
}

type transport struct{ base http.RoundTripper }

// RoundTrip implements http.RoundTripper.
func (t *transport) RoundTrip(r *http.Request) (*http.Response, error) {
	ctx := r.Context()
	xid, ok := XID(ctx)
	if ok {
		if err := EnsureBegun(ctx); err != nil {
			if r.Body != nil {
				r.Body.Close() // RoundTrip must close the body, even on error
			}
			return nil, err
		}
	}
	switch {
	case ok && (len(r.Header.Values(Header)) != 1 || r.Header.Get(Header) != xid || trace.SpanContextFromContext(ctx).IsValid()):
		r = r.Clone(ctx)
		r.Header.Set(Header, xid)
		setTraceContext(ctx, propagation.HeaderCarrier(r.Header))
	case !ok && global.ExplicitlyWithout(ctx) && r.Header.Get(Header) != "":
		r = r.Clone(ctx)
		r.Header.Del(Header)
	}
	return t.base.RoundTrip(r)
}

// CloseIdleConnections closes the idle connections of the base transport,
// if it can (http.Client.CloseIdleConnections calls it).
func (t *transport) CloseIdleConnections() {
	if c, ok := t.base.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}

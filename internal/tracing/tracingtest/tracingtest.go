// Package tracingtest records the spans of a test in memory (the SDK's
// tracetest.InMemoryExporter) and lets the test wait for a span to end
// without sleeping:
//
//	rec := tracingtest.New(t)
//	m := tm.New(conn, tm.WithTracerProvider(rec.TP))
//	...
//	rec.WaitSpan(t, "xact.phase_two.commit") // phase two is asynchronous
//	spans := rec.Spans()
//	t.Log("\n" + tracingtest.Tree(spans))
package tracingtest

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

// Recorder is a tracer provider whose spans end up in memory.
type Recorder struct {
	// TP is the provider to give the code under test.
	TP  *sdktrace.TracerProvider
	exp *tracetest.InMemoryExporter

	mu    sync.Mutex
	ended chan struct{} // closed and replaced whenever a span ends
}

// New returns a Recorder that is shut down when the test ends.
func New(t testing.TB) *Recorder {
	r := &Recorder{exp: tracetest.NewInMemoryExporter(), ended: make(chan struct{})}
	r.TP = sdktrace.NewTracerProvider(
		sdktrace.WithSyncer(r.exp),
		sdktrace.WithSpanProcessor(notifier{r}),
	)
	t.Cleanup(func() { r.TP.Shutdown(context.Background()) })
	return r
}

// notifier wakes the waiters of a Recorder when a span ends; it runs after
// the exporter's processor, so the span is in memory by then.
type notifier struct{ r *Recorder }

func (notifier) OnStart(context.Context, sdktrace.ReadWriteSpan) {}
func (n notifier) OnEnd(sdktrace.ReadOnlySpan) {
	n.r.mu.Lock()
	close(n.r.ended)
	n.r.ended = make(chan struct{})
	n.r.mu.Unlock()
}
func (notifier) Shutdown(context.Context) error   { return nil }
func (notifier) ForceFlush(context.Context) error { return nil }

// Spans returns the spans that ended, in the order they ended.
func (r *Recorder) Spans() tracetest.SpanStubs { return r.exp.GetSpans() }

// Reset forgets the spans that ended.
func (r *Recorder) Reset() { r.exp.Reset() }

// Wait waits up to 20s until done holds for the spans that ended, and
// fails the test if it does not.
func (r *Recorder) Wait(t testing.TB, what string, done func(tracetest.SpanStubs) bool) tracetest.SpanStubs {
	t.Helper()
	timeout := time.After(20 * time.Second)
	for {
		r.mu.Lock()
		ended := r.ended
		r.mu.Unlock()
		if spans := r.Spans(); done(spans) {
			return spans
		}
		select {
		case <-ended:
		case <-timeout:
			t.Fatalf("no %s after 20s; spans:\n%s", what, Tree(r.Spans()))
		}
	}
}

// WaitSpan waits until a span named name has ended and returns it.
func (r *Recorder) WaitSpan(t testing.TB, name string) tracetest.SpanStub {
	t.Helper()
	spans := r.Wait(t, "span "+name, func(s tracetest.SpanStubs) bool { return Find(s, name) != nil })
	return *Find(spans, name)
}

// Find returns the first span named name, or nil.
func Find(spans tracetest.SpanStubs, name string) *tracetest.SpanStub {
	for i := range spans {
		if spans[i].Name == name {
			return &spans[i]
		}
	}
	return nil
}

// Named returns the spans named name.
func Named(spans tracetest.SpanStubs, name string) []tracetest.SpanStub {
	var out []tracetest.SpanStub
	for _, s := range spans {
		if s.Name == name {
			out = append(out, s)
		}
	}
	return out
}

// ParentName returns the name of the parent of s among spans, or "" if
// its parent is not among them.
func ParentName(spans tracetest.SpanStubs, s tracetest.SpanStub) string {
	if !s.Parent.IsValid() {
		return ""
	}
	for _, p := range spans {
		if p.SpanContext.SpanID() == s.Parent.SpanID() {
			return p.Name
		}
	}
	return ""
}

// Attr returns the value of the attribute key of s as text, or "".
func Attr(s tracetest.SpanStub, key string) string {
	for _, a := range s.Attributes {
		if string(a.Key) == key {
			return a.Value.Emit()
		}
	}
	return ""
}

// Tree renders spans as an indented tree, children under their parents in
// the order they started; a span whose parent is not among spans is a
// root (marked "(remote parent)" if it had one). Each line names the span
// and its xact attributes other than the XID.
func Tree(spans tracetest.SpanStubs) string {
	byID := map[trace.SpanID]bool{}
	for _, s := range spans {
		byID[s.SpanContext.SpanID()] = true
	}
	sorted := slices.Clone(spans)
	slices.SortStableFunc(sorted, func(a, b tracetest.SpanStub) int { return a.StartTime.Compare(b.StartTime) })
	children := map[trace.SpanID][]tracetest.SpanStub{}
	var roots []tracetest.SpanStub
	for _, s := range sorted {
		if p := s.Parent.SpanID(); s.Parent.IsValid() && byID[p] {
			children[p] = append(children[p], s)
		} else {
			roots = append(roots, s)
		}
	}
	var b strings.Builder
	var walk func(s tracetest.SpanStub, depth int)
	walk = func(s tracetest.SpanStub, depth int) {
		fmt.Fprintf(&b, "%s%s", strings.Repeat("  ", depth), s.Name)
		var attrs []string
		for _, a := range s.Attributes {
			if k := string(a.Key); strings.HasPrefix(k, "xact.") && k != "xact.xid" {
				attrs = append(attrs, k[len("xact."):]+"="+a.Value.Emit())
			}
		}
		if len(attrs) > 0 {
			fmt.Fprintf(&b, " [%s]", strings.Join(attrs, " "))
		}
		if depth == 0 && s.Parent.IsValid() {
			b.WriteString(" (remote parent)")
		}
		b.WriteString("\n")
		for _, c := range children[s.SpanContext.SpanID()] {
			walk(c, depth+1)
		}
	}
	for _, r := range roots {
		walk(r, 0)
	}
	return b.String()
}

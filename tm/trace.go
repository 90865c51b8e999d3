package tm

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/xact-io/xact/internal/tracing"
	"github.com/xact-io/xact/protocol/xactpb"
)

// Tracing.
//
// A global transaction is one trace. Do opens its root, "xact.global
// NAME", around fn and the decision; the branch registrations (rm), the
// AT local commits (datasource), the TCC Trys and the saga steps made with
// fn's context are its descendants; "xact.commit" or "xact.rollback" is
// the decision. xact's spans are the client spans of the RPCs that name a
// global (they inject their W3C context themselves, over any connection);
// otelgrpc's handler on Dial's connection spans the other RPCs. The TC
// keeps the trace context of the requests that named the global and sends
// it with each phase-two action, so the RM's "xact.phase_two.commit" and
// "xact.phase_two.rollback" spans join the same trace, in whatever process
// they run. Every span has the attribute xact.xid.
//
// The spans come from the application's tracer provider
// (otel.GetTracerProvider unless WithTracerProvider says otherwise): xact
// sets up no exporter of its own, and while the application has set no
// provider it starts no span at all (tracing.Off). Its hops carry W3C
// trace context whatever the application's propagator is (see the XID
// helpers in grpc.go and http.go).

// scope is the instrumentation scope of the TM's spans.
const scope = "github.com/xact-io/xact/tm"

// Span names of the TM.
const (
	spanGlobal   = "xact.global"
	spanCommit   = "xact.commit"
	spanRollback = "xact.rollback"
)

func globalSpanName(name string) string {
	if name == "" {
		return spanGlobal
	}
	return spanGlobal + " " + name
}

// startGlobal opens the root span of a global transaction named name.
func (m *Manager) startGlobal(ctx context.Context, name string) (context.Context, trace.Span) {
	ctx, span := m.tracer.Start(ctx, globalSpanName(name))
	if span.IsRecording() {
		span.SetAttributes(tracing.KeyName.String(name))
	}
	return ctx, span
}

// startDecision opens the span of a Commit or Rollback (name) of a global.
func (m *Manager) startDecision(ctx context.Context, name string) (context.Context, trace.Span) {
	return m.tracer.Start(ctx, name)
}

// endDecision ends the span of a decision on xid with the status the TC
// answered. (Attributes are set in one call: each call of SetAttributes
// that outgrows the span's attribute slice reallocates it.)
func endDecision(span trace.Span, xid string, st xactpb.GlobalStatus, err error) {
	if span.IsRecording() {
		span.SetAttributes(tracing.XID(xid), tracing.KeyStatus.String(st.String()))
	}
	tracing.End(span, err)
}

// setXID names the global transaction of span once it is known.
func setXID(span trace.Span, xid string) {
	if xid != "" && span.IsRecording() {
		span.SetAttributes(tracing.XID(xid))
	}
}

// panicked marks span as ended by a panic or runtime.Goexit in fn.
func panicked(span trace.Span) {
	if span.IsRecording() {
		span.SetStatus(codes.Error, "fn panicked")
		span.SetAttributes(attribute.Bool("xact.panic", true))
	}
}

// setTraceContext sets the W3C trace context of ctx's span in a carrier
// beside the XID, replacing any there; it does nothing without a valid
// span.
func setTraceContext(ctx context.Context, c propagation.TextMapCarrier) {
	if trace.SpanContextFromContext(ctx).IsValid() {
		tracing.Propagator.Inject(ctx, c)
	}
}

// joinTrace returns ctx with the remote span context that a carrier holds
// beside the XID, unless ctx already has a span (an otelgrpc or otelhttp
// server handler ran first).
func joinTrace(ctx context.Context, c propagation.TextMapCarrier) context.Context {
	if trace.SpanContextFromContext(ctx).IsValid() {
		return ctx
	}
	return tracing.Propagator.Extract(ctx, c)
}

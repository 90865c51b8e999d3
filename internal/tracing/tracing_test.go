package tracing

import (
	"context"
	"testing"

	"go.opentelemetry.io/otel"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

func TestTracerStart(t *testing.T) {
	tp := sdktrace.NewTracerProvider()
	defer tp.Shutdown(context.Background())
	tr := NewTracer(tp, "test")
	unsampled := trace.ContextWithRemoteSpanContext(context.Background(), trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: trace.TraceID{1}, SpanID: trace.SpanID{2}}))
	sampled := trace.ContextWithRemoteSpanContext(context.Background(), trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: trace.TraceID{1}, SpanID: trace.SpanID{2}, TraceFlags: trace.FlagsSampled}))
	tests := []struct {
		name      string
		tr        Tracer
		ctx       context.Context
		opts      []trace.SpanStartOption
		recording bool
	}{
		{"root", tr, context.Background(), nil, true},
		{"sampled parent", tr, sampled, nil, true},
		{"unsampled parent", tr, unsampled, nil, false},
		{"unsampled parent, new root", tr, unsampled, []trace.SpanStartOption{trace.WithNewRoot()}, true},
		{"no provider set", NewTracer(otel.GetTracerProvider(), "test"), sampled, nil, false},
		{"zero Tracer", Tracer{}, context.Background(), nil, false},
	}
	for _, tt := range tests {
		ctx, span := tt.tr.Start(tt.ctx, "span", tt.opts...)
		if got := span.IsRecording(); got != tt.recording {
			t.Errorf("%s: recording = %v, want %v", tt.name, got, tt.recording)
		}
		if !tt.recording && ctx != tt.ctx {
			t.Errorf("%s: a span that records nothing changed the context", tt.name)
		}
		span.End()
	}
}

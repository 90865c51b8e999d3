package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/exporters/stdout/stdouttrace"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"google.golang.org/grpc"

	"github.com/xact-io/xact/internal/tracing"
	"github.com/xact-io/xact/rm"
	"github.com/xact-io/xact/tm"
)

// Tracing of the commands, from the standard OTEL_* environment only: the
// server exports its spans when OTEL_EXPORTER_OTLP_ENDPOINT or
// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is set, or OTEL_TRACES_EXPORTER names
// an exporter:
//
//	otlp     OTLP, over OTEL_EXPORTER_OTLP_TRACES_PROTOCOL or
//	         OTEL_EXPORTER_OTLP_PROTOCOL: http/protobuf (the default) or grpc;
//	         the exporter reads the other OTEL_EXPORTER_OTLP_* variables
//	console  one JSON object a span on standard error
//	none     nothing (also OTEL_SDK_DISABLED=true)
//	discard  xact's own: spans are made and dropped (to measure their cost)
//
// The SDK reads OTEL_SERVICE_NAME (default "xact"), OTEL_RESOURCE_ATTRIBUTES,
// OTEL_TRACES_SAMPLER(_ARG) and OTEL_BSP_*. Without any of these the
// tracer provider stays the global no-op one and tracing costs next to
// nothing.

// tracingEnv says which exporter the environment asks for: "" for none.
func tracingEnv(getenv func(string) string) (string, error) {
	if strings.EqualFold(getenv("OTEL_SDK_DISABLED"), "true") {
		return "", nil
	}
	exp := strings.ToLower(strings.TrimSpace(getenv("OTEL_TRACES_EXPORTER")))
	switch exp {
	case "none":
		return "", nil
	case "":
		if getenv("OTEL_EXPORTER_OTLP_ENDPOINT") == "" && getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") == "" {
			return "", nil
		}
		return "otlp", nil
	case "otlp", "console", "discard":
		return exp, nil
	}
	return "", fmt.Errorf("OTEL_TRACES_EXPORTER=%q: want otlp, console, none or discard", exp)
}

// setupTracing installs, as the process's global tracer provider and
// propagator, what the environment asks for (see above), and returns the
// function that flushes and stops it (within 5s). It does nothing without
// OTEL_* variables.
func setupTracing(ctx context.Context, log *slog.Logger, stderr io.Writer) (func(), error) {
	kind, err := tracingEnv(os.Getenv)
	if err != nil || kind == "" {
		return func() {}, err
	}
	var exp sdktrace.SpanExporter
	switch kind {
	case "otlp":
		proto := os.Getenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
		if proto == "" {
			proto = os.Getenv("OTEL_EXPORTER_OTLP_PROTOCOL")
		}
		switch proto {
		case "", "http/protobuf":
			exp, err = otlptracehttp.New(ctx)
		case "grpc":
			exp, err = otlptracegrpc.New(ctx)
		default:
			return nil, fmt.Errorf("OTEL_EXPORTER_OTLP_PROTOCOL=%q: want http/protobuf or grpc", proto)
		}
	case "console":
		exp, err = stdouttrace.New(stdouttrace.WithWriter(stderr))
	case "discard":
		exp = discardExporter{}
	}
	if err != nil {
		return nil, fmt.Errorf("tracing: %s exporter: %w", kind, err)
	}
	tp, err := newTracerProvider(ctx, exp)
	if err != nil {
		return nil, err
	}
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) { log.Warn("opentelemetry", "err", err) }))
	otel.SetTracerProvider(tp)
	otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}))
	log.Info("tracing on", "exporter", kind)
	return func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := tp.Shutdown(sctx); err != nil {
			log.Warn("tracing: flush at exit", "err", err)
		}
	}, nil
}

// newTracerProvider returns an SDK tracer provider that batches spans to
// exp, with the resource the environment describes (service.name "xact"
// unless OTEL_SERVICE_NAME or OTEL_RESOURCE_ATTRIBUTES says otherwise).
func newTracerProvider(ctx context.Context, exp sdktrace.SpanExporter) (*sdktrace.TracerProvider, error) {
	res, err := resource.New(ctx,
		resource.WithAttributes(attribute.String("service.name", "xact")),
		resource.WithFromEnv(), // later detectors win
		resource.WithTelemetrySDK(),
	)
	if err != nil {
		return nil, fmt.Errorf("tracing: resource: %w", err)
	}
	return sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res)), nil
}

// discardExporter drops every span: with it the spans are made, sampled and
// batched as with a real exporter, at no cost of export.
type discardExporter struct{}

func (discardExporter) ExportSpans(context.Context, []sdktrace.ReadOnlySpan) error { return nil }
func (discardExporter) Shutdown(context.Context) error                             { return nil }

// benchTrace is what `xact bench --trace` gives its clients.
type benchTrace struct {
	dial []grpc.DialOption
	tm   []tm.Option
	rm   []rm.Option
	stop func()
}

// benchTracing returns, when on, the options that make the bench's
// connections, TMs and RMs record their spans into an SDK tracer provider
// that batches them to a discard exporter; the bench's own contexts carry
// no span, so each global transaction is a trace of its own.
func benchTracing(ctx context.Context, on bool) (benchTrace, error) {
	if !on {
		return benchTrace{stop: func() {}}, nil
	}
	tp, err := newTracerProvider(ctx, discardExporter{})
	if err != nil {
		return benchTrace{}, err
	}
	return benchTrace{
		dial: []grpc.DialOption{grpc.WithStatsHandler(tracing.ClientHandler(tp))},
		tm:   []tm.Option{tm.WithTracerProvider(tp)},
		rm:   []rm.Option{rm.WithTracerProvider(tp)},
		stop: func() { tp.Shutdown(context.WithoutCancel(ctx)) },
	}, nil
}

package main

import "testing"

func TestTracingEnv(t *testing.T) {
	tests := []struct {
		env     map[string]string
		want    string
		wantErr bool
	}{
		{nil, "", false},
		{map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}, "otlp", false},
		{map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:4318/v1/traces"}, "otlp", false},
		{map[string]string{"OTEL_TRACES_EXPORTER": "otlp"}, "otlp", false},
		{map[string]string{"OTEL_TRACES_EXPORTER": "console"}, "console", false},
		{map[string]string{"OTEL_TRACES_EXPORTER": "discard"}, "discard", false},
		{map[string]string{"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}, "", false},
		{map[string]string{"OTEL_SDK_DISABLED": "true", "OTEL_TRACES_EXPORTER": "otlp"}, "", false},
		{map[string]string{"OTEL_TRACES_EXPORTER": "jaeger"}, "", true},
	}
	for _, tt := range tests {
		got, err := tracingEnv(func(k string) string { return tt.env[k] })
		if got != tt.want || (err != nil) != tt.wantErr {
			t.Errorf("tracingEnv(%v) = %q, %v; want %q, error %v", tt.env, got, err, tt.want, tt.wantErr)
		}
	}
}

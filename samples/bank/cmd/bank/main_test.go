package main

import (
	"io"
	"testing"
)

func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		nil,
		{"withdraw"},
		{"transfer", "--mode", "xa"},
		{"transfer", "--mode", "unspecified"},
		{"transfer", "--mode", "at", "--want", "maybe"},
		{"transfer", "--no-such-flag"},
		{"report", "--api"},
	} {
		if err := run(args, io.Discard); err == nil {
			t.Errorf("run(%q) = nil, want a usage error", args)
		}
	}
}

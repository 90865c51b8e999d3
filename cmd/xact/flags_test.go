package main

import (
	"flag"
	"os"
	"path/filepath"
	"testing"
)

func TestParseFlagsPrecedence(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "xact.conf")
	if err := os.WriteFile(cfg, []byte("# comment\nlisten = 0.0.0.0:1\ndata-dir = \"/from/file\"\nnode-id = file\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("XACT_DATA_DIR", "/from/env")
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	fs.String("config", "", "")
	listen := fs.String("listen", "default", "")
	dataDir := fs.String("data-dir", "default", "")
	node := fs.String("node-id", "default", "")
	pos, err := parseFlags(fs, []string{"XID1", "--config", cfg, "--node-id", "flag"})
	if err != nil {
		t.Fatalf("parseFlags: %v", err)
	}
	tests := []struct{ name, got, want string }{
		{"listen (file)", *listen, "0.0.0.0:1"},
		{"data-dir (env beats file)", *dataDir, "/from/env"},
		{"node-id (flag beats file)", *node, "flag"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s = %q, want %q", tt.name, tt.got, tt.want)
		}
	}
	if len(pos) != 1 || pos[0] != "XID1" {
		t.Errorf("positional = %v, want [XID1]", pos)
	}
}

func TestParseFlagsBadConfig(t *testing.T) {
	dir := t.TempDir()
	for name, content := range map[string]string{
		"unknown":   "nope = 1\n",
		"no equals": "listen\n",
	} {
		cfg := filepath.Join(dir, name)
		os.WriteFile(cfg, []byte(content), 0o644)
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		fs.String("config", "", "")
		fs.String("listen", "", "")
		if _, err := parseFlags(fs, []string{"--config", cfg}); err == nil {
			t.Errorf("%s: parseFlags accepted %q", name, content)
		}
	}
}

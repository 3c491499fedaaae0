package main

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLoadFileConfig_DocumentedExample(t *testing.T) {
	fc, err := loadFileConfig("../../docs/goat-gateway.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if fc.Listen != "0.0.0.0:8080" || fc.Dev || !fc.NoDevIssuer || len(fc.Issuers) != 2 || fc.Issuers[1].KeyFiles[0] == "" {
		t.Fatalf("example parsed as %+v", fc)
	}
}

func TestLoadFileConfig_UnknownKeyIsAnError(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.yaml")
	if err := os.WriteFile(path, []byte("listen: x\nlisten_typo: y\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := loadFileConfig(path); err == nil || !strings.Contains(err.Error(), "listen_typo") {
		t.Fatalf("err=%v, want it to name the unknown key", err)
	}
}

func TestToken_PrintsOnlyTheToken(t *testing.T) {
	var out bytes.Buffer
	dir := t.TempDir()
	if err := run(t.Context(), []string{"token", "--data-dir", dir, "--sub", "alice", "--role", "editor", "--ttl", "1h"}, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	tok := strings.TrimSpace(out.String())
	if strings.Count(tok, ".") != 2 || strings.ContainsAny(tok, " \n") {
		t.Fatalf("stdout is not one JWT: %q", out.String())
	}
	if err := run(t.Context(), []string{"token", "--data-dir", dir}, io.Discard, io.Discard); err == nil {
		t.Fatal("token without --sub succeeded")
	}
}

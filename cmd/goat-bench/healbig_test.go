package main

import (
	"os"
	"path/filepath"
	"testing"
)

// The heal scenario starts a gateway on a copy of the cold fixture, whose
// keys the gateway refuses when group or others may read them: the copy
// keeps each file's permissions.
func TestCopyDir_KeepsPermissions(t *testing.T) {
	src, dst := t.TempDir(), filepath.Join(t.TempDir(), "copy")
	if err := os.MkdirAll(filepath.Join(src, "keys"), 0o700); err != nil {
		t.Fatal(err)
	}
	files := map[string]os.FileMode{"keys/root.key": 0o600, "repo.log": 0o644}
	for name, mode := range files {
		if err := os.WriteFile(filepath.Join(src, name), []byte(name), mode); err != nil {
			t.Fatal(err)
		}
	}
	if err := copyDir(src, dst); err != nil {
		t.Fatal(err)
	}
	for name, mode := range files {
		fi, err := os.Stat(filepath.Join(dst, name))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != mode {
			t.Errorf("%s: mode %v, want %v", name, fi.Mode().Perm(), mode)
		}
		if b, _ := os.ReadFile(filepath.Join(dst, name)); string(b) != name {
			t.Errorf("%s: content %q", name, b)
		}
	}
	if fi, err := os.Stat(filepath.Join(dst, "keys")); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("keys directory: %v %v, want 0700", fi.Mode().Perm(), err)
	}
}

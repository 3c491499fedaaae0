package layout

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/mod/modfile"
	modv "golang.org/x/mod/module"
	modzip "golang.org/x/mod/zip"
)

// TestLayout_SDKIsItsOwnModule: an app depends on the Go SDK the way it
// would from a release, `go get github.com/goat-gateway/goat-gateway/sdk/go@vX`,
// and builds. The versions are served from this repository's committed
// HEAD by a file GOPROXY (as the module proxy would serve the tags vX and
// sdk/go/vX), every other module from the local module cache, into an
// empty module cache: no network, nothing of this machine's cache reused
// for our own modules. The app's go.mod then names none of the server's
// dependencies.
func TestLayout_SDKIsItsOwnModule(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Fatal("git is needed: the module zips are made from the repository")
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	sdkMod := readModFile(t, filepath.Join(root, "sdk/go/go.mod"))
	if sdkMod.Module.Mod.Path != module+"/sdk/go" {
		t.Fatalf("sdk/go/go.mod: module %q, want %q", sdkMod.Module.Mod.Path, module+"/sdk/go")
	}
	var rootVersion string
	for _, r := range sdkMod.Require {
		if r.Mod.Path == module {
			rootVersion = r.Mod.Version
		}
	}
	if rootVersion == "" {
		t.Fatalf("sdk/go/go.mod does not require %s", module)
	}
	// The SDK is released with the same version as the gateway it
	// requires (tags vX and sdk/go/vX on one commit).
	sdkVersion := rootVersion

	// HEAD's files, as a tag's would be: git archive, not the working tree.
	tree := t.TempDir()
	archive := exec.Command("sh", "-c", `git -C "$1" archive --format=tar HEAD | tar -x -C "$2"`, "sh", root, tree)
	if b, err := archive.CombinedOutput(); err != nil {
		t.Fatalf("git archive HEAD: %v\n%s", err, b)
	}
	proxy := t.TempDir()
	publish(t, proxy, tree, "", module, rootVersion)
	publish(t, proxy, tree, "sdk/go", module+"/sdk/go", sdkVersion)

	out, err := exec.Command("go", "env", "GOMODCACHE").Output()
	if err != nil {
		t.Fatal(err)
	}
	cacheProxy := filepath.Join(strings.TrimSpace(string(out)), "cache", "download")

	app := t.TempDir()
	env := append(os.Environ(),
		"GOWORK=off",
		"GOFLAGS=-modcacherw",
		"GOMODCACHE="+t.TempDir(),
		"GOPROXY=file://"+proxy+",file://"+cacheProxy,
		"GOSUMDB=off", "GOTOOLCHAIN=local", // checksums: the local cache already verified them
	)
	run := func(args ...string) {
		t.Helper()
		cmd := exec.Command("go", args...)
		cmd.Dir, cmd.Env = app, env
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, b)
		}
	}
	writeFile(t, filepath.Join(app, "main.go"), `package main

import goat "github.com/goat-gateway/goat-gateway/sdk/go"

func main() { _ = goat.Config{} }
`)
	run("mod", "init", "example.com/app")
	run("get", module+"/sdk/go@"+sdkVersion)
	run("mod", "tidy")
	// -trimpath: the module cache is a new directory each run, and
	// without it every package of the app would miss the build cache.
	run("build", "-trimpath", "-o", filepath.Join(app, "app"), ".")

	appMod := readModFile(t, filepath.Join(app, "go.mod"))
	server := []string{
		"github.com/labstack/echo", "github.com/getkin/kin-openapi", "github.com/golang-jwt/jwt",
		"github.com/nats-io/", "github.com/prometheus/", "go.yaml.in/yaml", "gopkg.in/yaml",
	}
	var got []string
	for _, r := range appMod.Require {
		got = append(got, r.Mod.String())
		for _, s := range server {
			if strings.HasPrefix(r.Mod.Path, s) {
				t.Errorf("the app's go.mod requires %s, a dependency of the server only", r.Mod)
			}
		}
	}
	t.Logf("the app's requirements: %s", strings.Join(got, ", "))
}

// publish writes the proxy files (list, .info, .mod, .zip) of the module at
// path, version v, made from subdir of tree (the module zip leaves out
// nested modules, as the proxy does).
func publish(t *testing.T, proxy, tree, subdir, path, v string) {
	t.Helper()
	dir := filepath.Join(proxy, filepath.FromSlash(path), "@v")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	var zip bytes.Buffer
	w := &zip
	if err := modzip.CreateFromDir(w, modv.Version{Path: path, Version: v}, filepath.Join(tree, subdir)); err != nil {
		t.Fatalf("zip of %s@%s: %v", path, v, err)
	}
	mod, err := os.ReadFile(filepath.Join(tree, subdir, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "list"), v+"\n")
	writeFile(t, filepath.Join(dir, v+".info"), `{"Version":"`+v+`"}`)
	writeFile(t, filepath.Join(dir, v+".mod"), string(mod))
	writeFile(t, filepath.Join(dir, v+".zip"), zip.String())
}

func readModFile(t *testing.T, path string) *modfile.File {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	f, err := modfile.Parse(path, b, nil)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func writeFile(t *testing.T, path, s string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

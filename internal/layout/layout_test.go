package layout

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/goat-gateway/goat-gateway"

// goList runs `go list` with a template over pkgs and returns its lines.
func goList(t *testing.T, args ...string) []string {
	t.Helper()
	cmd := exec.Command("go", append([]string{"list"}, args...)...)
	cmd.Dir = "../.." // the module root: tests run in their package's folder
	out, err := cmd.Output()
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			t.Fatalf("go list %v: %v\n%s", args, err, ee.Stderr)
		}
		t.Fatalf("go list %v: %v", args, err)
	}
	return strings.Fields(string(out))
}

// ours returns the module's packages among imports, relative to the module.
func ours(imports []string) []string {
	var out []string
	for _, p := range imports {
		if rel, ok := strings.CutPrefix(p, module+"/"); ok {
			out = append(out, rel)
		}
	}
	return out
}

// TestLayout_ImportsPointDown: each package's direct imports of the
// module's own packages stay within what DESIGN section 1 allows.
func TestLayout_ImportsPointDown(t *testing.T) {
	allowed := map[string][]string{
		"core":    {},
		"merge":   {"core"},
		"sync":    {"core"},
		"auth":    {"core"},
		"storage": {"core", "merge"},
		"node":    {"core", "merge", "sync", "storage", "auth"},
		"api":     {"core", "sync", "auth", "node", "gen", "gen/models", "gen/apiserver", "internal/uring"},
		"cluster": {"core", "sync", "auth", "node", "client"},
		"client":  {"core", "sync", "gen/models", "gen/apiclient"},
		"sdk/go":  {"core", "merge", "sync", "storage", "client", "gen/models"},
	}
	for pkg, ok := range allowed {
		t.Run(strings.ReplaceAll(pkg, "/", "_"), func(t *testing.T) {
			imports := ours(goList(t, "-f", `{{join .Imports " "}}`, "./"+pkg))
			for _, imp := range imports {
				if !slices.Contains(ok, imp) {
					t.Errorf("%s imports %s; allowed: %v", pkg, imp, ok)
				}
			}
		})
	}
}

// TestLayout_NoServerInClients: nothing the Go SDK or the client compiles
// is an HTTP server framework, an OpenAPI validator, a JWT or YAML library,
// or a server package of this module.
func TestLayout_NoServerInClients(t *testing.T) {
	banned := []string{
		"github.com/labstack/echo", "github.com/getkin/kin-openapi", "github.com/golang-jwt/jwt",
		"go.yaml.in/yaml", "gopkg.in/yaml", "github.com/oapi-codegen/runtime/strictmiddleware",
		module + "/api", module + "/cluster", module + "/node", module + "/auth", module + "/gen/apiserver",
	}
	for _, pkg := range []string{"./sdk/go/...", "./client/..."} {
		t.Run(strings.Trim(pkg, "./"), func(t *testing.T) {
			for _, dep := range goList(t, "-deps", pkg) {
				for _, b := range banned {
					if dep == b || strings.HasPrefix(dep, b+"/") {
						t.Errorf("%s depends on %s", pkg, dep)
					}
				}
			}
		})
	}
}

// TestLayout_FacesDoNotReachAround: api and cluster reach the storage only
// through node, and not each other, even indirectly.
func TestLayout_FacesDoNotReachAround(t *testing.T) {
	for _, c := range []struct{ pkg, not string }{
		{"api", "cluster"}, {"cluster", "api"},
	} {
		for _, dep := range goList(t, "-deps", "./"+c.pkg) {
			if dep == module+"/"+c.not {
				t.Errorf("%s depends on %s", c.pkg, c.not)
			}
		}
	}
}

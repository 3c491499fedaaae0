package client

import (
	"os/exec"
	"regexp"
	"strings"
	"testing"
)

// serverSide matches the packages an application that talks to a gateway
// must not compile: the HTTP server framework, the OpenAPI validator, the
// JWT library and any YAML library (DESIGN section 1).
var serverSide = regexp.MustCompile(`labstack/echo|getkin/kin-openapi|golang-jwt|yaml`)

// TestDeps_ClientSide lists the dependencies of this package and of the Go
// SDK (`go list -deps`, tests excluded) and fails on any server-side one:
// the generated client and models must stay apart from the server, and the
// SDK must not import auth.
func TestDeps_ClientSide(t *testing.T) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is needed to list dependencies: %v", err)
	}
	for _, pattern := range []string{".", "../sdk/go/..."} {
		t.Run(pattern, func(t *testing.T) {
			out, err := exec.Command(goBin, "list", "-deps", pattern).Output()
			if err != nil {
				t.Fatalf("go list -deps %s: %v", pattern, err)
			}
			deps := strings.Fields(string(out))
			if len(deps) == 0 {
				t.Fatalf("go list -deps %s listed nothing", pattern)
			}
			for _, dep := range deps {
				if serverSide.MatchString(dep) {
					t.Errorf("%s depends on %s", pattern, dep)
				}
			}
		})
	}
}

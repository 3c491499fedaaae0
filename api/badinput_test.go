package api_test

import (
	"strings"
	"testing"

	"github.com/goat-gateway/goat-gateway/internal/goattest"
)

// Bad input gets a 4xx problem (checkSpec also fails any 5xx and any body
// that does not match openapi.yaml), and leaves the data as it was.
func TestServer_BadInput(t *testing.T) {
	g := startGateway(t, goattest.Config{BodyLimit: 64 << 10})
	alice := g.newAuthor(t, "alice")
	wantStatus(t, g.call(t, "PUT", "/v1/repos/r", alice.Token, nil), 201)
	wantStatus(t, g.call(t, "PUT", "/v1/repos/r/items/k", alice.Token, `{"schema":"any/1","data":{"v":1}}`), 201)
	before := g.call(t, "GET", "/v1/repos/r", alice.Token, nil).body

	zeros := strings.Repeat("0", 64)
	cases := []struct {
		name, method, path, body string
		want                     int
	}{
		{"malformed json", "PUT", "/v1/repos/r/items/k", `{"schema":`, 400},
		{"wrong type", "PUT", "/v1/repos/r/items/k", `{"schema":"any/1","data":[1]}`, 400},
		{"missing field", "PUT", "/v1/repos/r/items/k", `{"data":{}}`, 400},
		{"extra field", "PUT", "/v1/repos/r/items/k", `{"schema":"any/1","data":{},"x":1}`, 400},
		{"duplicate keys", "PUT", "/v1/repos/r/items/k", `{"schema":"any/1","data":{"a":1,"a":2}}`, 400},
		{"unknown schema", "PUT", "/v1/repos/r/items/k", `{"schema":"nope/1","data":{}}`, 422},
		{"oversized", "PUT", "/v1/repos/r/items/k", `{"schema":"any/1","data":{"v":"` + strings.Repeat("x", 70<<10) + `"}}`, 413},
		{"deep nesting", "PUT", "/v1/repos/r/items/k", `{"schema":"any/1","data":{"v":` + strings.Repeat("[", 200) + strings.Repeat("]", 200) + `}}`, 400},
		{"bad repo name", "PUT", "/v1/repos/Bad_Name", "", 400},
		{"dotdot repo", "PUT", "/v1/repos/a..b", "", 400},
		{"delete bad repo name", "DELETE", "/v1/repos/Bad_Name", "", 400},
		{"delete without role admin", "DELETE", "/v1/repos/r", "", 403},
		{"encoded slash", "GET", "/v1/repos/a%2Fb", "", 400},
		{"bad key", "GET", "/v1/repos/r/items/a%20b", "", 400},
		{"bad commit id", "GET", "/v1/repos/r/commits/XYZ", "", 400},
		{"upper-case id", "GET", "/v1/repos/r/commits/" + strings.ToUpper(zeros[:63]) + "A", "", 400},
		{"bad If-Match", "PUT", "/v1/repos/r/items/k", `{"schema":"any/1","data":{}}`, 400},
		{"absurd bloom", "POST", "/v1/repos/r/sync", `{"count":1,"digest":"` + zeros + `","filter":{"m":9999999999,"k":99,"salt":"0000000000000000","bits":"AAAA"}}`, 400},
		{"bloom length mismatch", "POST", "/v1/repos/r/sync", `{"count":1,"digest":"` + zeros + `","filter":{"m":128,"k":3,"salt":"0000000000000000","bits":"AAAA"}}`, 400},
		{"bad digest", "POST", "/v1/repos/r/sync", `{"count":1,"digest":"zz"}`, 400},
		{"commit with bad hex", "POST", "/v1/repos/r/commits", `{"commits":[{"id":"xyz"}]}`, 400},
		{"bad limit", "GET", "/v1/repos/r/log?limit=-5", "", 400},
		{"bad wait", "GET", "/v1/repos/r/log?wait=abc", "", 400},
		{"unknown route", "GET", "/v1/nope", "", 404},
		{"wrong method", "POST", "/v1/repos/r/items/k", `{}`, 405},
		{"patch not an object", "PATCH", "/v1/repos/r/items/k", `[1]`, 400},
		{"schema bad type", "PUT", "/v1/schemas/task/1", `{"fields":{"a":{"type":"blob"}}}`, 400},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var body any
			if c.body != "" {
				body = c.body
			}
			hdr := []string{}
			if c.name == "bad If-Match" {
				hdr = []string{"If-Match", "W/\"x\""}
			}
			if c.method == "PATCH" {
				hdr = []string{"Content-Type", "application/merge-patch+json"}
			}
			r := g.call(t, c.method, c.path, alice.Token, body, hdr...)
			wantStatus(t, r, c.want)
		})
	}
	if after := g.call(t, "GET", "/v1/repos/r", alice.Token, nil).body; string(after) != string(before) {
		t.Fatalf("bad input changed the repository:\n%s\n%s", before, after)
	}
}

package api_test

import (
	"net/http"
	"testing"

	"github.com/goat-gateway/goat-gateway/internal/goattest"
)

// patchItem takes its merge patch as application/merge-patch+json and, for
// generic clients, as application/json; any other type is a 415.
func TestServer_PatchItemContentTypes(t *testing.T) {
	g := startGateway(t, goattest.Config{})
	tok := g.Token("alice")
	wantStatus(t, g.call(t, "PUT", "/v1/repos/r", tok, nil), http.StatusCreated)
	wantStatus(t, g.call(t, "PUT", "/v1/repos/r/items/k", tok, `{"schema":"any/1","data":{"title":"a","done":false,"n":1}}`), http.StatusCreated)
	cases := []struct {
		name, contentType, body string
		status                  int
		want                    map[string]any
	}{
		{"MergePatch", "application/merge-patch+json", `{"done":true}`, 200, map[string]any{"title": "a", "done": true, "n": 1.0}},
		{"PlainJSON", "application/json", `{"title":"b","n":null}`, 200, map[string]any{"title": "b", "done": true}},
		{"PlainJSONWithCharset", "application/json; charset=utf-8", `{"n":2}`, 200, map[string]any{"title": "b", "done": true, "n": 2.0}},
		{"Text", "text/plain", `{"n":3}`, 415, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := g.call(t, "PATCH", "/v1/repos/r/items/k", tok, tc.body, "Content-Type", tc.contentType)
			wantStatus(t, r, tc.status)
			if tc.want == nil {
				return
			}
			var it struct {
				Data map[string]any `json:"data"`
			}
			r.json(t, &it)
			if len(it.Data) != len(tc.want) {
				t.Fatalf("data=%v, want %v", it.Data, tc.want)
			}
			for k, v := range tc.want {
				if it.Data[k] != v {
					t.Fatalf("data=%v, want %v", it.Data, tc.want)
				}
			}
		})
	}
}

package api_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/goat-gateway/goat-gateway/internal/goattest"
)

// TestServer_ItemHistoryPages: a page of an item's history costs in
// proportion to the page, not to the history (issue 17, item 9), and the
// pages, walked with before, are the history.
func TestServer_ItemHistoryPages(t *testing.T) {
	g := goattest.StartGateway(t, goattest.Config{})
	tok := "Bearer " + g.Token("alice")
	h := g.Handler()
	serve := func(method, path, body string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(method, path, strings.NewReader(body))
		req.Header.Set("Authorization", tok)
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		return w
	}
	if w := serve("PUT", "/v1/repos/user.alice.h", ""); w.Code != http.StatusCreated {
		t.Fatalf("create: %d %s", w.Code, w.Body)
	}
	const long = 400
	heads := map[string][]string{} // newest first
	for key, n := range map[string]int{"short": 3, "long": long} {
		for i := range n {
			w := serve("PUT", "/v1/repos/user.alice.h/items/"+key, fmt.Sprintf(`{"schema":"any/1","data":{"n":%d}}`, i))
			if w.Code != http.StatusOK && w.Code != http.StatusCreated {
				t.Fatalf("put %s: %d %s", key, w.Code, w.Body)
			}
			var it struct{ Head string }
			if err := json.Unmarshal(w.Body.Bytes(), &it); err != nil {
				t.Fatal(err)
			}
			heads[key] = append([]string{it.Head}, heads[key]...)
		}
	}
	page := func(tb testing.TB, path string) (ids []string, next string) {
		tb.Helper()
		w := serve("GET", path, "")
		if w.Code != http.StatusOK {
			tb.Fatalf("GET %s: %d %s", path, w.Code, w.Body)
		}
		var p struct {
			Commits []struct{ ID string }
			Next    string
		}
		if err := json.Unmarshal(w.Body.Bytes(), &p); err != nil {
			tb.Fatal(err)
		}
		for _, c := range p.Commits {
			ids = append(ids, c.ID)
		}
		return ids, p.Next
	}

	t.Run("PagesAreTheHistory", func(t *testing.T) {
		var got []string
		path := "/v1/repos/user.alice.h/items/long/history?limit=7"
		for {
			ids, next := page(t, path)
			got = append(got, ids...)
			if next == "" {
				break
			}
			path = "/v1/repos/user.alice.h/items/long/history?limit=7&before=" + next
		}
		if !slices.Equal(got, heads["long"]) {
			t.Fatalf("pages hold %d commits, want the %d of the history newest first", len(got), len(heads["long"]))
		}
	})
	t.Run("LastPageHasNoNext", func(t *testing.T) {
		ids, next := page(t, "/v1/repos/user.alice.h/items/short/history?limit=3")
		if !slices.Equal(ids, heads["short"]) || next != "" {
			t.Fatalf("page %v next %q, want %v and no next", ids, next, heads["short"])
		}
	})

	// Allocations stand for the records read: a page of one on a history
	// of 400 must cost what it costs on a history of 3.
	allocs := func(path string) float64 {
		return testing.AllocsPerRun(20, func() { serve("GET", path, "") })
	}
	for name, c := range map[string]struct{ short, long string }{
		"Newest": {"/v1/repos/user.alice.h/items/short/history?limit=1", "/v1/repos/user.alice.h/items/long/history?limit=1"},
		"Before": {"/v1/repos/user.alice.h/items/short/history?limit=1&before=" + heads["short"][0],
			"/v1/repos/user.alice.h/items/long/history?limit=1&before=" + heads["long"][long/2]},
	} {
		t.Run(name, func(t *testing.T) {
			onShort, onLong := allocs(c.short), allocs(c.long)
			if onLong > onShort+40 {
				t.Fatalf("limit=1 on a history of %d: %.0f allocations, on a history of 3: %.0f", long, onLong, onShort)
			}
		})
	}
}

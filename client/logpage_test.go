package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/goat-gateway/goat-gateway/client"
	"github.com/goat-gateway/goat-gateway/core"
	"github.com/goat-gateway/goat-gateway/internal/goattest"
)

// jsonPage is a log page as encoding/json reads it: the oracle the page
// splitter is held to.
type jsonPage struct {
	Commits []json.RawMessage `json:"commits"`
	Next    string            `json:"next"`
	Tail    bool              `json:"tail"`
}

// sameAsJSON fails unless whatever client.SplitLogPage accepts in b,
// encoding/json reads as the same page, and unless the client's page
// decoding refuses exactly what encoding/json refuses. It reports whether
// the splitter took the page.
func sameAsJSON(tb testing.TB, b []byte) (split bool) {
	tb.Helper()
	var want jsonPage
	jerr := json.Unmarshal(b, &want)
	commits, next, tail, ok := client.SplitLogPage(b)
	if ok {
		if jerr != nil {
			tb.Fatalf("splitter took a page encoding/json refuses (%v):\n%q", jerr, b)
		}
		if len(commits) != len(want.Commits) || next != want.Next || tail != want.Tail {
			tb.Fatalf("splitter: %d commits, next %q, tail %v; encoding/json: %d, %q, %v\n%q", len(commits), next, tail, len(want.Commits), want.Next, want.Tail, b)
		}
		for i := range commits {
			if string(commits[i]) != string(want.Commits[i]) {
				tb.Fatalf("commit %d: splitter %q, encoding/json %q", i, commits[i], want.Commits[i])
			}
		}
	}
	page, err := client.DecodeLogPage(b)
	switch {
	case (err == nil) != (jerr == nil):
		tb.Fatalf("page decoding: %v; encoding/json: %v\n%q", err, jerr, b)
	case err != nil && !errors.Is(err, core.ErrInvalid):
		tb.Fatalf("page decoding: %v, want core.ErrInvalid", err)
	case err == nil && (len(page.Commits) != len(want.Commits) || page.Next != want.Next || page.More == want.Tail):
		tb.Fatalf("page decoding: %+v; encoding/json: %+v", page, want)
	}
	return ok
}

// gatewayPage spells a page as the gateway writes it.
func gatewayPage(next string, tail bool, commits ...string) []byte {
	return fmt.Appendf(nil, `{"commits":[%s],"next":%q,"tail":%v}`, strings.Join(commits, ","), next, tail)
}

// pageCases are log pages of every shape: the gateway's spelling (split),
// other spellings encoding/json reads (left to it), and malformed ones.
var pageCases = []struct {
	name string
	page string
	// split: the splitter takes it; bad: it is refused.
	split, bad bool
}{
	{name: "empty tail", page: string(gatewayPage("c1.0", true)), split: true},
	{name: "one commit", page: string(gatewayPage("c1.1", false, `{"a":1}`)), split: true},
	{name: "every kind of value", page: string(gatewayPage("Zm9v-_", false,
		`{"s":"q\"b\\s\/\b\f\n\r\t\u00e9\uD83D\uDE00 é","n":[0,-0,1.5,-2e10,3E+2,4e-3],"l":[true,false,null],"o":{},"a":[],"d":[[{"x":[{}]}]]}`,
		`[]`, `"x"`, `12`, `null`)), split: true},
	{name: "whitespace inside a commit", page: string(gatewayPage("n", true, "{ \"a\" :\t[ 1 , 2 ]\n}")), split: true},
	{name: "invalid UTF-8 and a lone surrogate (encoding/json takes them)", page: string(gatewayPage("n", true, "{\"a\":\"\xff\\ud800\"}")), split: true},

	{name: "indented", page: "{\n \"commits\": [],\n \"next\": \"n\",\n \"tail\": true\n}"},
	{name: "members reordered", page: `{"next":"n","tail":true,"commits":[{"a":1}]}`},
	{name: "unknown member", page: `{"commits":[],"next":"n","tail":true,"x":1}`},
	{name: "escaped next", page: `{"commits":[],"next":"\u006e","tail":true}`},
	{name: "non-ASCII next", page: "{\"commits\":[],\"next\":\"\xc3\xa9\",\"tail\":true}"},
	{name: "null commits", page: `{"commits":null,"next":"n","tail":false}`},
	{name: "space between commits", page: `{"commits":[{}, {}],"next":"n","tail":false}`},
	{name: "trailing newline", page: string(gatewayPage("n", true)) + "\n"},

	{name: "truncated", page: string(gatewayPage("n", true, `{"a":1}`))[:20], bad: true},
	{name: "truncated string", page: `{"commits":[{"a":"x`, bad: true},
	{name: "unterminated commit", page: `{"commits":[{"a":1],"next":"n","tail":true}`, bad: true},
	{name: "bare word", page: `{"commits":[tru],"next":"n","tail":true}`, bad: true},
	{name: "bad number", page: `{"commits":[01],"next":"n","tail":true}`, bad: true},
	{name: "bad exponent", page: `{"commits":[1e],"next":"n","tail":true}`, bad: true},
	{name: "bad escape", page: `{"commits":["\x"],"next":"n","tail":true}`, bad: true},
	{name: "short unicode escape", page: `{"commits":["\u12"],"next":"n","tail":true}`, bad: true},
	{name: "control character", page: "{\"commits\":[\"a\tb\"],\"next\":\"n\",\"tail\":true}", bad: true},
	{name: "missing comma", page: `{"commits":[{"a":1}{"b":2}],"next":"n","tail":true}`, bad: true},
	{name: "trailing comma", page: `{"commits":[{"a":1},],"next":"n","tail":true}`, bad: true},
	{name: "key not a string", page: `{"commits":[{a:1}],"next":"n","tail":true}`, bad: true},
	{name: "tail not a boolean", page: `{"commits":[],"next":"n","tail":"yes"}`, bad: true},
	{name: "next not a string", page: `{"commits":[],"next":7,"tail":true}`, bad: true},
	{name: "data after the page", page: string(gatewayPage("n", true)) + "{}", bad: true},
	{name: "not an object", page: `[]`, bad: true},
	{name: "empty", page: ``, bad: true},
}

// TestSplitLogPage_Cases: the splitter takes pages in the gateway's
// spelling and reads them as encoding/json does; other spellings go to
// encoding/json; malformed pages are refused with core.ErrInvalid.
func TestSplitLogPage_Cases(t *testing.T) {
	for _, tc := range pageCases {
		t.Run(tc.name, func(t *testing.T) {
			if got := sameAsJSON(t, []byte(tc.page)); got != tc.split {
				t.Fatalf("split=%v, want %v", got, tc.split)
			}
			_, err := client.DecodeLogPage([]byte(tc.page))
			if got := err != nil; got != tc.bad {
				t.Fatalf("refused=%v (%v), want %v", got, err, tc.bad)
			}
		})
	}
}

// TestSplitLogPage_GatewayPages: the pages a real gateway serves are
// split, with exactly the commits encoding/json finds in them.
func TestSplitLogPage_GatewayPages(t *testing.T) {
	g := goattest.StartGateway(t, goattest.Config{})
	a := goattest.NewAuthor(t, g, "alice")
	repo := goattest.ConformanceRepo
	a.CreateRepo(t, repo)
	var commits []*core.Commit
	for i := range 5 {
		commits = append(commits, a.Commit(repo, fmt.Sprintf("k%d", i), map[string]any{
			"n": float64(i) + 0.5, "s": "quote \" backslash \\ é \u2028 \x01", "l": []any{true, nil, map[string]any{}},
		}))
	}
	a.Push(t, commits...)
	cursor, pages, seen := "", 0, 0
	for {
		q := url.Values{"limit": {"2"}}
		if cursor != "" {
			q.Set("after", cursor)
		}
		req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, g.URL()+"/v1/repos/"+repo+"/log?"+q.Encode(), nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+g.Token("alice"))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("GET log: %d, %v: %s", resp.StatusCode, err, body)
		}
		if !sameAsJSON(t, body) {
			t.Fatalf("page %d not split: %s", pages, body)
		}
		page, err := client.DecodeLogPage(body)
		if err != nil {
			t.Fatal(err)
		}
		for _, raw := range page.Commits {
			if _, err := core.DecodeCommit(raw); err != nil {
				t.Fatalf("commit of page %d: %v", pages, err)
			}
		}
		pages, seen, cursor = pages+1, seen+len(page.Commits), page.Next
		if !page.More {
			break
		}
	}
	if pages < 3 || seen != len(commits) {
		t.Fatalf("%d pages, %d commits; want at least 3 pages and %d commits", pages, seen, len(commits))
	}
}

// FuzzSplitLogPage: on any input, what the splitter takes encoding/json
// reads as the same page, and the client refuses what encoding/json
// refuses.
func FuzzSplitLogPage(f *testing.F) {
	for _, tc := range pageCases {
		f.Add([]byte(tc.page))
	}
	f.Fuzz(func(t *testing.T, b []byte) { sameAsJSON(t, b) })
}

// BenchmarkDecodeLogPage: a page of 1000 clone-like commits (about 600
// bytes each) read by the splitter against encoding/json, the cost per
// page a clone pays before decoding commits.
func BenchmarkDecodeLogPage(b *testing.B) {
	a := goattest.NewSigner("bench")
	var raws []string
	for i := range 1000 {
		c := a.CommitAt(1_763_800_000_000+int64(i), "clone", fmt.Sprintf("item-%07d", i), map[string]any{
			"title": fmt.Sprintf("Task %d: call the plumber about the kitchen sink", i),
			"done":  i%3 == 0, "prio": float64(i % 5),
			"tags":  []any{"home", fmt.Sprintf("room-%d", i%7)},
			"notes": fmt.Sprintf("Ask for a quote first; the last visit (#%d) took two hours.", i),
		})
		raw, err := c.MarshalJSON()
		if err != nil {
			b.Fatal(err)
		}
		raws = append(raws, string(raw))
	}
	page := gatewayPage("c1.1000", false, raws...)
	b.Run("split", func(b *testing.B) {
		b.SetBytes(int64(len(page)))
		for b.Loop() {
			if _, err := client.DecodeLogPage(page); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		b.SetBytes(int64(len(page)))
		for b.Loop() {
			var p jsonPage
			if err := json.Unmarshal(page, &p); err != nil {
				b.Fatal(err)
			}
		}
	})
}

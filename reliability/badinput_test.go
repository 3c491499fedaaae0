package reliability

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3filter"

	"github.com/goat-gateway/goat-gateway/auth"
	"github.com/goat-gateway/goat-gateway/core"
	"github.com/goat-gateway/goat-gateway/internal/goattest"
	gsync "github.com/goat-gateway/goat-gateway/sync"
)

var badTimeout = flag.Duration("badinput.timeout", 20*time.Second, "longest a bad-input request may take before it counts as a hang")

const badBodyLimit = 256 << 10

// seeded is the data the bad-input suite starts from.
type seeded struct {
	n             *node
	alice, bob    *goattest.Author
	headK, headK2 string
	cursor        string
	nodeID        string
}

func seed(t *testing.T) *seeded {
	t.Helper()
	n := startNode(t, goattest.Config{BodyLimit: badBodyLimit, MaxStreamsPerCaller: 10000})
	s := &seeded{n: n, alice: goattest.NewAuthor(t, n, "alice"), bob: goattest.NewAuthor(t, n, "bob")}
	tok := s.alice.Token
	n.must(t, "PUT", "/v1/repos/r", tok, nil, 201)
	n.must(t, "PUT", "/v1/repos/other", tok, nil, 201)
	var it struct{ Head string }
	json.Unmarshal(n.must(t, "PUT", "/v1/repos/r/items/k", tok, []byte(`{"schema":"any/1","data":{"v":1}}`), 201), &it)
	s.headK = it.Head
	json.Unmarshal(n.must(t, "PUT", "/v1/repos/r/items/k2", tok, []byte(`{"schema":"any/1","data":{"v":1,"tags":["a"]}}`), 201), &it)
	s.headK2 = it.Head
	n.must(t, "PUT", "/v1/repos/r/items/gone", tok, []byte(`{"schema":"any/1","data":{"v":1}}`), 201)
	n.must(t, "DELETE", "/v1/repos/r/items/gone", tok, nil, 200)
	c1 := s.alice.Commit("r", "pushed", map[string]any{"n": float64(1)})
	c2 := s.alice.Commit("r", "pushed", map[string]any{"n": float64(2)}, c1.ID)
	n.must(t, "POST", "/v1/repos/r/commits", tok, goattest.PushBody(c1, c2), 200)
	n.must(t, "PUT", "/v1/schemas/task/1", tok, []byte(`{"fields":{"title":{"type":"string","required":true}}}`), 201)
	var info struct{ Cursor string }
	json.Unmarshal(n.must(t, "GET", "/v1/repos/r", tok, nil, 200), &info)
	s.cursor = info.Cursor
	var ni struct{ NodeID string }
	json.Unmarshal(n.must(t, "GET", "/v1/info", "", nil, 200), &ni)
	s.nodeID = ni.NodeID
	if s.headK == "" || s.cursor == "" || s.nodeID == "" {
		t.Fatalf("seeding: head %q cursor %q node %q", s.headK, s.cursor, s.nodeID)
	}
	return s
}

func (s *seeded) templates(t *testing.T) map[string]template {
	t.Helper()
	fresh := s.alice.Commit("r", "fresh", map[string]any{"v": float64(1)})
	freshJSON, _ := fresh.MarshalJSON()
	var freshVal any
	json.Unmarshal(freshJSON, &freshVal)
	_, priv, _ := ed25519.GenerateKey(nil)
	var sessionVal any
	json.Unmarshal(goattest.SessionBody(t, priv, "alice"), &sessionVal)
	quoted := `"` + s.headK + `"`
	zeros := strings.Repeat("0", 64)
	p := func(kv ...string) map[string]string {
		m := map[string]string{}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	return map[string]template{
		"getHealthz":  {},
		"getReadyz":   {},
		"getMetrics":  {},
		"getOpenAPI":  {},
		"getInfo":     {},
		"listSchemas": {},
		"listRepos":   {query: url.Values{"prefix": {"r"}, "after": {"a"}, "limit": {"10"}}},
		"getRepo":     {path: p("repo", "r")},
		"createRepo":  {path: p("repo", "r")},
		// alice is no admin: the template itself answers 403 and deletes nothing.
		"deleteRepo":     {path: p("repo", "r")},
		"listItems":      {path: p("repo", "r"), query: url.Values{"schema": {"any"}, "after": {"a"}, "includeDeleted": {"false"}, "limit": {"10"}}},
		"getItem":        {path: p("repo", "r", "key", "k"), header: p("If-None-Match", quoted)},
		"putItem":        {path: p("repo", "r", "key", "k"), header: p("If-Match", quoted), body: map[string]any{"schema": "any/1", "data": map[string]any{"v": float64(2)}}},
		"patchItem":      {path: p("repo", "r", "key", "k"), header: p("If-Match", quoted), body: map[string]any{"v": float64(3)}},
		"deleteItem":     {path: p("repo", "r", "key", "k"), header: p("If-Match", quoted)},
		"getItemHistory": {path: p("repo", "r", "key", "k"), query: url.Values{"before": {s.headK}, "limit": {"10"}}},
		"pushCommits":    {path: p("repo", "r"), body: map[string]any{"commits": []any{freshVal}}},
		"getCommit":      {path: p("repo", "r", "id", s.headK), header: p("If-None-Match", quoted)},
		"getLog":         {path: p("repo", "r"), query: url.Values{"after": {s.cursor}, "limit": {"10"}, "wait": {"0"}}, header: p("If-None-Match", `"x"`)},
		"syncRound": {path: p("repo", "r"), body: map[string]any{"count": float64(0), "digest": zeros, "limit": float64(10), "commits": []any{freshVal},
			"filter": map[string]any{"m": float64(64), "k": float64(3), "salt": "0011223344556677", "bits": "AAAAAAAAAAA="}}},
		"getEvents":     {query: url.Values{"repo": {"r"}, "lastEventId": {s.nodeID + ".1"}}, authQuery: true},
		"createSession": {body: sessionVal},
		"getSession":    {path: p("id", s.alice.ID)},
		"revokeSession": {path: p("id", s.alice.ID)},
		"retireSchema":  {path: p("ns", "tmpl", "version", "2")},
		"putSchema": {path: p("ns", "tmpl", "version", "1"), body: map[string]any{
			"fields":  map[string]any{"a": map[string]any{"type": "string", "required": true, "default": "x"}},
			"upgrade": []any{map[string]any{"op": "add", "field": "a", "default": "x"}}}},
	}
}

// handCases are the cases the generator cannot derive from the spec.
func (s *seeded) handCases(t *testing.T) []handCase {
	t.Helper()
	zeros := strings.Repeat("0", 64)
	body := func(f func(m map[string]any)) func(any) any {
		return func(tpl any) any { m := tpl.(map[string]any); f(m); return m }
	}
	var hc []handCase
	filter := func(name string, f any) {
		hc = append(hc, handCase{op: "syncRound", name: "bloom: " + name, body: body(func(m map[string]any) { m["filter"] = f })})
	}
	bf := func(m, k any, salt, bits any) map[string]any {
		return map[string]any{"m": m, "k": k, "salt": salt, "bits": bits}
	}
	const salt = "0011223344556677"
	filter("m 0", bf(0.0, 3.0, salt, "AAAAAAAAAAA="))
	filter("m negative", bf(-64.0, 3.0, salt, "AAAAAAAAAAA="))
	filter("m 2^40", bf(float64(int64(1)<<40), 3.0, salt, "AAAAAAAAAAA="))
	filter("m 2^63", bf(9.3e18, 3.0, salt, "AAAAAAAAAAA="))
	filter("m max with 24 bytes (would allocate 1 GiB unchecked)", bf(67108864.0, 32.0, salt, base64.StdEncoding.EncodeToString(make([]byte, 24))))
	filter("m max+1", bf(67108865.0, 3.0, salt, "AAAAAAAAAAA="))
	filter("m fraction", bf(64.5, 3.0, salt, "AAAAAAAAAAA="))
	filter("k 0", bf(64.0, 0.0, salt, "AAAAAAAAAAA="))
	filter("k 33", bf(64.0, 33.0, salt, "AAAAAAAAAAA="))
	filter("k 10^9", bf(64.0, 1e9, salt, "AAAAAAAAAAA="))
	filter("bits shorter than m", bf(128.0, 3.0, salt, "AAAAAAAAAAA="))
	filter("bits longer than m", bf(64.0, 3.0, salt, base64.StdEncoding.EncodeToString(make([]byte, 16))))
	filter("bits 3 bytes", bf(64.0, 3.0, salt, "AAAA"))
	filter("bits not base64", bf(64.0, 3.0, salt, "!!!!!!!!!!!="))
	filter("bits base64url alphabet", bf(64.0, 3.0, salt, "-_-_-_-_-_-="))
	filter("bits unpadded", bf(64.0, 3.0, salt, "AAAAAAAAAAA"))
	filter("bits with newline", bf(64.0, 3.0, salt, "AAAAAA\nAAAA="))
	filter("salt not hex", bf(64.0, 3.0, "zzzzzzzzzzzzzzzz", "AAAAAAAAAAA="))
	filter("salt upper-case hex", bf(64.0, 3.0, "ABCDEF0123456789", "AAAAAAAAAAA="))
	filter("salt short", bf(64.0, 3.0, "00112233445566", "AAAAAAAAAAA="))
	filter("salt missing", map[string]any{"m": 64.0, "k": 3.0, "bits": "AAAAAAAAAAA="})
	filter("not an object", []any{64.0, 3.0})
	for name, f := range map[string]func(m map[string]any){
		"count negative":      func(m map[string]any) { m["count"] = -1.0 },
		"count 10^20":         func(m map[string]any) { m["count"] = 1e20 },
		"digest not hex":      func(m map[string]any) { m["digest"] = strings.Repeat("z", 64) },
		"digest upper-case":   func(m map[string]any) { m["digest"] = strings.Repeat("A", 64) },
		"digest 63 digits":    func(m map[string]any) { m["digest"] = zeros[:63] },
		"limit 0":             func(m map[string]any) { m["limit"] = 0.0 },
		"limit 1001":          func(m map[string]any) { m["limit"] = 1001.0 },
		"commits not a list":  func(m map[string]any) { m["commits"] = "all" },
		"commit not a commit": func(m map[string]any) { m["commits"] = []any{"abc"} },
	} {
		hc = append(hc, handCase{op: "syncRound", name: "sync: " + name, body: body(f)})
	}

	// Base64 and proofs of session registrations.
	session := func(name string, f func(m map[string]any)) {
		hc = append(hc, handCase{op: "createSession", name: "session: " + name, body: body(f)})
	}
	session("public key of zeros (small order)", func(m map[string]any) { m["publicKey"] = strings.Repeat("A", 43) })
	session("public key not on the curve", func(m map[string]any) { m["publicKey"] = strings.Repeat("_", 42) + "w" })
	session("public key in standard base64", func(m map[string]any) { m["publicKey"] = strings.Repeat("+/", 21) + "A" })
	session("public key padded", func(m map[string]any) { m["publicKey"] = strings.Repeat("A", 43) + "=" })
	session("proof by another key", func(m map[string]any) {
		_, other, _ := ed25519.GenerateKey(nil)
		var o map[string]any
		json.Unmarshal(goattest.SessionBody(t, other, "alice"), &o)
		m["proof"] = o["proof"]
	})
	session("proof of zeros", func(m map[string]any) { m["proof"] = strings.Repeat("A", 86) })
	session("proof in standard base64", func(m map[string]any) { m["proof"] = strings.Repeat("+/", 43) })
	session("proof bound to another expiry", func(m map[string]any) { m["expires"] = m["expires"].(float64) + 1 })
	session("expired", func(m map[string]any) { m["expires"] = float64(time.Now().Add(-time.Hour).UnixMilli()) })
	session("expires in 31 days", func(m map[string]any) { m["expires"] = float64(time.Now().Add(31 * 24 * time.Hour).UnixMilli()) })
	session("expires 0", func(m map[string]any) { m["expires"] = 0.0 })
	session("expires 2^53", func(m map[string]any) { m["expires"] = 9007199254740992.0 })

	// Commits that fit the schema but not the rules: the push answers 200
	// and rejects each of them, or refuses the request.
	push := func(name string, cms ...any) {
		hc = append(hc, handCase{op: "pushCommits", name: "commit: " + name, body: func(any) any { return map[string]any{"commits": cms} }})
		hc = append(hc, handCase{op: "syncRound", name: "sync commit: " + name, body: body(func(m map[string]any) { m["commits"] = cms })})
	}
	asMap := func(c *core.Commit) map[string]any {
		b, _ := c.MarshalJSON()
		var m map[string]any
		json.Unmarshal(b, &m)
		return m
	}
	good := asMap(s.alice.Commit("r", "hand", map[string]any{"v": 1.0}))
	edit := func(f func(m map[string]any)) map[string]any {
		m := core.Clone(good).(map[string]any)
		f(m)
		return m
	}
	flip := func(s string) string {
		b := []byte(s)
		if b[10] == 'A' {
			b[10] = 'B'
		} else {
			b[10] = 'A'
		}
		return string(b)
	}
	push("signature of another commit", edit(func(m map[string]any) { m["sig"] = flip(m["sig"].(string)) }))
	push("id that does not recompute", edit(func(m map[string]any) { m["id"] = flip(m["id"].(string)) }))
	push("data changed after signing", edit(func(m map[string]any) { m["data"] = map[string]any{"v": 2.0} }))
	push("no signature", edit(func(m map[string]any) { delete(m, "sig") }))
	push("data and delta", edit(func(m map[string]any) {
		m["delta"] = map[string]any{"base": s.headK, "ops": []any{map[string]any{"op": "set", "field": "v", "value": 1.0}}}
	}))
	_, stranger, _ := ed25519.GenerateKey(nil)
	unknown := &core.Commit{Repo: "r", Key: "hand", Author: auth.SessionID(stranger.Public().(ed25519.PublicKey)), TS: time.Now().UnixMilli(), Schema: core.AnySchema, Data: map[string]any{"v": 1.0}}
	unknown.Sign(stranger)
	push("signed by an unregistered session", asMap(unknown))
	var missing core.CommitID
	missing[0] = 7
	push("missing parent", asMap(s.alice.Commit("r", "hand", map[string]any{"v": 1.0}, missing)))
	push("another repository", asMap(s.alice.Commit("other", "hand", map[string]any{"v": 1.0})))
	noSchema := &core.Commit{Repo: "r", Key: "hand", Author: s.alice.ID, TS: time.Now().UnixMilli(), Schema: "nope/1", Data: map[string]any{"v": 1.0}}
	noSchema.Sign(s.alice.Key)
	push("unknown schema", asMap(noSchema))
	bad := &core.Commit{Repo: "r", Key: "hand", Author: s.alice.ID, TS: time.Now().UnixMilli(), Schema: "task/1", Data: map[string]any{"nottitle": 1.0}}
	bad.Sign(s.alice.Key)
	push("schema violation", asMap(bad))
	head, _ := core.ParseCommitID(s.headK)
	head2, _ := core.ParseCommitID(s.headK2)
	parents := []core.CommitID{head, head2}
	slices.SortFunc(parents, func(a, b core.CommitID) int { return a.Compare(b) })
	forged := &core.Commit{Repo: "r", Key: "k", Parents: parents, Author: core.MergeAuthor, TS: time.Now().UnixMilli(), Schema: core.AnySchema, Data: map[string]any{"v": 9.0}}
	forged.Seal()
	push("forged merge commit", asMap(forged))

	// Cursors of getLog.
	var foreign gsync.LogID
	foreign[0] = 1
	var info struct{ LogId string }
	json.Unmarshal(s.n.must(t, "GET", "/v1/repos/r", s.alice.Token, nil, 200), &info)
	for name, cur := range map[string]string{
		"garbage":                 "garbage",
		"base64 of nothing":       "AAAAAAAA",
		"long":                    strings.Repeat("A", 256),
		"another log":             gsync.EncodeCursor(foreign, 0),
		"past the end":            gsync.EncodeCursor(logIDOf(t, s.cursor), 1<<40),
		"offset 2^64-1":           gsync.EncodeCursor(logIDOf(t, s.cursor), ^uint64(0)),
		"dots":                    "..",
		"tilde":                   "~~~~",
		"cursor with extra tail":  s.cursor + "A",
		"cursor cut short":        s.cursor[:len(s.cursor)-2],
		"cursor with extra dot":   s.cursor + ".1",
		"cursor of a repo's name": "r",
	} {
		hc = append(hc, handCase{op: "getLog", name: "cursor: " + name, ov: override{params: map[string][]string{"after": {cur}}}})
	}

	// Event ids of getEvents, as the header and as the query parameter.
	for name, id := range map[string]string{
		"no dot":             "abc",
		"no node":            ".5",
		"no sequence":        s.nodeID + ".",
		"letters":            s.nodeID + ".x",
		"negative":           s.nodeID + ".-1",
		"2^64":               s.nodeID + ".18446744073709551616",
		"two dots":           s.nodeID + ".1.2",
		"dots":               "..",
		"dash":               "-",
		"tilde":              "~",
		"sequence with sign": s.nodeID + ".+1",
	} {
		hc = append(hc, handCase{op: "getEvents", name: "Last-Event-ID: " + name, ov: override{params: map[string][]string{"lastEventId": nil, "Last-Event-ID": {id}}}})
		hc = append(hc, handCase{op: "getEvents", name: "lastEventId: " + name, ov: override{params: map[string][]string{"lastEventId": {id}}}})
	}
	hc = append(hc, handCase{op: "getEvents", name: "repo that does not exist", ov: override{params: map[string][]string{"repo": {"nope"}}}})
	// The same token in both is one token (generated clients send it so);
	// two different ones are refused.
	otherAlice, err := s.n.Mint("alice", []string{"editor"}, time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	hc = append(hc, handCase{op: "getEvents", name: "different tokens in the header and the query", ov: override{header: map[string]string{"Authorization": "Bearer " + otherAlice}}})

	// Rules only the handlers know.
	hc = append(hc,
		handCase{op: "getItemHistory", name: "before: a commit of another key", ov: override{params: map[string][]string{"before": {s.headK2}}}},
		handCase{op: "putItem", name: "If-Match: a commit of another key", ov: override{params: map[string][]string{"If-Match": {`"` + s.headK2 + `"`}}}},
		handCase{op: "putItem", name: "If-Match: an unknown commit", ov: override{params: map[string][]string{"If-Match": {`"` + strings.Repeat("ab", 32) + `-zstd"`}}}},
		handCase{op: "patchItem", name: "If-Match: a commit of another key", ov: override{params: map[string][]string{"If-Match": {`"` + s.headK2 + `"`}}}},
		handCase{op: "deleteItem", name: "If-Match: a commit of another key", ov: override{params: map[string][]string{"If-Match": {`"` + s.headK2 + `"`}}}},
		handCase{op: "patchItem", name: "item that does not exist", ov: override{params: map[string][]string{"key": {"nokey"}, "If-Match": nil}}},
		handCase{op: "patchItem", name: "deleted item", ov: override{params: map[string][]string{"key": {"gone"}, "If-Match": nil}}},
		handCase{op: "putItem", name: "unknown schema", body: body(func(m map[string]any) { m["schema"] = "nope/1" })},
		handCase{op: "putItem", name: "schema violation", body: body(func(m map[string]any) { m["schema"] = "task/1" })},
		handCase{op: "putItem", name: "tombstone flag not a boolean", body: body(func(m map[string]any) { m["data"] = map[string]any{"isDeleted": "yes"} })},
		handCase{op: "getCommit", name: "id of no commit", ov: override{params: map[string][]string{"id": {strings.Repeat("ab", 32)}, "If-None-Match": nil}}},
		handCase{op: "getCommit", name: "id of a commit of another repository", ov: override{params: map[string][]string{"repo": {"other"}, "If-None-Match": nil}}},
		handCase{op: "getSession", name: "unknown session", ov: override{params: map[string][]string{"id": {"s_" + strings.Repeat("A", 24)}}}},
		handCase{op: "revokeSession", name: "another owner's session", ov: override{params: map[string][]string{"id": {s.bob.ID}}}},
		handCase{op: "revokeSession", name: "unknown session", ov: override{params: map[string][]string{"id": {"s_" + strings.Repeat("A", 24)}}}},
		handCase{op: "putSchema", name: "version 3 before 2", ov: override{params: map[string][]string{"ns": {"task"}, "version": {"3"}}}},
		handCase{op: "putSchema", name: "redefining a published version", ov: override{params: map[string][]string{"ns": {"task"}, "version": {"1"}}}},
		handCase{op: "putSchema", name: "default of the wrong type", body: body(func(m map[string]any) {
			m["fields"] = map[string]any{"a": map[string]any{"type": "number", "default": "x"}}
			delete(m, "upgrade")
		})},
	)
	return hc
}

func logIDOf(t *testing.T, cursor string) gsync.LogID {
	t.Helper()
	c, err := gsync.DecodeCursor(cursor)
	if err != nil {
		t.Fatal(err)
	}
	return c.Log
}

// credentials that must never let anyone in.
func (s *seeded) badCredentials(t *testing.T) []struct{ name, header string } {
	t.Helper()
	dir := t.TempDir()
	other, err := auth.OpenDevIssuer(dir)
	if err != nil {
		t.Fatal(err)
	}
	foreign, _ := other.Mint("alice", nil, time.Hour, time.Now())
	expired, _ := s.n.Mint("alice", nil, time.Hour, time.Now().Add(-2*time.Hour))
	parts := strings.Split(s.alice.Token, ".")
	none := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"JWT"}`)) + "." + parts[1] + "."
	hs := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"HS256","typ":"JWT"}`)) + "." + parts[1] + "." + parts[2]
	tampered := parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(`{"sub":"admin","aud":"goat-gateway","exp":9999999999,"roles":["admin"]}`)) + "." + parts[2]
	return []struct{ name, header string }{
		{"none", ""},
		{"Bearer without token", "Bearer"},
		{"garbage token", "Bearer garbage"},
		{"Basic", "Basic YWxpY2U6cGFzc3dvcmQ="},
		{"alg none", "Bearer " + none},
		{"alg HS256 with the EdDSA signature", "Bearer " + hs},
		{"claims changed after signing", "Bearer " + tampered},
		{"expired", "Bearer " + expired},
		{"another issuer's key", "Bearer " + foreign},
		{"huge token", "Bearer " + strings.Repeat("a", 16<<10)},
	}
}

// outcome tallies the answers.
type outcome struct {
	mu       sync.Mutex
	byStatus map[int]int
	rejected int
	slowest  time.Duration
	slowName string
	// maxAlloc is the most bytes allocated in this process (gateway and
	// test client) while one case ran.
	maxAlloc     uint64
	maxAllocName string
}

// allocBudget bounds what one bad request may cost beyond 16 times its
// body (the body is copied a few times: client, limit reader, validator).
const allocBudget = 16 << 20

// Every operation of openapi.yaml, fed malformed, mistyped, missing, extra,
// oversized, deeply nested, traversing and otherwise hostile input, answers
// a 4xx problem that matches the spec, in bounded time, and changes no
// data.
func TestBadInput_EveryOperation(t *testing.T) {
	s := seed(t)
	spec := loadSpec(t)
	g := &generator{spec: spec, templates: s.templates(t), token: s.alice.Token, bodyLimit: badBodyLimit,
		dropped: map[string]int{}, covered: map[string]int{}}
	badCredentials = s.badCredentials(t)
	g.generate(t)
	g.handCases(t, g.operations(t), s.handCases(t))

	// Every operation with parameters or a body must be exercised.
	for _, o := range g.operations(t) {
		if (len(o.params) > 0 || o.op.RequestBody != nil) && g.covered[o.op.OperationID] < 10 {
			t.Errorf("operation %s: only %d cases", o.op.OperationID, g.covered[o.op.OperationID])
		}
	}
	before := s.n.stateDigest(t)
	out := &outcome{byStatus: map[int]int{}}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	t.Cleanup(client.CloseIdleConnections)
	t.Run("cases", func(t *testing.T) {
		for _, c := range g.cases {
			// One at a time, so that the bytes allocated while a case runs
			// are that case's.
			t.Run(c.op+"/"+c.name, func(t *testing.T) {
				checkBadCase(t, spec, client, s.n.url, c, out)
			})
		}
	})
	if after := s.n.stateDigest(t); after != before {
		t.Fatalf("bad input changed the data:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	ops := 0
	for _, n := range g.covered {
		if n > 0 {
			ops++
		}
	}
	dropped := 0
	for _, n := range g.dropped {
		dropped += n
	}
	var statuses []string
	for _, st := range sortedOf(intKeys(out.byStatus)) {
		statuses = append(statuses, fmt.Sprintf("%d:%d", st, out.byStatus[st]))
	}
	t.Logf("bad-input: %d cases over %d operations (+route cases); answers %s; %d pushes answered 200 with every commit rejected; %d spec-valid mutations not sent; slowest %v (%s); most allocated %d KB (%s)",
		len(g.cases), ops-1, strings.Join(statuses, " "), out.rejected, dropped, out.slowest.Round(time.Millisecond), out.slowName, out.maxAlloc>>10, out.maxAllocName)
	if len(g.cases) < 1000 {
		t.Fatalf("only %d cases generated", len(g.cases))
	}
}

func intKeys(m map[int]int) []int {
	keys := make([]int, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	return keys
}

// checkBadCase sends one case and checks the answer.
func checkBadCase(t *testing.T, spec *apiSpec, client *http.Client, base string, c badCase, out *outcome) {
	ctx, cancel := context.WithTimeout(context.Background(), *badTimeout)
	defer cancel()
	req, err := c.req.build(ctx, base)
	if err != nil {
		t.Fatalf("building the request: %v\n%s", err, c.req)
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	allocBefore := ms.TotalAlloc
	start := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("no answer within %v (hang):\n%s", *badTimeout, c.req)
		}
		t.Fatalf("no answer: %v\n%s", err, c.req)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatalf("reading the answer (%d): %v (hang?)\n%s", resp.StatusCode, err, c.req)
	}
	took := time.Since(start)
	runtime.ReadMemStats(&ms)
	alloc := ms.TotalAlloc - allocBefore
	// Bounded work per request: no input may make the gateway allocate far
	// more than it was sent (a 20 KB body once made a 200 MB error message).
	if budget := allocBudget + 16*uint64(len(c.req.body)); alloc > budget {
		t.Errorf("allocated %d MB for one request (budget %d MB)\nrequest:\n%s", alloc>>20, budget>>20, c.req)
	}
	out.mu.Lock()
	if alloc > out.maxAlloc {
		out.maxAlloc, out.maxAllocName = alloc, c.op+"/"+c.name
	}
	out.byStatus[resp.StatusCode]++
	if took > out.slowest {
		out.slowest, out.slowName = took, c.op+"/"+c.name
	}
	out.mu.Unlock()

	if resp.StatusCode >= 500 {
		t.Fatalf("%d: %s\nrequest:\n%s", resp.StatusCode, body, c.req)
	}
	if c.want == want4xxOrRejected && resp.StatusCode == 200 {
		var pr struct {
			Results []struct{ Status string } `json:"results"`
		}
		if err := json.Unmarshal(body, &pr); err != nil || len(pr.Results) == 0 {
			t.Fatalf("200 without per-commit results: %.300s\nrequest:\n%s", body, c.req)
		}
		for _, r := range pr.Results {
			if r.Status != "rejected" {
				t.Fatalf("a bad commit was %s: %.300s\nrequest:\n%s", r.Status, body, c.req)
			}
		}
		out.mu.Lock()
		out.rejected++
		out.mu.Unlock()
		validateResponse(t, spec, req, resp, body, c)
		return
	}
	if resp.StatusCode < 400 {
		t.Fatalf("%d, want a 4xx: %.300s\nrequest:\n%s", resp.StatusCode, body, c.req)
	}
	if got := resp.Header.Get("Content-Type"); got != "application/problem+json" {
		t.Fatalf("Content-Type %q, want application/problem+json\nrequest:\n%s", got, c.req)
	}
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		t.Fatalf("problem is not JSON: %v: %.300s", err, body)
	}
	if err := spec.problem.VisitJSON(v); err != nil {
		t.Fatalf("problem does not match the Problem schema: %v\n%.300s\nrequest:\n%s", err, body, c.req)
	}
	if st, _ := v.(map[string]any)["status"].(float64); int(st) != resp.StatusCode {
		t.Fatalf("problem status %v, HTTP status %d", st, resp.StatusCode)
	}
	validateResponse(t, spec, req, resp, body, c)
}

// validateResponse checks the answer against the operation the request
// routes to, when it routes to one.
func validateResponse(t *testing.T, spec *apiSpec, req *http.Request, resp *http.Response, body []byte, c badCase) {
	t.Helper()
	route, params, err := spec.router.FindRoute(req)
	if err != nil {
		return // no operation: the Problem schema was the contract
	}
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route,
			Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc}},
		Status:  resp.StatusCode,
		Header:  resp.Header,
		Body:    io.NopCloser(strings.NewReader(string(body))),
		Options: &openapi3filter.Options{IncludeResponseStatus: true},
	}
	if err := openapi3filter.ValidateResponse(context.Background(), in); err != nil {
		msg := err.Error()
		if len(msg) > 1000 {
			msg = msg[:1000]
		}
		t.Fatalf("answer %d does not match openapi.yaml (%s): %s\nbody: %.300s\nrequest:\n%s", resp.StatusCode, route.Operation.OperationID, msg, body, c.req)
	}
}

// An event id of another event log, or from the future, is not bad input:
// the stream says `reset` for every repository (reconcile), then `ready`.
func TestBadInput_ForeignEventIDResets(t *testing.T) {
	s := seed(t)
	for name, id := range map[string]string{
		"another node":    "othernode.5",
		"from the future": s.nodeID + ".999999999",
	} {
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), *badTimeout)
			defer cancel()
			req, _ := http.NewRequestWithContext(ctx, "GET", s.n.url+"/v1/events?repo=r&repo=other", nil)
			req.Header.Set("Authorization", "Bearer "+s.alice.Token)
			req.Header.Set("Last-Event-ID", id)
			resp, err := s.n.client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Fatalf("status %d", resp.StatusCode)
			}
			var names []string
			reset := map[string]bool{}
			sc := bufio.NewScanner(resp.Body)
			for sc.Scan() && !slices.Contains(names, "ready") {
				line := sc.Text()
				if ev, ok := strings.CutPrefix(line, "event: "); ok {
					names = append(names, ev)
				}
				if d, ok := strings.CutPrefix(line, "data: "); ok && names[len(names)-1] == "reset" {
					var r struct{ Repo string }
					json.Unmarshal([]byte(d), &r)
					reset[r.Repo] = true
				}
			}
			if got, want := strings.Join(names, ","), "reset,reset,ready"; got != want {
				t.Fatalf("events %s, want %s", got, want)
			}
			if !reset["r"] || !reset["other"] {
				t.Fatalf("reset repos %v, want r and other", reset)
			}
		})
	}
}

package gen_test

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bits-and-blooms/bloom/v3"
	"github.com/getkin/kin-openapi/openapi3"
	"go.yaml.in/yaml/v3"

	"github.com/goat-gateway/goat-gateway/auth"
	"github.com/goat-gateway/goat-gateway/core"
	"github.com/goat-gateway/goat-gateway/gen/models"
)

// The examples in openapi.yaml are real: commit ids recompute, signatures
// verify with the example sessions' keys, digests and Bloom filters are
// what the documented algorithms produce. These tests keep them so, which
// also checks the documented wire rules against core and the Bloom library.

// rawSpec returns openapi.yaml as plain YAML values, to find examples
// wherever they are (media types, parameters, schemas, nested in items).
func rawSpec(tb testing.TB) any {
	tb.Helper()
	b, err := os.ReadFile(specPath)
	if err != nil {
		tb.Fatal(err)
	}
	var v any
	if err := yaml.Unmarshal(b, &v); err != nil {
		tb.Fatal(err)
	}
	return v
}

// walkExamples calls visit for every object inside an example in spec (the
// value of an `example`, or the `value` of an entry of `examples`).
func walkExamples(spec any, visit func(map[string]any)) {
	switch x := spec.(type) {
	case map[string]any:
		for k, e := range x {
			switch k {
			case "example":
				walk(e, visit)
			case "examples":
				if named, ok := e.(map[string]any); ok {
					for _, ex := range named {
						if ex, ok := ex.(map[string]any); ok {
							walk(ex["value"], visit)
						}
					}
				}
			default:
				walkExamples(e, visit)
			}
		}
	case []any:
		for _, e := range x {
			walkExamples(e, visit)
		}
	}
}

// walk calls visit for every object in an example value.
func walk(v any, visit func(map[string]any)) {
	switch x := v.(type) {
	case map[string]any:
		visit(x)
		for _, e := range x {
			walk(e, visit)
		}
	case []any:
		for _, e := range x {
			walk(e, visit)
		}
	}
}

func hasKeys(m map[string]any, keys ...string) bool {
	for _, k := range keys {
		if _, ok := m[k]; !ok {
			return false
		}
	}
	return true
}

// toJSON re-encodes a YAML value as JSON.
func toJSON(tb testing.TB, v any) []byte {
	tb.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// exampleCommits returns every commit in the spec's examples by id.
func exampleCommits(tb testing.TB) map[core.CommitID]*core.Commit {
	tb.Helper()
	out := map[core.CommitID]*core.Commit{}
	walkExamples(rawSpec(tb), func(m map[string]any) {
		if !hasKeys(m, "id", "repo", "key", "parents", "author", "ts", "schema") {
			return
		}
		c, err := core.DecodeCommit(toJSON(tb, m))
		if err != nil {
			tb.Errorf("example commit %v: %v", m["id"], err)
			return
		}
		out[c.ID] = c
	})
	return out
}

// apiSessionKeys are the members of the Session schema.
var apiSessionKeys = []string{"id", "owner", "publicKey", "expires", "revoked"}

// exampleAPISessions returns every Session object in the examples
// (createSession, getSession and revokeSession answers).
func exampleAPISessions(tb testing.TB) []map[string]any {
	tb.Helper()
	var out []map[string]any
	walkExamples(rawSpec(tb), func(m map[string]any) {
		if !hasKeys(m, "id", "owner", "publicKey", "expires") {
			return
		}
		for k := range m {
			if !slices.Contains(apiSessionKeys, k) {
				return
			}
		}
		out = append(out, m)
	})
	return out
}

// sessionRecord is an example item of sys.sessions.
type sessionRecord struct {
	session auth.Session
	data    map[string]any
	head    string
	ts      int64
}

// exampleRecords returns the sys.sessions items in the examples by session id.
func exampleRecords(tb testing.TB) map[string]sessionRecord {
	tb.Helper()
	out := map[string]sessionRecord{}
	walkExamples(rawSpec(tb), func(m map[string]any) {
		if m["schema"] != auth.SessionSchemaRef || !hasKeys(m, "key", "data", "head", "ts") {
			return
		}
		// Decode as JSON would, so that the record's values have the
		// types core and auth work with.
		var item struct {
			Key  string         `json:"key"`
			Data map[string]any `json:"data"`
			Head string         `json:"head"`
			TS   int64          `json:"ts"`
		}
		if err := json.Unmarshal(toJSON(tb, m), &item); err != nil {
			tb.Fatal(err)
		}
		s, err := auth.SessionFromData(item.Key, item.Data)
		if err != nil {
			tb.Errorf("sys.sessions item %s: %v", item.Key, err)
			return
		}
		out[item.Key] = sessionRecord{session: s, data: item.Data, head: item.Head, ts: item.TS}
	})
	return out
}

// exampleSessions returns the public key of every session in the examples
// (Session answers and sys.sessions items) by session id.
func exampleSessions(tb testing.TB) map[string]ed25519.PublicKey {
	tb.Helper()
	out := map[string]ed25519.PublicKey{}
	for _, m := range exampleAPISessions(tb) {
		key, err := base64.RawURLEncoding.DecodeString(m["publicKey"].(string))
		if err != nil || len(key) != ed25519.PublicKeySize {
			tb.Errorf("session %v: bad public key %v", m["id"], m["publicKey"])
			continue
		}
		out[m["id"].(string)] = key
	}
	for id, r := range exampleRecords(tb) {
		out[id] = r.session.PublicKey
	}
	return out
}

func TestExamples_CommitsAreReal(t *testing.T) {
	commits := exampleCommits(t)
	sessions := exampleSessions(t)
	if got, want := len(commits), 8; got < want {
		t.Fatalf("found %d distinct example commits, want at least %d", got, want)
	}
	var merges, deltas int
	for id, c := range commits {
		if c.IsMerge() {
			merges++
			var maxTS int64
			for _, p := range c.Parents {
				if parent, ok := commits[p]; ok {
					maxTS = max(maxTS, parent.TS)
				}
			}
			if got, want := c.TS, maxTS; got != want {
				t.Errorf("merge %s: ts=%d, want the largest parent ts %d", id, got, want)
			}
			continue
		}
		if c.Delta != nil {
			deltas++
			base, ok := commits[c.Delta.Base]
			if !ok || base.Data == nil || base.Key != c.Key {
				t.Errorf("delta commit %s: base %s is not an example commit of key %s with full data", id, c.Delta.Base, c.Key)
			} else if _, err := core.ApplyDelta(base.Data, c.Delta); err != nil {
				t.Errorf("delta commit %s does not apply to its base: %v", id, err)
			}
		}
		pub, ok := sessions[c.Author]
		if !ok {
			t.Errorf("commit %s: author %s is not an example session", id, c.Author)
			continue
		}
		if err := c.VerifySig(pub); err != nil {
			t.Errorf("commit %s: %v", id, err)
		}
	}
	if merges == 0 || deltas == 0 {
		t.Errorf("examples have %d merge and %d delta commits, want some of each", merges, deltas)
	}
}

// operationExample returns the example of an operation's JSON request body
// (status "") or of one of its JSON responses, decoded as JSON would be
// (numbers are float64).
func operationExample(tb testing.TB, operationID, status string) map[string]any {
	tb.Helper()
	for _, o := range operations(loadSpec(tb)) {
		if o.op.OperationID != operationID {
			continue
		}
		var mt *openapi3.MediaType
		if status == "" {
			mt = o.op.RequestBody.Value.Content.Get("application/json")
		} else {
			mt = o.op.Responses.Value(status).Value.Content.Get("application/json")
		}
		var v map[string]any
		if err := json.Unmarshal(toJSON(tb, exampleOf(mt.Example, mt.Examples)), &v); err != nil {
			tb.Fatal(err)
		}
		return v
	}
	tb.Fatalf("no operation %s", operationID)
	return nil
}

// exampleKey returns the example key of a documented label (docs/api.md,
// "Examples").
func exampleKey(label string) ed25519.PrivateKey {
	seed := sha256.Sum256([]byte("goat-gateway example key: " + label))
	return ed25519.NewKeyFromSeed(seed[:])
}

// The root key of the example gateway, which signs session records and,
// as the node session, the sys.sessions commits.
var exampleRoot = exampleKey("gateway node-1")

func TestExamples_SessionProof(t *testing.T) {
	info := operationExample(t, "getInfo", "200")
	req := operationExample(t, "createSession", "")
	resp := operationExample(t, "createSession", "201")
	pub, err := base64.RawURLEncoding.DecodeString(req["publicKey"].(string))
	if err != nil {
		t.Fatal(err)
	}
	proof, err := base64.RawURLEncoding.DecodeString(req["proof"].(string))
	if err != nil {
		t.Fatal(err)
	}
	expires := time.UnixMilli(int64(req["expires"].(float64)))
	// The challenge as the gateway builds it (auth.Registrar.Register).
	challenge, err := auth.SessionChallenge(info["audience"].(string), resp["owner"].(string), pub, expires)
	if err != nil {
		t.Fatal(err)
	}
	if !ed25519.Verify(pub, challenge, proof) {
		t.Fatalf("proof does not verify over %q", challenge)
	}
	// The description spells the example's challenge out, with \n for LF.
	var description string
	for _, o := range operations(loadSpec(t)) {
		if o.op.OperationID == "createSession" {
			description = o.op.Description
		}
	}
	if want := strings.ReplaceAll(string(challenge), "\n", `\n`); !strings.Contains(description, want) {
		t.Errorf("createSession's description does not show the example challenge %s", want)
	}
	if got, want := resp["publicKey"], req["publicKey"]; got != want {
		t.Fatalf("session publicKey=%v, want %v", got, want)
	}
	if got, want := resp["expires"], req["expires"]; got != want {
		t.Fatalf("session expires=%v, want %v", got, want)
	}
	if got, want := resp["id"], auth.SessionID(pub); got != want {
		t.Fatalf("session id=%v, want %v (derived from the key)", got, want)
	}
}

// The example sessions are what the gateway would record: ids derived from
// the keys, records that auth.Registrar.Register (or auth.CustodialSession)
// produces, signed by the example root key, each the first commit of its
// item by the root's node session, and Session answers that agree with
// them.
func TestExamples_SessionsAreReal(t *testing.T) {
	records := exampleRecords(t)
	if got, want := len(records), 3; got != want {
		t.Fatalf("found %d sys.sessions records, want %d", got, want)
	}
	rootPub := exampleRoot.Public().(ed25519.PublicKey)
	registrar := auth.Registrar{Audience: operationExample(t, "getInfo", "200")["audience"].(string), Root: exampleRoot}
	schema := auth.SessionSchema()
	for id, r := range records {
		t.Run(id, func(t *testing.T) {
			s := r.session
			if got, want := id, auth.SessionID(s.PublicKey); got != want {
				t.Errorf("id=%s, want %s (derived from the key)", got, want)
			}
			if err := s.VerifyRecord(rootPub); err != nil {
				t.Error(err)
			}
			if err := schema.Validate(r.data); err != nil {
				t.Errorf("record does not fit %s: %v", auth.SessionSchemaRef, err)
			}
			c := &core.Commit{Repo: auth.SessionsRepo, Key: id, Parents: []core.CommitID{}, Author: auth.NodeSessionID(rootPub),
				TS: r.ts, Schema: auth.SessionSchemaRef, Data: r.data}
			if err := c.Seal(); err != nil {
				t.Fatal(err)
			}
			if got, want := r.head, c.ID.String(); got != want {
				t.Errorf("head=%s, want %s (the node session's commit of this record at ts %d)", got, want, r.ts)
			}
			p := auth.Principal{Sub: s.Owner, Issuer: s.Issuer, Roles: s.Roles}
			var want auth.Session
			if s.Custodial {
				var err error
				if want, _, err = auth.CustodialSession(exampleRoot, p, s.Expires); err != nil {
					t.Fatal(err)
				}
			} else {
				// Registered at the record's ts with the key of a documented
				// seed: re-register it.
				var priv ed25519.PrivateKey
				for _, label := range []string{"alice laptop", "alice phone"} {
					if k := exampleKey(label); k.Public().(ed25519.PublicKey).Equal(s.PublicKey) {
						priv = k
					}
				}
				if priv == nil {
					t.Fatalf("key %x is not derived from a documented seed", s.PublicKey)
				}
				req, err := auth.NewSessionRequest(priv, registrar.Audience, s.Owner, s.Expires)
				if err != nil {
					t.Fatal(err)
				}
				if want, err = registrar.Register(req, p, time.UnixMilli(r.ts)); err != nil {
					t.Fatalf("registering at ts %d: %v", r.ts, err)
				}
			}
			if got, want := toJSON(t, r.data), toJSON(t, want.Data()); !bytes.Equal(got, want) {
				t.Errorf("record\n%s\nwant\n%s", got, want)
			}
		})
	}
	for _, m := range exampleAPISessions(t) {
		id := m["id"].(string)
		r, ok := records[id]
		if !ok {
			t.Errorf("Session %s has no sys.sessions record in the examples", id)
			continue
		}
		var s models.Session
		if err := json.Unmarshal(toJSON(t, m), &s); err != nil {
			t.Fatal(err)
		}
		if s.Owner != r.session.Owner || s.PublicKey != base64.RawURLEncoding.EncodeToString(r.session.PublicKey) ||
			s.Expires != r.session.Expires.UnixMilli() {
			t.Errorf("Session %v disagrees with its record %v", m, r.data)
		}
		if s.Revoked != nil && (*s.Revoked <= r.ts || *s.Revoked >= s.Expires) {
			t.Errorf("Session %s: revoked=%d, want a time while it was valid (after %d, before %d)", id, *s.Revoked, r.ts, s.Expires)
		}
	}
}

func TestExamples_RepoDigest(t *testing.T) {
	info := operationExample(t, "getRepo", "200")
	var digest core.CommitID
	count := 0
	for id, c := range exampleCommits(t) {
		if c.Repo != info["name"] {
			continue
		}
		count++
		for i := range digest {
			digest[i] ^= id[i]
		}
	}
	if got, want := info["count"], float64(count); got != want {
		t.Errorf("getRepo example count=%v, want %v (the example commits of %v)", got, want, info["name"])
	}
	if got, want := info["digest"], digest.String(); got != want {
		t.Errorf("getRepo example digest=%v, want %v (XOR of the example commit ids)", got, want)
	}
}

// decodeFilter builds a Bloom filter from its documented wire form.
func decodeFilter(tb testing.TB, v any) (f *bloom.BloomFilter, salt []byte) {
	tb.Helper()
	m := v.(map[string]any)
	bits, err := base64.StdEncoding.DecodeString(m["bits"].(string))
	if err != nil {
		tb.Fatal(err)
	}
	nbits, k := uint(m["m"].(float64)), uint(m["k"].(float64))
	if got, want := len(bits), 8*((int(nbits)+63)/64); got != want {
		tb.Fatalf("filter bits are %d bytes, want %d for m=%d", got, want, nbits)
	}
	words := make([]uint64, len(bits)/8)
	for i := range words {
		words[i] = binary.BigEndian.Uint64(bits[8*i:])
	}
	if salt, err = hex.DecodeString(m["salt"].(string)); err != nil {
		tb.Fatal(err)
	}
	return bloom.FromWithM(words, nbits, k), salt
}

func idsOf(tb testing.TB, v any) []core.CommitID {
	tb.Helper()
	var ids []core.CommitID
	list, _ := v.([]any)
	for _, c := range list {
		id, err := core.ParseCommitID(c.(map[string]any)["id"].(string))
		if err != nil {
			tb.Fatal(err)
		}
		ids = append(ids, id)
	}
	return ids
}

func filterHas(f *bloom.BloomFilter, salt []byte, id core.CommitID) bool {
	return f.Test(append(slices.Clone(salt), id[:]...))
}

func TestExamples_SyncFilters(t *testing.T) {
	req := operationExample(t, "syncRound", "")
	resp := operationExample(t, "syncRound", "200")
	clientFilter, clientSalt := decodeFilter(t, req["filter"])
	serverFilter, serverSalt := decodeFilter(t, resp["filter"])
	pushed, sent := idsOf(t, req["commits"]), idsOf(t, resp["commits"])
	for _, id := range pushed {
		if !filterHas(clientFilter, clientSalt, id) {
			t.Errorf("client filter lacks %s, a commit the client pushes", id)
		}
		if !filterHas(serverFilter, serverSalt, id) {
			t.Errorf("server filter lacks %s, a commit it accepted this round", id)
		}
	}
	for _, id := range sent {
		if filterHas(clientFilter, clientSalt, id) {
			t.Errorf("server sent %s, which the client's filter reports as present", id)
		}
		if !filterHas(serverFilter, serverSalt, id) {
			t.Errorf("server filter lacks %s, a commit it sends", id)
		}
	}
	if got, want := fmt.Sprint(resp["inSync"]), "false"; got != want {
		t.Errorf("inSync=%s, want %s (the example round carries a filter)", got, want)
	}
}

// The example sessions' private keys are derived from public seeds, so that
// anyone can sign new example commits (docs/api.md, "Examples"): directly,
// or through auth.CustodialSession from the root key's seed.
func TestExamples_SessionKeysFromSeeds(t *testing.T) {
	sessions := exampleSessions(t)
	if got, want := len(sessions), 3; got != want {
		t.Fatalf("found %d example sessions, want %d", got, want)
	}
	var derived []string
	for _, label := range []string{"alice laptop", "alice phone"} {
		derived = append(derived, base64.RawURLEncoding.EncodeToString(exampleKey(label).Public().(ed25519.PublicKey)))
	}
	for _, r := range exampleRecords(t) {
		if !r.session.Custodial {
			continue
		}
		s := r.session
		c, _, err := auth.CustodialSession(exampleRoot, auth.Principal{Sub: s.Owner, Issuer: s.Issuer, Roles: s.Roles}, s.Expires)
		if err != nil {
			t.Fatal(err)
		}
		derived = append(derived, base64.RawURLEncoding.EncodeToString(c.PublicKey))
	}
	for id, pub := range sessions {
		if !slices.Contains(derived, base64.RawURLEncoding.EncodeToString(pub)) {
			t.Errorf("session %s: public key is not derived from a documented seed", id)
		}
	}
}

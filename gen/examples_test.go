package gen_test

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strconv"
	"testing"

	"github.com/bits-and-blooms/bloom/v3"
	"github.com/getkin/kin-openapi/openapi3"
	"go.yaml.in/yaml/v3"

	"github.com/goat-gateway/goat-gateway/core"
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

// exampleSessions returns the public key of every session in the examples
// (createSession answers and sys.sessions items) by session id.
func exampleSessions(tb testing.TB) map[string]ed25519.PublicKey {
	tb.Helper()
	out := map[string]ed25519.PublicKey{}
	walkExamples(rawSpec(tb), func(m map[string]any) {
		if len(m) != 4 || !hasKeys(m, "id", "owner", "publicKey", "expires") {
			return
		}
		key, err := base64.RawURLEncoding.DecodeString(m["publicKey"].(string))
		if err != nil || len(key) != ed25519.PublicKeySize {
			tb.Errorf("session %v: bad public key %v", m["id"], m["publicKey"])
			return
		}
		out[m["id"].(string)] = key
	})
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

func TestExamples_SessionProof(t *testing.T) {
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
	// The challenge exactly as the createSession description defines it.
	challenge := "goat-gateway session v1\n" + resp["owner"].(string) + "\n" + req["publicKey"].(string) + "\n" +
		strconv.FormatFloat(req["expires"].(float64), 'f', -1, 64)
	if !ed25519.Verify(pub, []byte(challenge), proof) {
		t.Fatalf("proof does not verify over %q", challenge)
	}
	if got, want := resp["publicKey"], req["publicKey"]; got != want {
		t.Fatalf("session publicKey=%v, want %v", got, want)
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
// anyone can sign new example commits (docs/api.md, "Examples").
func TestExamples_SessionKeysFromSeeds(t *testing.T) {
	sessions := exampleSessions(t)
	if got, want := len(sessions), 3; got != want {
		t.Fatalf("found %d example sessions, want %d", got, want)
	}
	var derived []string
	for _, label := range []string{"alice laptop", "alice phone", "gateway node-1"} {
		seed := sha256.Sum256([]byte("goat-gateway example key: " + label))
		pub := ed25519.NewKeyFromSeed(seed[:]).Public().(ed25519.PublicKey)
		derived = append(derived, base64.RawURLEncoding.EncodeToString(pub))
	}
	for id, pub := range sessions {
		if !slices.Contains(derived, base64.RawURLEncoding.EncodeToString(pub)) {
			t.Errorf("session %s: public key is not derived from a documented seed", id)
		}
	}
}

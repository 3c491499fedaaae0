package core

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"flag"
	"os"
	"testing"
)

// The files in testdata/ are cross-language test vectors: the TypeScript SDK
// and any third-party client must reproduce every canonical form, id and
// signature in them. They are generated from this code; run
//
//	go test ./core -run TestVectors -update
//
// to rewrite them after an intended change, and review the diff.
var update = flag.Bool("update", false, "rewrite the test vectors in testdata/")

type commitVector struct {
	Name      string         `json:"name"`
	Input     string         `json:"input"`
	Canonical string         `json:"canonical"`
	ID        string         `json:"id"`
	Sig       string         `json:"sig,omitempty"`
	Commit    string         `json:"commit"`
	BaseData  map[string]any `json:"baseData,omitempty"`
	Result    map[string]any `json:"result,omitempty"`
}

type commitVectorFile struct {
	About     string         `json:"about"`
	Seed      string         `json:"seed"`
	PublicKey string         `json:"publicKey"`
	Vectors   []commitVector `json:"vectors"`
}

// vectorInputs are commits without id and sig, spelled non-canonically on
// purpose (key order, white space, escapes, number forms).
var vectorInputs = []struct{ name, input string }{
	{"first commit", `{"repo":"user.alice.notes","key":"task-1","parents":[],"author":"s_alice","ts":1763800000000,"schema":"task/2","data":{"title":"Buy milk","done":false}}`},
	{"every field type", `{
		"ts": 1763800000001, "schema": "kitchen/1", "repo": "public.sink", "key": "all:types@1",
		"author": "s_alice", "parents": ["1a0b0000000000000000000000000000000000000000000000000000000000ff"],
		"data": {
			"str": "plain", "num": 42, "bool": true, "date": "2026-11-22T10:00:00.000Z",
			"json": {"nested": [1, [2, [3, {"deep": null}]]], "empty": {}, "arr": []},
			"set": ["apple", "banana", "cherry"],
			"map": {"count": 3, "label": "x", "on": false},
			"text": "Hello, world"
		}}`},
	{"unicode", `{"repo":"r","key":"u","parents":[],"author":"s_bob","ts":0,"schema":"any/1","data":{
		"astral": "\ud83d\ude00 \ud834\udd1e 𝄞", "combining": "e\u0301", "separators": "\u2028\u2029",
		"controls": "\u0000\u001f\t\n\"\\/", "€": 1, "\ufb33": 2, "\ud83d\ude00": 3, "\r": 4, "ö": 5}}`},
	{"numbers", `{"repo":"r","key":"n","parents":[],"author":"s_bob","ts":9007199254740991,"schema":"any/1","data":{
		"big": 1e21, "tenth": 0.1, "negzero": -0, "tiny": 5e-324, "small": 1E-7, "int": 100.0,
		"max": 1.7976931348623157e308, "inexact": 9007199254740993, "third": 333333333.33333329}}`},
	{"tombstone", `{"repo":"r","key":"task-1","parents":["9f2c000000000000000000000000000000000000000000000000000000000001"],"author":"s_alice","ts":1763800000500,"schema":"task/2","data":{"isDeleted":true,"title":"Buy milk"}}`},
	{"merge commit", `{"repo":"r","key":"k","parents":["0000000000000000000000000000000000000000000000000000000000000001","00000000000000000000000000000000000000000000000000000000000000aa"],"author":"merge","ts":1763800000200,"schema":"any/1","data":{"a":1}}`},
}

// deltaVector edits the "every field type" vector with one op of each kind.
const deltaOps = `[
	{"op":"set","field":"str","value":"changed"},
	{"op":"unset","field":"bool"},
	{"op":"add","field":"set","values":["date","elderberry"]},
	{"op":"remove","field":"set","values":["apple"]},
	{"op":"put","field":"map","key":"count","value":4},
	{"op":"del","field":"map","key":"on"},
	{"op":"splice","field":"text","at":7,"del":5,"ins":"🌍 planet"}]`

func buildVectors(tb testing.TB) commitVectorFile {
	tb.Helper()
	priv := testKey(tb)
	f := commitVectorFile{
		About: "goat-gateway commit vectors: for each, input (a commit without id and sig, spelled non-canonically), " +
			"canonical (RFC 8785 JCS of input), id (lowercase hex SHA-256 of canonical), sig (unpadded base64url Ed25519 " +
			"signature over the 32 id bytes by the key with the given seed; absent for merge commits) and commit (the canonical " +
			"JSON with id and sig). Delta vectors also carry baseData and the result of applying the delta to it.",
		Seed:      hex.EncodeToString(priv.Seed()),
		PublicKey: base64.RawURLEncoding.EncodeToString(priv.Public().(ed25519.PublicKey)),
	}
	add := func(name, input string, c *Commit) commitVector {
		if c.IsMerge() {
			if err := c.Seal(); err != nil {
				tb.Fatalf("%s: %v", name, err)
			}
		} else if err := c.Sign(priv); err != nil {
			tb.Fatalf("%s: %v", name, err)
		}
		canon, _ := c.CanonicalBytes()
		full, _ := c.MarshalJSON()
		v := commitVector{Name: name, Input: input, Canonical: string(canon), ID: c.ID.String(), Commit: string(full)}
		if c.Sig != nil {
			v.Sig = base64.RawURLEncoding.EncodeToString(c.Sig)
		}
		f.Vectors = append(f.Vectors, v)
		return v
	}
	var kitchen *Commit
	for _, in := range vectorInputs {
		c := commitFromInput(tb, in.input)
		add(in.name, in.input, c)
		if in.name == "every field type" {
			kitchen = c
		}
	}
	ops, err := ParseJSON([]byte(deltaOps))
	if err != nil {
		tb.Fatal(err)
	}
	d, err := deltaFromValue(map[string]any{"base": kitchen.ID.String(), "ops": ops})
	if err != nil {
		tb.Fatal(err)
	}
	input := `{"repo":"public.sink","key":"all:types@1","parents":["` + kitchen.ID.String() + `"],"author":"s_alice","ts":1763800000002,"schema":"kitchen/1","delta":{"base":"` + kitchen.ID.String() + `","ops":` + deltaOps + `}}`
	c := commitFromInput(tb, input)
	result, err := ApplyDelta(kitchen.Data, d)
	if err != nil {
		tb.Fatal(err)
	}
	v := add("delta with every op", input, c)
	v.BaseData, v.Result = kitchen.Data, result
	f.Vectors[len(f.Vectors)-1] = v
	return f
}

func commitFromInput(tb testing.TB, input string) *Commit {
	tb.Helper()
	v, err := ParseJSON([]byte(input))
	if err != nil {
		tb.Fatal(err)
	}
	m := v.(map[string]any)
	m["id"] = ZeroID.String()
	if m["author"] != MergeAuthor {
		m["sig"] = base64.RawURLEncoding.EncodeToString(make([]byte, 64))
	}
	c, err := CommitFromValue(m)
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

func TestVectors_Commits(t *testing.T) {
	want := buildVectors(t)
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(want); err != nil {
		t.Fatal(err)
	}
	checkGolden(t, "testdata/commits.json", buf.Bytes())

	// Every vector decodes, recomputes and verifies through the public API.
	pub := testKey(t).Public().(ed25519.PublicKey)
	for _, v := range want.Vectors {
		c, err := DecodeCommit([]byte(v.Commit))
		if err != nil {
			t.Fatalf("%s: %v", v.Name, err)
		}
		canon, err := Canonicalize([]byte(v.Input))
		if err != nil || string(canon) != v.Canonical {
			t.Fatalf("%s: canonical form of input differs: %s", v.Name, canon)
		}
		if !c.IsMerge() {
			if err := c.VerifySig(pub); err != nil {
				t.Fatalf("%s: %v", v.Name, err)
			}
		}
	}
}

func checkGolden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./core -run TestVectors -update)", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s is stale: the code now produces different vectors (run with -update if intended, and review the diff)", path)
	}
}

type schemaVectorFile struct {
	About    string            `json:"about"`
	Schemas  []json.RawMessage `json:"schemas"`
	Validate []validateVector  `json:"validate"`
	Upgrade  []upgradeVector   `json:"upgrade"`
}

type validateVector struct {
	Schema string         `json:"schema"`
	Data   map[string]any `json:"data"`
	Valid  bool           `json:"valid"`
}

type upgradeVector struct {
	From string         `json:"from"`
	To   string         `json:"to"`
	In   map[string]any `json:"in"`
	Out  map[string]any `json:"out"`
}

var vectorSchemas = []string{
	`{"ns":"task","version":1,"fields":{"title":{"type":"string","required":true},"prio":{"type":"string"},"old":{"type":"string"},"label":{"type":"string"},"due":{"type":"date"},"n":{"type":"number"},"done":{"type":"boolean","default":false},"tags":{"type":"set"},"attrs":{"type":"map"},"notes":{"type":"text"},"raw":{"type":"json"}}}`,
	`{"ns":"task","version":2,"fields":{"name":{"type":"string","required":true},"prio":{"type":"number"},"label":{"type":"string"},"done":{"type":"boolean"},"flag":{"type":"boolean"},"code":{"type":"string"}},"upgrade":[{"op":"rename","from":"title","to":"name"},{"op":"convert","field":"prio","conversion":"toNumber"},{"op":"remove","field":"old"},{"op":"add","field":"done","default":false},{"op":"convert","field":"flag","conversion":"toBoolean"},{"op":"convert","field":"code","conversion":"toString"}]}`,
	`{"ns":"task","version":3,"fields":{"name":{"type":"text","required":true},"prio":{"type":"number"},"labels":{"type":"set"},"done":{"type":"boolean"},"flag":{"type":"boolean"},"code":{"type":"string"}},"upgrade":[{"op":"convert","field":"name","conversion":"identity"},{"op":"rename","from":"label","to":"labels"},{"op":"convert","field":"labels","conversion":"toSet"}]}`,
}

var validateCases = []struct {
	schema, data string
	valid        bool
}{
	{"task/1", `{"title":"a"}`, true},
	{"task/1", `{"title":"a","due":"2026-11-22T10:00:00.000Z","n":-0.5,"done":true,"tags":["B","a","😀","\ufb33"],"attrs":{"k":1,"j":"x","b":false},"notes":"😀","raw":[null,{"x":1}]}`, true},
	{"task/1", `{"isDeleted":true}`, true},
	{"task/1", `{"done":true}`, false},
	{"task/1", `{"title":"a","other":1}`, false},
	{"task/1", `{"title":1}`, false},
	{"task/1", `{"title":"a","due":"2026-11-22T10:00:00Z"}`, false},
	{"task/1", `{"title":"a","due":"2026-02-30T10:00:00.000Z"}`, false},
	{"task/1", `{"title":"a","tags":["b","a"]}`, false},
	{"task/1", `{"title":"a","tags":["\ufb33","😀"]}`, false},
	{"task/1", `{"title":"a","tags":["a","a"]}`, false},
	{"task/1", `{"title":"a","attrs":{"k":{}}}`, false},
	{"task/1", `{"title":"a","isDeleted":"yes"}`, false},
	{"any/1", `{"anything":{"goes":[1,"two",null]}}`, true},
}

var upgradeCases = []struct{ from, to, in string }{
	{"task/1", "task/3", `{"title":"x","prio":"2","old":"gone","label":"home"}`},
	{"task/1", "task/2", `{"title":"x","prio":"high","flag":"true","code":12.5}`},
	{"task/1", "task/2", `{"title":"x","prio":" 1e3 ","flag":0,"code":true,"done":true}`},
	{"task/2", "task/3", `{"name":"y","label":"a"}`},
	{"task/3", "task/3", `{"name":"z"}`},
}

func TestVectors_Schemas(t *testing.T) {
	r := NewRegistry()
	f := schemaVectorFile{About: "goat-gateway schema vectors: the schemas (in order), data validated against a schema " +
		"(valid or not), and values upgraded between versions (in -> out)."}
	for _, def := range vectorSchemas {
		s, err := DecodeSchema([]byte(def))
		if err != nil {
			t.Fatal(err)
		}
		if err := r.Add(s); err != nil {
			t.Fatal(err)
		}
		f.Schemas = append(f.Schemas, json.RawMessage(def))
	}
	for _, c := range validateCases {
		s, err := r.Get(c.schema)
		if err != nil {
			t.Fatal(err)
		}
		v, err := ParseJSON([]byte(c.data))
		if err != nil {
			t.Fatal(err)
		}
		data := v.(map[string]any)
		if err := s.Validate(data); (err == nil) != c.valid {
			t.Fatalf("%s %s: err=%v, want valid=%v", c.schema, c.data, err, c.valid)
		}
		f.Validate = append(f.Validate, validateVector{Schema: c.schema, Data: data, Valid: c.valid})
	}
	for _, c := range upgradeCases {
		v, _ := ParseJSON([]byte(c.in))
		out, err := r.Upgrade(v.(map[string]any), c.from, c.to)
		if err != nil {
			t.Fatal(err)
		}
		f.Upgrade = append(f.Upgrade, upgradeVector{From: c.from, To: c.to, In: v.(map[string]any), Out: out})
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(f); err != nil {
		t.Fatal(err)
	}
	checkGolden(t, "testdata/schemas.json", buf.Bytes())
}

package core

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// benchCommitJSON is a commit like goat-bench's clone documents (about
// 600 bytes of canonical JSON), signed.
func benchCommitJSON(tb testing.TB, i int) []byte {
	tb.Helper()
	priv := ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize))
	c := &Commit{Repo: "clone", Key: fmt.Sprintf("item-%07d", i), Author: "s_aaaaaaaaaaaaaaaaaaaaaaaa", TS: 1_763_800_000_000 + int64(i), Schema: AnySchema,
		Data: map[string]any{
			"title": fmt.Sprintf("Task %d: call the plumber about the kitchen sink", i),
			"done":  i%3 == 0,
			"prio":  float64(i % 5),
			"due":   fmt.Sprintf("2026-%02d-%02dT09:30:00.000Z", 1+i%12, 1+i%28),
			"tags":  []any{"home", fmt.Sprintf("room-%d", i%7)},
			"notes": fmt.Sprintf("Ask for a quote first; the last visit (#%d) took two hours and the part was not in stock.", i%1000),
		}}
	if err := c.Sign(priv); err != nil {
		tb.Fatal(err)
	}
	b, err := c.MarshalJSON()
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// BenchmarkDecodeCommit measures the strict decoding of a received commit
// (id recomputed), what a clone pays per commit.
// general is the path that encodes the commit again to hash it (all
// commits took it before issue 19), parsed the one that parses the commit
// into the value model and hashes the received canonical bytes, fast
// DecodeCommit: a canonical commit decoded without the value model.
func BenchmarkDecodeCommit(b *testing.B) {
	raw := benchCommitJSON(b, 42)
	for _, bc := range []struct {
		name   string
		decode func([]byte) (*Commit, error)
	}{{"general", decodeCommitSlow}, {"parsed", decodeCommitParsed}, {"fast", DecodeCommit}} {
		b.Run(bc.name, func(b *testing.B) {
			b.SetBytes(int64(len(raw)))
			for b.Loop() {
				if _, err := bc.decode(raw); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// decodeCommitSlow is DecodeCommit's general path alone: parse, then
// encode the commit again and hash that. The fast path must agree with it
// on every input.
func decodeCommitSlow(b []byte) (*Commit, error) {
	c, err := decodeCommit(b)
	if err != nil {
		return nil, err
	}
	if _, err := c.checkID(); err != nil {
		return nil, err
	}
	return c, nil
}

// sameDecode fails unless DecodeCommit and the general path agree on b:
// both accept it as the same commit, or both refuse it with the same class
// of error.
func sameDecode(tb testing.TB, label string, b []byte) (accepted bool) {
	tb.Helper()
	fast, ferr := DecodeCommit(b)
	slow, serr := decodeCommitSlow(b)
	switch {
	case (ferr == nil) != (serr == nil):
		tb.Fatalf("%s: fast path: %v; general path: %v\n%s", label, ferr, serr, b)
	case ferr != nil:
		// The same class of error (the texts may name different fields:
		// unknown fields are found in map order).
		if errors.Is(ferr, ErrInvalid) != errors.Is(serr, ErrInvalid) || errors.Is(ferr, ErrTooLarge) != errors.Is(serr, ErrTooLarge) {
			tb.Fatalf("%s: fast path: %v; general path: %v", label, ferr, serr)
		}
		return false
	}
	fj, _ := fast.MarshalJSON()
	sj, _ := slow.MarshalJSON()
	if fast.ID != slow.ID || string(fj) != string(sj) {
		tb.Fatalf("%s: fast path decoded %s, general path %s", label, fj, sj)
	}
	return true
}

// tamperings returns variants of a commit's canonical JSON: every byte
// changed, and the edits that keep JSON valid but break canonical form
// (whitespace, reordered members, other spellings of numbers and strings,
// upper-case hex) or change the content behind the id.
func tamperings(b []byte) map[string][]byte {
	out := map[string][]byte{}
	for i := range b {
		for _, x := range []byte{1, 0x20, 0x80} {
			v := bytes.Clone(b)
			v[i] ^= x
			out[fmt.Sprintf("byte %d ^ %#x", i, x)] = v
		}
		v := append(bytes.Clone(b[:i]), append([]byte(" "), b[i:]...)...)
		out[fmt.Sprintf("space at %d", i)] = v
	}
	s := string(b)
	edits := map[string][2]string{
		"ts as 1.0e3 spelling": {`"ts":`, `"ts":0.0e0+`},
		"escaped slash":        {`/`, `\/`},
		"unicode escape":       {`"author":"`, `"author":"\u0073`},
		"escaped a":            {`a`, `\u0061`},
		"prio as 2.0":          {`"prio":2`, `"prio":2.0`},
		"prio as 2e0":          {`"prio":2`, `"prio":2e0`},
		"prio as -0":           {`"prio":0`, `"prio":-0`},
		"done first":           {`"data":{"done"`, `"data":{"zz":1,"done"`},
		"upper-case id":        {`"id":"`, `"id":"A`},
		"members reordered":    {`{"author":`, `{"key":"x","author":`},
		"sig before id":        {`,"id":`, `,"sig":"x","id":`},
		"id removed":           {`"id":"`, `"i":"`},
		"trailing space":       {`}`, `} `},
	}
	for name, e := range edits {
		if strings.Contains(s, e[0]) {
			out[name] = []byte(strings.Replace(s, e[0], e[1], 1))
			out[name+" (last)"] = []byte(s[:strings.LastIndex(s, e[0])] + e[1] + s[strings.LastIndex(s, e[0])+len(e[0]):])
		}
	}
	return out
}

// TestDecodeCommit_FastPathAgrees: on every cross-language vector, on
// goat-bench-like commits, on the vectors re-spelled non-canonically, and
// on every tampering of them, DecodeCommit (which checks ids over the
// received bytes when they are canonical) accepts and refuses exactly what
// the general path (which encodes the commit again) does.
func TestDecodeCommit_FastPathAgrees(t *testing.T) {
	var inputs [][]byte
	var names []string
	for _, v := range buildVectors(t).Vectors {
		inputs = append(inputs, []byte(v.Commit))
		names = append(names, v.Name)
		// The same commit spelled non-canonically: still valid, through
		// the general path.
		in, _ := ParseJSON([]byte(v.Commit))
		js, _ := json.MarshalIndent(in, "", " ")
		inputs = append(inputs, js)
		names = append(names, v.Name+" (indented)")
	}
	for i := range 3 {
		inputs = append(inputs, benchCommitJSON(t, i))
		names = append(names, fmt.Sprintf("bench commit %d", i))
	}
	good, _ := signedCommit(t).MarshalJSON()
	inputs, names = append(inputs, good), append(names, "signed commit")
	for i, b := range inputs {
		if !sameDecode(t, names[i], b) {
			t.Fatalf("%s: refused", names[i])
		}
		refused := 0
		tam := tamperings(b)
		for what, v := range tam {
			if !sameDecode(t, names[i]+": "+what, v) {
				refused++
			}
		}
		if refused < len(tam)/2 {
			t.Fatalf("%s: only %d of %d tamperings refused", names[i], refused, len(tam))
		}
	}
}

// FuzzDecodeCommit_FastPath: on any input, the fast path and the general
// path agree.
func FuzzDecodeCommit_FastPath(f *testing.F) {
	for _, v := range buildVectors(f).Vectors {
		f.Add([]byte(v.Commit))
	}
	f.Add(benchCommitJSON(f, 1))
	f.Fuzz(func(t *testing.T, b []byte) { sameDecode(t, "fuzz", b) })
}

// sameAsGeneral fails unless whatever decodeCanonicalCommit accepts in b,
// the general path accepts as the same commit. It reports whether the
// canonical decoder took b.
func sameAsGeneral(tb testing.TB, label string, b []byte) (took bool) {
	tb.Helper()
	fast, ok := decodeCanonicalCommit(b)
	if !ok {
		return false
	}
	slow, err := decodeCommitSlow(b)
	if err != nil {
		tb.Fatalf("%s: canonical decoder took what the general path refuses (%v):\n%s", label, err, b)
	}
	fj, ferr := fast.MarshalJSON()
	sj, _ := slow.MarshalJSON()
	if ferr != nil || fast.ID != slow.ID || string(fj) != string(sj) || (fast.Parents == nil) != (slow.Parents == nil) ||
		(fast.Data == nil) != (slow.Data == nil) || (fast.Delta == nil) != (slow.Delta == nil) || !EqualJSON(fast.Data, slow.Data) {
		tb.Fatalf("%s: canonical decoder %s (%v), general path %s", label, fj, ferr, sj)
	}
	// What it takes is the commit's MarshalJSON byte for byte: callers
	// store the bytes as they were received (storage.Repo.AppendEncoded).
	if string(fj) != string(b) {
		tb.Fatalf("%s: canonical decoder took bytes that are not the commit's MarshalJSON:\n%s\n%s", label, b, fj)
	}
	// In a push body's array it decodes the same and ends where the
	// commit does, unless the body as a whole is too deep or the commit
	// too large (which the general path refuses too).
	body := append(append([]byte(`{"commits":[`), b...), `]}`...)
	at, end, ok := DecodeCanonicalCommitAt(body, len(`{"commits":[`), 2)
	switch {
	case ok && (at.ID != fast.ID || end != len(body)-len(`]}`)):
		tb.Fatalf("%s: DecodeCanonicalCommitAt in a body: id %s end %d, want %s %d", label, at.ID, end, fast.ID, len(body)-2)
	case !ok:
		if _, err := ParseJSON(body); err == nil && len(b) <= MaxCommitBytes {
			tb.Fatalf("%s: DecodeCanonicalCommitAt refused in a body a commit the parser takes there", label)
		}
	}
	return true
}

// fuzzCorpus returns the inputs stored for a Fuzz target of one []byte
// argument in testdata/fuzz.
func fuzzCorpus(tb testing.TB, target string) map[string][]byte {
	tb.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", "fuzz", target, "*"))
	if err != nil {
		tb.Fatal(err)
	}
	out := map[string][]byte{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			tb.Fatal(err)
		}
		lines := strings.Split(strings.TrimSpace(string(b)), "\n")
		arg, found := strings.CutPrefix(lines[len(lines)-1], "[]byte(")
		if len(lines) != 2 || !found {
			tb.Fatalf("%s: not a corpus file of one []byte", f)
		}
		s, err := strconv.Unquote(strings.TrimSuffix(arg, ")"))
		if err != nil {
			tb.Fatalf("%s: %v", f, err)
		}
		out[f] = []byte(s)
	}
	return out
}

// TestDecodeCanonicalCommit: the decoder that skips the value model takes
// every canonical commit of the vectors and of goat-bench's kind, and
// whatever it takes (tamperings of them and the fuzz corpus included), the
// general path accepts as the same commit.
func TestDecodeCanonicalCommit(t *testing.T) {
	inputs := map[string][]byte{}
	for _, v := range buildVectors(t).Vectors {
		inputs[v.Name] = []byte(v.Commit)
	}
	for i := range 3 {
		inputs[fmt.Sprintf("bench commit %d", i)] = benchCommitJSON(t, i)
	}
	inputs["signed commit"], _ = signedCommit(t).MarshalJSON()
	took := 0
	for name, b := range inputs {
		if !sameAsGeneral(t, name, b) {
			t.Fatalf("%s: a canonical commit not taken:\n%s", name, b)
		}
		for what, v := range tamperings(b) {
			if sameAsGeneral(t, name+": "+what, v) {
				took++
			}
			// The same with an id forged to match the tampered bytes: a
			// non-canonical spelling must not pass because its own bytes
			// hash to the id.
			sameAsGeneral(t, name+": "+what+" (id forged)", forgeID(v))
		}
	}
	// Tamperings the decoder takes are the ones that keep a valid commit
	// (an id's or a signature's letters changed are still well formed).
	if took == 0 {
		t.Fatalf("no tampering taken: the comparison never ran on one")
	}
	for _, target := range []string{"FuzzDecodeCommit", "FuzzDecodeCommit_FastPath"} {
		for name, b := range fuzzCorpus(t, target) {
			sameAsGeneral(t, name, b)
			sameDecode(t, name, b)
		}
	}
}

// forgeID replaces the id in b (a commit's JSON, members as received) by
// the SHA-256 of b without its id and sig members; b unchanged if it has
// no id member of 64 characters.
func forgeID(b []byte) []byte {
	s := string(b)
	i := strings.Index(s, `,"id":"`)
	if i < 0 || len(s) < i+len(`,"id":"`)+65 {
		return b
	}
	idEnd := i + len(`,"id":"`) + 65
	content := s[:i] + s[idEnd:]
	if j := strings.Index(content, `,"sig":"`); j >= 0 {
		if k := strings.IndexByte(content[j+len(`,"sig":"`):], '"'); k >= 0 {
			content = content[:j] + content[j+len(`,"sig":"`)+k+1:]
		}
	}
	sum := sha256.Sum256([]byte(content))
	return []byte(s[:i] + `,"id":"` + hex.EncodeToString(sum[:]) + `"` + s[idEnd:])
}

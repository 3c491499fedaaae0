package core

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"math"
	"slices"
	"strconv"
)

// MergeAuthor is the author of merge commits, which carry no signature: any
// peer verifies one by recomputing it from its parents.
const MergeAuthor = "merge"

// Commit is one immutable change to one item (DESIGN section 3).
//
// Its JSON form is an object with the fields below; the id is the lowercase
// hex SHA-256 of the RFC 8785 canonical JSON of the object without "id" and
// "sig", and sig is the unpadded base64url Ed25519 signature over the 32 id
// bytes. MarshalJSON always writes the canonical form (with id and sig), so
// stored and transmitted commits are byte-identical everywhere.
type Commit struct {
	ID      CommitID
	Repo    string
	Key     string
	Parents []CommitID // sorted ascending, unique; empty for a key's first commit
	Author  string     // session id, or MergeAuthor
	TS      int64      // unix milliseconds
	Schema  string     // "ns/version"
	Data    map[string]any
	Delta   *Delta
	Sig     []byte
}

// IsMerge reports whether c is a merge commit.
func (c *Commit) IsMerge() bool { return c.Author == MergeAuthor }

// IsDeleted reports whether c's full data marks the item deleted.
func IsDeleted(data map[string]any) bool {
	d, _ := data["isDeleted"].(bool)
	return d
}

// ComputeID returns the id c's content hashes to, after checking that c is
// well formed.
func (c *Commit) ComputeID() (CommitID, error) {
	b, err := c.appendJSON(nil, false)
	if err != nil {
		return CommitID{}, err
	}
	return sha256.Sum256(b), nil
}

// Seal sets c.ID from c's content.
func (c *Commit) Seal() error {
	id, err := c.ComputeID()
	if err != nil {
		return err
	}
	c.ID = id
	return nil
}

// Sign seals c and signs its id with priv.
func (c *Commit) Sign(priv ed25519.PrivateKey) error {
	if c.IsMerge() {
		return fmt.Errorf("%w: merge commits are not signed", ErrInvalid)
	}
	if err := c.Seal(); err != nil {
		return err
	}
	c.Sig = ed25519.Sign(priv, c.ID[:])
	return nil
}

// SignJSON signs c as Sign does and returns c's JSON (what MarshalJSON
// returns) from the same one encoding: the id hashes that encoding without
// its "id" and "sig" members (MarshalJSONAndID), which are then written in
// place, both of fixed width. A writer that signs a commit and stores it
// encodes it once instead of twice.
func (c *Commit) SignJSON(priv ed25519.PrivateKey) ([]byte, error) {
	if c.IsMerge() {
		return nil, fmt.Errorf("%w: merge commits are not signed", ErrInvalid)
	}
	c.Sig = make([]byte, ed25519.SignatureSize) // the signature's width, written below
	var sp idSigSpans
	b, err := c.appendJSONSpans(nil, true, &sp)
	if err != nil {
		c.Sig = nil
		return nil, err
	}
	h := sha256.New()
	h.Write(b[:sp.id0])
	h.Write(b[sp.id1:sp.sig0])
	h.Write(b[sp.sig1:])
	h.Sum(c.ID[:0])
	c.Sig = ed25519.Sign(priv, c.ID[:])
	hex.Encode(b[sp.id0+len(`,"id":"`):], c.ID[:])
	base64.RawURLEncoding.Encode(b[sp.sig0+len(`,"sig":"`):], c.Sig)
	return b, nil
}

// VerifySig checks that c's id recomputes and that sig is pub's signature
// over it.
func (c *Commit) VerifySig(pub ed25519.PublicKey) error {
	id, err := c.ComputeID()
	if err != nil {
		return err
	}
	if id != c.ID {
		return fmt.Errorf("%w: id: does not match the content (computed %s)", ErrInvalid, id)
	}
	return c.VerifySigOfID(pub)
}

// VerifySigOfID checks that sig is pub's signature over c.ID, without
// recomputing the id: for a caller that has checked the id against c's
// content already (DecodeCanonicalCommitAt did, over the bytes it
// decoded), since the recomputation is an encoding and a hash per commit.
func (c *Commit) VerifySigOfID(pub ed25519.PublicKey) error {
	if len(pub) != ed25519.PublicKeySize || len(c.Sig) != ed25519.SignatureSize || !ed25519.Verify(pub, c.ID[:], c.Sig) {
		return fmt.Errorf("%w: commit %s", ErrBadSignature, c.ID)
	}
	return nil
}

// VerifySigOfIDKey is VerifySigOfID with the author's key decoded once
// (NewVerifyingKey), for a caller that verifies many commits of one key.
func (c *Commit) VerifySigOfIDKey(k *VerifyingKey) error {
	if k == nil || !k.Verify(c.ID[:], c.Sig) {
		return fmt.Errorf("%w: commit %s", ErrBadSignature, c.ID)
	}
	return nil
}

// MarshalJSON writes the canonical JSON of c including id and sig.
func (c *Commit) MarshalJSON() ([]byte, error) { return c.appendJSON(nil, true) }

// CanonicalBytes returns what c's id is the SHA-256 of.
func (c *Commit) CanonicalBytes() ([]byte, error) { return c.appendJSON(nil, false) }

// check validates everything about c that does not need other commits.
func (c *Commit) check() error {
	if err := ValidateRepoName(c.Repo); err != nil {
		return fmt.Errorf("repo: %w", err)
	}
	if err := ValidateKey(c.Key); err != nil {
		return fmt.Errorf("key: %w", err)
	}
	if c.Author != MergeAuthor {
		if err := ValidateAuthor(c.Author); err != nil {
			return fmt.Errorf("author: %w", err)
		}
	}
	if c.TS < 0 || c.TS > MaxTS {
		return fmt.Errorf("%w: ts: %d is outside [0, 2^53)", ErrInvalid, c.TS)
	}
	if _, _, err := ParseSchemaRef(c.Schema); err != nil {
		return fmt.Errorf("schema: %w", err)
	}
	if len(c.Parents) > MaxParents {
		return fmt.Errorf("%w: parents: more than %d", ErrTooLarge, MaxParents)
	}
	for i := 1; i < len(c.Parents); i++ {
		if c.Parents[i-1].Compare(c.Parents[i]) >= 0 {
			return fmt.Errorf("%w: parents: must be sorted ascending and unique", ErrInvalid)
		}
	}
	if (c.Data == nil) == (c.Delta == nil) {
		return fmt.Errorf("%w: exactly one of data and delta must be present", ErrInvalid)
	}
	if c.Delta != nil {
		if c.IsMerge() {
			return fmt.Errorf("%w: delta: merge commits carry full data", ErrInvalid)
		}
		if err := c.Delta.check(); err != nil {
			return fmt.Errorf("delta: %w", err)
		}
	}
	if c.IsMerge() {
		if c.Sig != nil {
			return fmt.Errorf("%w: sig: merge commits are not signed", ErrInvalid)
		}
		if len(c.Parents) < 2 {
			return fmt.Errorf("%w: parents: a merge commit has at least two", ErrInvalid)
		}
	} else if c.Sig != nil && len(c.Sig) != ed25519.SignatureSize {
		return fmt.Errorf("%w: sig: must be %d bytes", ErrInvalid, ed25519.SignatureSize)
	}
	return nil
}

func (c *Commit) appendJSON(dst []byte, withIDSig bool) ([]byte, error) {
	return c.appendJSONSpans(dst, withIDSig, nil)
}

// idSigSpans are where the "id" and "sig" members are in an encoding
// with them: [id0, id1) and [sig0, sig1) (empty without a sig). The
// encoding without those two ranges is what the id hashes.
type idSigSpans struct{ id0, id1, sig0, sig1 int }

// MarshalJSONAndID returns what MarshalJSON does and the id c's content
// hashes to, from one encoding: the id is the SHA-256 of the encoding
// without its "id" and "sig" members (RFC 8785 orders the members, and
// those two are whole members, so what is left is exactly
// CanonicalBytes). A writer that must check c.ID and store c's JSON
// encodes it once instead of twice.
func (c *Commit) MarshalJSONAndID() ([]byte, CommitID, error) {
	var sp idSigSpans
	b, err := c.appendJSONSpans(nil, true, &sp)
	if err != nil {
		return nil, CommitID{}, err
	}
	h := sha256.New()
	h.Write(b[:sp.id0])
	h.Write(b[sp.id1:sp.sig0])
	h.Write(b[sp.sig1:])
	var id CommitID
	h.Sum(id[:0])
	return b, id, nil
}

func (c *Commit) appendJSONSpans(dst []byte, withIDSig bool, sp *idSigSpans) ([]byte, error) {
	if err := c.check(); err != nil {
		return nil, err
	}
	// Keys in RFC 8785 order (all ASCII, so byte order):
	// author data delta id key parents repo schema sig ts.
	dst = append(dst, `{"author":`...)
	dst = appendString(dst, c.Author)
	var err error
	if c.Data != nil {
		dst = append(dst, `,"data":`...)
		if dst, err = AppendCanonical(dst, c.Data); err != nil {
			return nil, fmt.Errorf("data: %w", err)
		}
	} else {
		dst = append(dst, `,"delta":`...)
		if dst, err = c.Delta.appendJSON(dst); err != nil {
			return nil, fmt.Errorf("delta: %w", err)
		}
	}
	if withIDSig {
		if sp != nil {
			sp.id0 = len(dst)
		}
		dst = append(dst, `,"id":"`...)
		dst = hex.AppendEncode(dst, c.ID[:])
		dst = append(dst, '"')
		if sp != nil {
			sp.id1 = len(dst)
		}
	}
	dst = append(dst, `,"key":`...)
	dst = appendString(dst, c.Key)
	dst = append(dst, `,"parents":[`...)
	for i, p := range c.Parents {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, '"')
		dst = hex.AppendEncode(dst, p[:])
		dst = append(dst, '"')
	}
	dst = append(dst, `],"repo":`...)
	dst = appendString(dst, c.Repo)
	dst = append(dst, `,"schema":`...)
	dst = appendString(dst, c.Schema)
	if sp != nil {
		sp.sig0, sp.sig1 = len(dst), len(dst)
	}
	if withIDSig && c.Sig != nil {
		dst = append(dst, `,"sig":"`...)
		dst = base64.RawURLEncoding.AppendEncode(dst, c.Sig)
		dst = append(dst, '"')
		if sp != nil {
			sp.sig1 = len(dst)
		}
	}
	dst = append(dst, `,"ts":`...)
	dst = strconv.AppendInt(dst, c.TS, 10)
	dst = append(dst, '}')
	if len(dst) > MaxCommitBytes {
		return nil, fmt.Errorf("%w: commit is %d bytes, more than %d", ErrTooLarge, len(dst), MaxCommitBytes)
	}
	return dst, nil
}

var commitFields = []string{"author", "data", "delta", "id", "key", "parents", "repo", "schema", "sig", "ts"}

// DecodeCommit parses a commit strictly: unknown fields, missing fields,
// fields of the wrong type, bad hex or base64, unsorted or duplicate parents,
// both or neither of data and delta, oversized input, and an id that does not
// recompute are errors naming the field. It does not verify the signature
// (that needs the author's session key: see VerifySig).
//
// Commits usually arrive in canonical form, as every peer stores and sends
// them; then they are decoded without the generic value model
// (decodeCanonicalCommit), or else parsed into it, and the id is checked
// over the received bytes themselves (the members but id and sig are
// exactly the canonical content), without encoding the commit again.
// Anything else takes the general path.
func DecodeCommit(b []byte) (*Commit, error) {
	if len(b) > MaxCommitBytes {
		return nil, fmt.Errorf("%w: commit is %d bytes, more than %d", ErrTooLarge, len(b), MaxCommitBytes)
	}
	if c, ok := decodeCanonicalCommit(b); ok {
		return c, nil
	}
	return decodeCommitParsed(b)
}

// decodeCommitParsed is DecodeCommit through the value model: the commit
// parsed whole, its id checked over the received bytes if they are
// canonical, over its encoding otherwise.
func decodeCommitParsed(b []byte) (*Commit, error) {
	p := parser{b: b, canon: true}
	v, err := p.parse()
	if err != nil {
		return nil, fmt.Errorf("commit: %w", err)
	}
	c, err := CommitFromValue(v)
	if err != nil {
		return nil, err
	}
	if content, ok := canonicalContent(&p, c); ok {
		if err := c.check(); err != nil {
			return nil, err
		}
		if id := CommitID(sha256Parts(content)); id != c.ID {
			return nil, fmt.Errorf("%w: id: %s does not match the content (computed %s)", ErrInvalid, c.ID, id)
		}
		return c, nil
	}
	if _, err := c.checkID(); err != nil {
		return nil, err
	}
	return c, nil
}

// canonicalContent returns, as up to three slices of the input, what c's id
// is the SHA-256 of, if the input (parsed by p in canon mode) is the
// canonical JSON of c: its members but "id" and "sig". It reports false
// whenever that cannot be shown without encoding c, and the caller then
// encodes it. The equality rests on: every member is canonical (p checked
// it), members are in canonical order, so removing two keeps the order
// Commit.appendJSON writes; data is the parsed object itself; strings,
// ts and parents (lowercase hex, as ParseCommitID demands) encode as they
// were received; a delta is compared with its own encoding, because
// decoding it may normalise it.
func canonicalContent(p *parser, c *Commit) ([3][]byte, bool) {
	var out [3][]byte
	if p.noncanon {
		return out, false
	}
	b := p.b
	parts, from := 0, 0
	for _, m := range p.members {
		switch m.key {
		case "id", "sig":
			// Never the first member (author always precedes them), so a
			// comma precedes each.
			if m.start == 1 || b[m.start-1] != ',' {
				return out, false
			}
			if parts == len(out)-1 {
				return out, false
			}
			out[parts] = b[from : m.start-1]
			parts++
			from = m.end
		case "delta":
			if c.Delta == nil {
				return out, false
			}
			enc, err := c.Delta.appendJSON(nil)
			if err != nil || string(enc) != string(b[m.start+len(`"delta":`):m.end]) {
				return out, false
			}
		}
	}
	out[parts] = b[from:]
	return out, true
}

func sha256Parts(parts [3][]byte) [32]byte {
	h := sha256.New()
	for _, p := range parts {
		h.Write(p)
	}
	var sum [32]byte
	h.Sum(sum[:0])
	return sum
}

// checkID encodes c's content once, checks that it hashes to c.ID, and
// returns the length c.MarshalJSON would have: the content plus its "id"
// and "sig" members.
func (c *Commit) checkID() (int, error) {
	b, err := c.appendJSON(nil, false)
	if err != nil {
		return 0, err
	}
	if id := CommitID(sha256.Sum256(b)); id != c.ID {
		return 0, fmt.Errorf("%w: id: %s does not match the content (computed %s)", ErrInvalid, c.ID, id)
	}
	n := len(b) + len(`,"id":""`) + 2*len(c.ID)
	if len(c.Sig) > 0 {
		n += len(`,"sig":""`) + base64.RawURLEncoding.EncodedLen(len(c.Sig))
	}
	return n, nil
}

// DecodeCommitValue is DecodeCommit for a commit already parsed by
// ParseJSON (as part of a larger body): the same checks, the size limit
// applying to its canonical form.
func DecodeCommitValue(v any) (*Commit, error) {
	c, err := CommitFromValue(v)
	if err != nil {
		return nil, err
	}
	n, err := c.checkID()
	if err != nil {
		return nil, err
	}
	if n > MaxCommitBytes {
		return nil, fmt.Errorf("%w: commit is %d bytes, more than %d", ErrTooLarge, n, MaxCommitBytes)
	}
	return c, nil
}

// DecodeCommitTrusted parses a commit that this process itself wrote and
// checksummed (a storage record), skipping the id recomputation. Anything
// from outside goes through DecodeCommit.
func DecodeCommitTrusted(b []byte) (*Commit, error) {
	c, err := decodeCommit(b)
	if err != nil {
		return nil, err
	}
	return c, c.check()
}

func decodeCommit(b []byte) (*Commit, error) {
	if len(b) > MaxCommitBytes {
		return nil, fmt.Errorf("%w: commit is %d bytes, more than %d", ErrTooLarge, len(b), MaxCommitBytes)
	}
	v, err := ParseJSON(b)
	if err != nil {
		return nil, fmt.Errorf("commit: %w", err)
	}
	return CommitFromValue(v)
}

// CommitFromValue builds a commit from a parsed JSON value with the checks
// of DecodeCommit except the id recomputation.
func CommitFromValue(v any) (*Commit, error) {
	m, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("%w: commit must be a JSON object", ErrInvalid)
	}
	for k := range m {
		if !slices.Contains(commitFields, k) {
			return nil, fmt.Errorf("%w: %s: unknown field", ErrInvalid, k)
		}
	}
	c := &Commit{}
	var err error
	if c.ID, err = idField(m, "id"); err != nil {
		return nil, err
	}
	if c.Repo, err = stringField(m, "repo"); err != nil {
		return nil, err
	}
	if c.Key, err = stringField(m, "key"); err != nil {
		return nil, err
	}
	if c.Author, err = stringField(m, "author"); err != nil {
		return nil, err
	}
	if c.Schema, err = stringField(m, "schema"); err != nil {
		return nil, err
	}
	ts, ok := m["ts"].(float64)
	if !ok {
		return nil, fieldErr("ts", m["ts"], "an integer")
	}
	if ts != math.Trunc(ts) || ts < 0 || ts > MaxTS {
		return nil, fmt.Errorf("%w: ts: must be an integer in [0, 2^53)", ErrInvalid)
	}
	c.TS = int64(ts)
	ps, ok := m["parents"].([]any)
	if !ok {
		return nil, fieldErr("parents", m["parents"], "an array of commit ids")
	}
	if len(ps) > MaxParents {
		return nil, fmt.Errorf("%w: parents: more than %d", ErrTooLarge, MaxParents)
	}
	c.Parents = make([]CommitID, len(ps))
	for i, p := range ps {
		s, ok := p.(string)
		if !ok {
			return nil, fieldErr(fmt.Sprintf("parents[%d]", i), p, "a commit id")
		}
		if c.Parents[i], err = ParseCommitID(s); err != nil {
			return nil, fmt.Errorf("parents[%d]: %w", i, err)
		}
	}
	if d, present := m["data"]; present {
		obj, ok := d.(map[string]any)
		if !ok {
			return nil, fieldErr("data", d, "an object")
		}
		c.Data = obj
	}
	if d, present := m["delta"]; present {
		if c.Delta, err = deltaFromValue(d); err != nil {
			return nil, fmt.Errorf("delta: %w", err)
		}
	}
	if s, present := m["sig"]; present {
		str, ok := s.(string)
		if !ok {
			return nil, fieldErr("sig", s, "a base64url string")
		}
		if c.Sig, err = base64.RawURLEncoding.DecodeString(str); err != nil || len(c.Sig) != ed25519.SignatureSize {
			return nil, fmt.Errorf("%w: sig: must be %d bytes of unpadded base64url", ErrInvalid, ed25519.SignatureSize)
		}
	} else if c.Author != MergeAuthor {
		return nil, fmt.Errorf("%w: sig: missing (only merge commits are unsigned)", ErrInvalid)
	}
	return c, nil
}

func stringField(m map[string]any, name string) (string, error) {
	v, present := m[name]
	if !present {
		return "", fmt.Errorf("%w: %s: missing", ErrInvalid, name)
	}
	s, ok := v.(string)
	if !ok {
		return "", fieldErr(name, v, "a string")
	}
	return s, nil
}

func idField(m map[string]any, name string) (CommitID, error) {
	s, err := stringField(m, name)
	if err != nil {
		return CommitID{}, err
	}
	id, err := ParseCommitID(s)
	if err != nil {
		return CommitID{}, fmt.Errorf("%s: %w", name, err)
	}
	return id, nil
}

func fieldErr(name string, v any, want string) error {
	if v == nil {
		return fmt.Errorf("%w: %s: missing or null, want %s", ErrInvalid, name, want)
	}
	return fmt.Errorf("%w: %s: got %s, want %s", ErrInvalid, name, jsonKind(v), want)
}

func jsonKind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "a boolean"
	case float64:
		return "a number"
	case string:
		return "a string"
	case []any:
		return "an array"
	case map[string]any:
		return "an object"
	default:
		return fmt.Sprintf("%T", v)
	}
}

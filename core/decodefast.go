package core

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"strconv"
)

// decodeCanonicalCommit decodes a commit spelled exactly as
// Commit.MarshalJSON writes it (what every peer stores and sends, so what a
// clone receives) straight into a Commit: the members are read in their
// one canonical order, ids and the signature from the bytes, and only data
// or delta goes through the value model. That is a third of the
// allocations of parsing the whole commit into maps and boxed values
// first (BenchmarkDecodeCommit).
//
// It reports false for anything else, and for anything wrong, without
// saying why: DecodeCommit then takes the general path, which words the
// error. So it only has to be right about what it accepts: a commit the
// general path accepts as the same commit (TestDecodeCanonicalCommit
// and FuzzDecodeCommit_FastPath hold it to that).
func decodeCanonicalCommit(b []byte) (*Commit, bool) {
	c, end, ok := decodeCanonicalAt(b, 0, 0)
	return c, ok && end == len(b)
}

// DecodeCanonicalCommitAt decodes the commit that starts at b[start] if it
// is spelled exactly as Commit.MarshalJSON writes it, and returns it with
// the offset just past it: then b[start:end] is the commit's MarshalJSON,
// its id is checked over those bytes, and it passes every check
// DecodeCommit makes, so that the bytes can be stored as they are
// (storage.Repo.AppendEncoded). depth is how deeply the commit is nested
// in the JSON text b holds (0 for a commit on its own; 2 for one in the
// array of a push body), so that its data is held to MaxJSONDepth as
// ParseJSON would hold the whole text to it. It reports false for
// anything else, and for anything wrong, without saying why: the caller
// then takes the general path (DecodeCommit, or ParseJSON and
// DecodeCommitValue), which words the error.
func DecodeCanonicalCommitAt(b []byte, start, depth int) (c *Commit, end int, ok bool) {
	if depth < 0 || start < 0 || start > len(b) {
		return nil, 0, false
	}
	c, end, ok = decodeCanonicalAt(b, start, depth)
	if !ok || end-start > MaxCommitBytes {
		return nil, 0, false
	}
	return c, end, true
}

var strictSig = base64.RawURLEncoding.Strict()

// decodeCanonicalAt is decodeCanonicalCommit for the commit at b[start],
// nested depth levels deep, returning where it ends.
func decodeCanonicalAt(b []byte, start, depth int) (*Commit, int, bool) {
	p := parser{b: b, i: start, canon: true}
	c := &Commit{}
	if !p.expect(`{"author":`) || !p.canonString(&c.Author) {
		return nil, 0, false
	}
	var dataStart int
	switch {
	case p.expect(`,"data":`):
		if p.i >= len(b) || b[p.i] != '{' {
			return nil, 0, false
		}
		v, err := p.value(depth + 1)
		if err != nil {
			return nil, 0, false
		}
		c.Data = v.(map[string]any)
	case p.expect(`,"delta":`):
		dataStart = p.i
		v, err := p.value(depth + 1)
		if err != nil {
			return nil, 0, false
		}
		if c.Delta, err = deltaFromValue(v); err != nil {
			return nil, 0, false
		}
		// Decoding a delta may normalise it: canonical only if it encodes
		// back to what was received.
		enc, err := c.Delta.appendJSON(nil)
		if err != nil || string(enc) != string(b[dataStart:p.i]) {
			return nil, 0, false
		}
	default:
		return nil, 0, false
	}
	id0 := p.i
	if !p.expect(`,"id":`) || !p.commitID(&c.ID) {
		return nil, 0, false
	}
	id1 := p.i
	if !p.expect(`,"key":`) || !p.canonString(&c.Key) || !p.expect(`,"parents":[`) {
		return nil, 0, false
	}
	// Most commits have one parent or none, merges a few: no allocation
	// but the result's.
	var buf [4]CommitID
	parents := buf[:0]
	for p.i < len(b) && b[p.i] != ']' {
		if len(parents) > 0 && !p.expect(",") {
			return nil, 0, false
		}
		var id CommitID
		if len(parents) == MaxParents || !p.commitID(&id) {
			return nil, 0, false
		}
		parents = append(parents, id)
	}
	c.Parents = make([]CommitID, len(parents))
	copy(c.Parents, parents)
	if !p.expect(`],"repo":`) || !p.canonString(&c.Repo) || !p.expect(`,"schema":`) || !p.canonString(&c.Schema) {
		return nil, 0, false
	}
	sig0, sig1 := p.i, p.i
	if p.expect(`,"sig":"`) {
		const n = 86 // unpadded base64url of 64 bytes
		if len(b)-p.i < n+1 || b[p.i+n] != '"' {
			return nil, 0, false
		}
		c.Sig = make([]byte, ed25519.SignatureSize)
		// Strict: the lenient decoder takes other spellings of the same
		// bytes (non-zero padding bits), which are not the canonical
		// form; the general path normalises those.
		if m, err := strictSig.Decode(c.Sig, b[p.i:p.i+n]); err != nil || m != ed25519.SignatureSize {
			return nil, 0, false
		}
		p.i += n + 1
		sig1 = p.i
	} else if c.Author != MergeAuthor {
		return nil, 0, false
	}
	if !p.expect(`,"ts":`) {
		return nil, 0, false
	}
	ts0 := p.i
	for p.i < len(b) && b[p.i] >= '0' && b[p.i] <= '9' {
		p.i++
	}
	ts := b[ts0:p.i]
	if !p.expect("}") || p.noncanon {
		return nil, 0, false
	}
	// Digits without a leading zero, at most MaxTS: the double the
	// general path reads is this integer exactly, and JCS writes it so.
	var err error
	if len(ts) == 0 || len(ts) > 16 || (ts[0] == '0' && len(ts) > 1) {
		return nil, 0, false
	}
	if c.TS, err = strconv.ParseInt(string(ts), 10, 64); err != nil || c.TS > MaxTS {
		return nil, 0, false
	}
	if c.check() != nil {
		return nil, 0, false
	}
	// The id is the SHA-256 of the commit without its id and sig members.
	h := sha256.New()
	h.Write(b[start:id0])
	h.Write(b[id1:sig0])
	h.Write(b[sig1:p.i])
	var sum CommitID
	h.Sum(sum[:0])
	if sum != c.ID {
		return nil, 0, false
	}
	return c, p.i, true
}

// expect consumes s if the input continues with it.
func (p *parser) expect(s string) bool {
	if len(p.b)-p.i < len(s) || string(p.b[p.i:p.i+len(s)]) != s {
		return false
	}
	p.i += len(s)
	return true
}

// canonString reads a string into dst (escapes JCS would not write leave
// p.noncanon set).
func (p *parser) canonString(dst *string) bool {
	if p.i >= len(p.b) || p.b[p.i] != '"' {
		return false
	}
	s, err := p.str()
	*dst = s
	return err == nil
}

// commitID reads a quoted commit id: 64 lowercase hex characters, its one
// spelling.
func (p *parser) commitID(dst *CommitID) bool {
	const n = 2 * len(CommitID{})
	if len(p.b)-p.i < n+2 || p.b[p.i] != '"' || p.b[p.i+n+1] != '"' {
		return false
	}
	h := p.b[p.i+1 : p.i+n+1]
	for _, c := range h {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	if _, err := hex.Decode(dst[:], h); err != nil {
		return false
	}
	p.i += n + 2
	return true
}

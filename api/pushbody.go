package api

import (
	"bytes"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/goat-gateway/goat-gateway/core"
)

// canonicalPush is a push body taken by the canonical fast path: its
// commits, each with the bytes it arrived as, which are its canonical JSON
// (core.DecodeCanonicalCommitAt), so that the node stores them as they
// are (node.PushEncoded).
type canonicalPush struct {
	commits []*core.Commit
	encoded [][]byte
}

const (
	pushOpen  = `{"commits":[`
	pushClose = `]}`
)

// decodeCanonicalPush takes a push body spelled as every client of ours
// writes it (client.PushCommits, the SDKs): {"commits":[...]} with no
// white space and every commit a full-data commit in canonical form. It
// decodes each commit once, from the bytes, checking its id over them,
// where the general path parses the whole body into the value model,
// walks it with the OpenAPI validator, then encodes each commit again to
// check its id (issue 19: those were about a sixth of a pushed commit's
// gateway CPU).
//
// It reports false for anything else, without saying why: the general
// path (the OpenAPI validator, then decodeCommits) then answers, so an
// error, and any body it does not take, is answered exactly as before.
// It only has to be right about what it takes: a body the validator
// accepts (ParseJSON and the PushRequest schema), made of commits the
// general decoder decodes to the same commits. Full-data commits only:
// a delta's ops have a schema of their own, left to the validator.
// maxItems is the PushRequest schema's maxItems of commits (0: none).
// TestDecodeCanonicalPush and FuzzDecodeCanonicalPush hold it to that.
func decodeCanonicalPush(raw []byte, maxItems int) (*canonicalPush, bool) {
	if !bytes.HasPrefix(raw, []byte(pushOpen)) || !bytes.HasSuffix(raw, []byte(pushClose)) {
		return nil, false
	}
	last := len(raw) - len(pushClose)
	i := len(pushOpen)
	if i >= last {
		return nil, false // no commit: minItems is 1
	}
	p := &canonicalPush{}
	for {
		if maxItems > 0 && len(p.commits) == maxItems {
			return nil, false
		}
		// The commits lie 2 deep: in the body's object, in its array.
		c, end, ok := core.DecodeCanonicalCommitAt(raw, i, 2)
		if !ok || c.Data == nil || end > last {
			return nil, false
		}
		p.commits = append(p.commits, c)
		p.encoded = append(p.encoded, raw[i:end:end])
		i = end
		if i == last {
			return p, true
		}
		if raw[i] != ',' {
			return nil, false
		}
		i++
	}
}

// pushMaxItems is the maxItems of the commits array of a request body
// schema (the PushRequest's), or 0.
func pushMaxItems(s *openapi3.Schema) int {
	if s == nil {
		return 0
	}
	if ref := s.Properties["commits"]; ref != nil && ref.Value != nil && ref.Value.MaxItems != nil {
		return int(*ref.Value.MaxItems)
	}
	return 0
}

package sync

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/goat-gateway/goat-gateway/core"
)

func filterSeeds(f *testing.F) {
	f.Helper()
	good, _ := NewFilter(200, 3, [SaltSize]byte{1, 2, 3})
	good.Add(core.CommitID{1})
	b, _ := good.MarshalJSON()
	f.Add(b)
	f.Add([]byte(`{"m":64,"k":1,"salt":"0000000000000000","bits":"AAAAAAAAAAA="}`))
	f.Add([]byte(`{"m":18446744073709551615,"k":1,"salt":"0000000000000000","bits":""}`))
	f.Add([]byte(`{"m":67108864,"k":32,"salt":"ffffffffffffffff","bits":"AAAA"}`))
	f.Add([]byte(`{"m":1,"k":1,"salt":"0000000000000000","bits":"gAAAAAAAAAA="}`))
	f.Add([]byte(`null`))
}

func FuzzFilterUnmarshal(f *testing.F) {
	filterSeeds(f)
	f.Fuzz(func(t *testing.T, in []byte) {
		var flt Filter
		if err := json.Unmarshal(in, &flt); err != nil {
			return
		}
		if m := flt.M(); m < 1 || m > MaxFilterBits || uint64(len(in)) < m/8 {
			t.Fatalf("accepted m=%d from %d bytes", m, len(in))
		}
		flt.Test(core.CommitID{}) // must not panic
		b1, err := json.Marshal(&flt)
		if err != nil {
			t.Fatal(err)
		}
		var back Filter
		if err := json.Unmarshal(b1, &back); err != nil {
			t.Fatalf("re-decoding %s: %v", b1, err)
		}
		b2, _ := json.Marshal(&back)
		if !bytes.Equal(b1, b2) {
			t.Fatalf("not stable:\n%s\n%s", b1, b2)
		}
	})
}

func FuzzDecodeCursor(f *testing.F) {
	f.Add(EncodeCursor(LogID{1, 2, 3}, 99))
	f.Add(EncodeCursor(LogID{}, 0))
	f.Add("")
	f.Add(strings.Repeat("A", CursorLen))
	f.Add(strings.Repeat("_", CursorLen))
	f.Fuzz(func(t *testing.T, s string) {
		c, err := DecodeCursor(s)
		if err != nil {
			if !errors.Is(err, core.ErrInvalid) {
				t.Fatalf("err=%v, want ErrInvalid", err)
			}
			return
		}
		// One spelling per cursor.
		if got := c.String(); got != s {
			t.Fatalf("decoded %q, re-encodes as %q", s, got)
		}
	})
}

func roundSeeds(tb testing.TB) (reqs, resps [][]byte) {
	tb.Helper()
	cs := makeCommits(tb, "f", 1, 2, 1)
	raw0, _ := cs[0].MarshalJSON()
	raw1, _ := cs[1].MarshalJSON()
	flt, _ := NewFilter(128, 2, [SaltSize]byte{9})
	flt.Add(cs[0].ID)
	d := DigestOf(cs[0].ID)
	for _, r := range []*Request{
		{},
		{Count: d.Count, Digest: d.XOR},
		{Count: d.Count, Digest: d.XOR, Filter: flt, Commits: []json.RawMessage{raw0}, Limit: 3},
	} {
		b, _ := json.Marshal(r)
		reqs = append(reqs, b)
	}
	for _, r := range []*Response{
		{InSync: true},
		{Count: 2, Digest: DigestOf(cs[0].ID, cs[1].ID).XOR, Commits: []json.RawMessage{raw1}, More: true, Filter: flt},
		{Count: 1, Digest: d.XOR, Filter: flt},
	} {
		b, _ := json.Marshal(r)
		resps = append(resps, b)
	}
	// Every message of the version 2 and 3 vectors.
	for _, path := range []string{v2VectorsPath, v3VectorsPath} {
		b, err := os.ReadFile(path)
		if err != nil {
			continue
		}
		var v v2File
		if err := json.Unmarshal(b, &v); err != nil {
			tb.Fatal(err)
		}
		for _, h := range v.Heals {
			for _, r := range h.Rounds {
				reqs, resps = append(reqs, r.Request), append(resps, r.Response)
			}
		}
	}
	return reqs, resps
}

// FuzzDecodeRequest decodes request bodies and answers the ones that
// decode: neither may panic, and an accepted request re-encodes stably.
func FuzzDecodeRequest(f *testing.F) {
	reqs, _ := roundSeeds(f)
	for _, b := range reqs {
		f.Add(b)
	}
	f.Add([]byte(`{"count":1,"digest":"` + strings.Repeat("0", 64) + `","limit":1e3}`))
	cs := makeCommits(f, "srv", 1, 5, 2)
	f.Fuzz(func(t *testing.T, in []byte) {
		req, err := DecodeRequest(in)
		if err != nil {
			if !errors.Is(err, core.ErrInvalid) && !errors.Is(err, core.ErrTooLarge) {
				t.Fatalf("err=%v, want ErrInvalid or ErrTooLarge", err)
			}
			return
		}
		b1, _ := json.Marshal(req)
		req2, err := DecodeRequest(b1)
		if err != nil {
			t.Fatalf("re-decoding %s: %v", b1, err)
		}
		if b2, _ := json.Marshal(req2); !bytes.Equal(b1, b2) {
			t.Fatalf("not stable:\n%s\n%s", b1, b2)
		}
		set := newMemSet(nil, cs)
		if _, err := (&Server{Rand: seededRand(1), Limit: 3}).Answer(set, req); err != nil {
			t.Fatalf("Answer(%s): %v", b1, err)
		}
	})
}

// FuzzDecodeResponse decodes response bodies and folds in the ones that
// decode.
func FuzzDecodeResponse(f *testing.F) {
	_, resps := roundSeeds(f)
	for _, b := range resps {
		f.Add(b)
	}
	cs := makeCommits(f, "cli", 1, 5, 2)
	f.Fuzz(func(t *testing.T, in []byte) {
		resp, err := DecodeResponse(in)
		if err != nil {
			if !errors.Is(err, core.ErrInvalid) {
				t.Fatalf("err=%v, want ErrInvalid", err)
			}
			return
		}
		b1, _ := json.Marshal(resp)
		resp2, err := DecodeResponse(b1)
		if err != nil {
			t.Fatalf("re-decoding %s: %v", b1, err)
		}
		if b2, _ := json.Marshal(resp2); !bytes.Equal(b1, b2) {
			t.Fatalf("not stable:\n%s\n%s", b1, b2)
		}
		local := newMemSet(nil, cs)
		c := &Client{Rand: seededRand(1), PushLimit: 2}
		c.Start(local)
		if _, _, err := c.Next(local, resp); err != nil {
			t.Fatalf("Next(%s): %v", b1, err)
		}
	})
}

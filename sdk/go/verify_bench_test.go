package goat

import (
	"crypto/ed25519"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/goat-gateway/goat-gateway/core"
)

// benchCommits returns n commits of one author (whose record, signed by
// root, the client holds) in pages of a log's size.
func benchVerifier(b *testing.B, n int) (*Repo, [][]*core.Commit) {
	b.Helper()
	c, err := Open(Config{
		URL: "http://127.0.0.1:1", Token: "x.eyJzdWIiOiJ0In0.x", NoSync: true,
		ReconnectMin: time.Second, ReconnectMax: time.Minute, Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close() })
	rootPub, root, _ := ed25519.GenerateKey(nil)
	pub, key, _ := ed25519.GenerateKey(nil)
	rec := core.SessionRecord{ID: core.SessionID(pub), Owner: "alice", Roles: []string{}, PublicKey: pub, Expires: time.Now().Add(time.Hour).Truncate(time.Millisecond)}
	sb, _ := rec.SigningBytes()
	rec.RootSig = ed25519.Sign(root, sb)
	raw, _ := rec.MarshalJSON()
	roots := []ed25519.PublicKey{rootPub}
	c.trust.setRoots(roots)
	if err := c.trust.add(rec, raw, roots); err != nil {
		b.Fatal(err)
	}
	r, err := c.Repo("bench")
	if err != nil {
		b.Fatal(err)
	}
	var pages [][]*core.Commit
	ts := time.Now().UnixMilli()
	for i := range n {
		if i%1000 == 0 {
			pages = append(pages, nil)
		}
		cm := &core.Commit{Repo: "bench", Key: fmt.Sprintf("k%d", i), Author: rec.ID, TS: ts, Schema: core.AnySchema, Data: map[string]any{"n": float64(i)}}
		if err := cm.Sign(key); err != nil {
			b.Fatal(err)
		}
		pages[len(pages)-1] = append(pages[len(pages)-1], cm)
	}
	return r, pages
}

// BenchmarkVerify measures what the chain of trust costs a client: per
// commit (ns/op is per commit), signatures checked on every core in log
// pages of 1000 as a clone receives them, the author's record held. The
// "clone100k" case reports the whole check of a 100k-commit clone.
func BenchmarkVerify(b *testing.B) {
	// The floor: one Ed25519 verification on one core, for scale.
	b.Run("ed25519", func(b *testing.B) {
		pub, key, _ := ed25519.GenerateKey(nil)
		msg := make([]byte, 32)
		sig := ed25519.Sign(key, msg)
		for range b.N {
			if !ed25519.Verify(pub, msg, sig) {
				b.Fatal("bad")
			}
		}
	})
	b.Run("perCommit", func(b *testing.B) {
		r, pages := benchVerifier(b, 10_000)
		b.ResetTimer()
		for i := 0; i < b.N; {
			for _, p := range pages {
				if _, err := r.verifyReceived(b.Context(), p); err != nil {
					b.Fatal(err)
				}
				i += len(p)
				if i >= b.N {
					break
				}
			}
		}
	})
	b.Run("clone100k", func(b *testing.B) {
		r, pages := benchVerifier(b, 100_000)
		b.ResetTimer()
		for range b.N {
			for _, p := range pages {
				if _, err := r.verifyReceived(b.Context(), p); err != nil {
					b.Fatal(err)
				}
			}
		}
		b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/clone")
	})
}

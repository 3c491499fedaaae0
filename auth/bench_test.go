package auth

import (
	"context"
	"testing"
	"time"
)

func BenchmarkVerifier_Verify(b *testing.B) {
	f := newFixture(b)
	for _, c := range []struct {
		name  string
		token string
	}{{"EdDSA", f.devTok().sign(b)}, {"RS256", f.rsaTok().sign(b)}, {"ES256", f.ecTok().sign(b)}} {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				if _, err := f.v.Verify(context.Background(), c.token, t0); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkVerifyCommit(b *testing.B) {
	w := newCommitWorld(b)
	c := w.commit(b, "user.alice.notes", "alice", t0.Add(time.Minute), "")
	now := t0.Add(2 * time.Minute)
	for b.Loop() {
		if err := VerifyCommit(c, w.sessions, now, w.rules.CanWrite); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRules_CanRead(b *testing.B) {
	rules, err := ParseRules([]byte(accessRules))
	if err != nil {
		b.Fatal(err)
	}
	p := Principal{Sub: "alice", Roles: []string{"editor"}}
	for b.Loop() {
		rules.CanRead(p, "team.eng.some.long.repository.name")
	}
}

package auth

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// uncached is a verifier like f.v without a token cache: the oracle the
// cache must agree with.
func (f *fixture) uncached(tb testing.TB) *Verifier {
	tb.Helper()
	cfg := f.cfg
	cfg.CacheSize = -1
	v, err := NewVerifier(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	if v.cache != nil {
		tb.Fatal("CacheSize -1 still caches")
	}
	return v
}

func TestVerifier_Cache(t *testing.T) {
	ctx := context.Background()

	t.Run("AgreesWithAnUncachedVerifier", func(t *testing.T) {
		f := newFixture(t)
		oracle := f.uncached(t)
		leeway := DefaultLeeway
		tokens := []string{
			f.devTok().sign(t),
			f.rsaTok().sign(t),
			f.ecTok().sign(t),
			with(f.devTok(), func(k *tok) { k.exp = t0.Add(time.Minute) }).sign(t),
			with(f.devTok(), func(k *tok) { k.exp = t0.Add(-10 * time.Second) }).sign(t),
			with(f.devTok(), func(k *tok) { k.nbf = t0.Add(time.Minute) }).sign(t),
			with(f.devTok(), func(k *tok) { k.iat = t0.Add(2 * time.Minute) }).sign(t),
			with(f.devTok(), func(k *tok) { k.aud = "api-rsa" }).sign(t),
			with(f.devTok(), func(k *tok) { k.key = newEd25519(t) }).sign(t), // forged
			with(f.devTok(), func(k *tok) { k.roles = []string{"editor"} }).sign(t),
		}
		rng := rand.New(rand.NewPCG(19, 19))
		// Instants around every boundary of the tokens above, visited in
		// random order (the clock may also go back).
		var instants []time.Time
		for _, d := range []time.Duration{-3 * time.Minute, -leeway - time.Second, 0, time.Minute, time.Minute + leeway - time.Second, time.Minute + leeway + time.Second, 2 * time.Minute, time.Hour - time.Second, time.Hour, time.Hour + leeway - time.Second, time.Hour + leeway, time.Hour + leeway + time.Second, 2 * time.Hour} {
			instants = append(instants, t0.Add(d))
		}
		accepted := 0
		for i := range 3000 {
			token := tokens[rng.IntN(len(tokens))]
			at := instants[rng.IntN(len(instants))].Add(time.Duration(rng.IntN(2000)-1000) * time.Millisecond)
			got, gotErr := f.v.Verify(ctx, token, at)
			want, wantErr := oracle.Verify(ctx, token, at)
			if (gotErr == nil) != (wantErr == nil) {
				t.Fatalf("step %d, token %d at %s: cached err=%v, uncached err=%v", i, slices.Index(tokens, token), at, gotErr, wantErr)
			}
			if gotErr == nil {
				accepted++
				if fmt.Sprint(got) != fmt.Sprint(want) || !got.Expires.Equal(want.Expires) {
					t.Fatalf("step %d: cached principal %+v, uncached %+v", i, got, want)
				}
			}
		}
		if accepted == 0 || accepted == 3000 {
			t.Fatalf("%d of 3000 verifications accepted: the walk does not cross the boundaries", accepted)
		}
	})

	t.Run("AHitIsNotVerifiedAgain", func(t *testing.T) {
		f := newFixture(t)
		token := f.rsaTok().sign(t)
		if _, err := f.v.Verify(ctx, token, t0); err != nil {
			t.Fatal(err)
		}
		// Take the issuer's keys away: only the cache can accept now.
		is := f.v.issuers[rsaIss]
		keys := is.static
		is.static = nil
		p, err := f.v.Verify(ctx, token, t0.Add(time.Minute))
		if err != nil {
			t.Fatalf("second Verify of the same token: %v, want it answered from the cache", err)
		}
		if p.Sub != "bob" {
			t.Fatalf("cached principal %+v", p)
		}
		if _, err := f.v.Verify(ctx, with(f.rsaTok(), func(k *tok) { k.sub = "dave" }).sign(t), t0); err == nil {
			t.Fatal("a token never verified was accepted without keys")
		}
		is.static = keys
	})

	t.Run("ExpiredTokenRefusedThoughCached", func(t *testing.T) {
		f := newFixture(t)
		token := f.devTok().sign(t) // exp t0+1h
		if _, err := f.v.Verify(ctx, token, t0); err != nil {
			t.Fatal(err)
		}
		if _, err := f.v.Verify(ctx, token, t0.Add(time.Hour+DefaultLeeway/2)); err != nil {
			t.Fatalf("within the leeway after exp: %v, want accepted (as the verifier does)", err)
		}
		if _, err := f.v.Verify(ctx, token, t0.Add(time.Hour+DefaultLeeway+time.Second)); !errors.Is(err, jwt.ErrTokenExpired) {
			t.Fatalf("after exp and leeway: err=%v, want %v", err, jwt.ErrTokenExpired)
		}
	})

	t.Run("NotYetValidRefusedThoughCachedLater", func(t *testing.T) {
		f := newFixture(t)
		token := with(f.devTok(), func(k *tok) { k.nbf = t0 }).sign(t)
		if _, err := f.v.Verify(ctx, token, t0.Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
		if _, err := f.v.Verify(ctx, token, t0.Add(-DefaultLeeway-time.Second)); !errors.Is(err, jwt.ErrTokenNotValidYet) {
			t.Fatalf("before nbf: err=%v, want %v", err, jwt.ErrTokenNotValidYet)
		}
	})

	t.Run("RefusedTokensAreNotCached", func(t *testing.T) {
		f := newFixture(t)
		if _, err := f.v.Verify(ctx, with(f.devTok(), func(k *tok) { k.aud = "api-rsa" }).sign(t), t0); err == nil {
			t.Fatal("wrong audience accepted")
		}
		if got := f.v.cache.len(); got != 0 {
			t.Fatalf("cache holds %d entries after a refusal, want 0", got)
		}
	})

	t.Run("Bounded", func(t *testing.T) {
		f := newFixture(t)
		cfg := f.cfg
		cfg.CacheSize = 8
		v, err := NewVerifier(cfg)
		if err != nil {
			t.Fatal(err)
		}
		for i := range 50 {
			if _, err := v.Verify(ctx, with(f.devTok(), func(k *tok) { k.sub = fmt.Sprint("user", i) }).sign(t), t0); err != nil {
				t.Fatal(err)
			}
			if got := v.cache.len(); got > 8 {
				t.Fatalf("cache holds %d entries, more than its size 8", got)
			}
		}
	})

	t.Run("CallersCannotChangeTheCachedPrincipal", func(t *testing.T) {
		f := newFixture(t)
		token := with(f.devTok(), func(k *tok) { k.roles = []string{"editor"} }).sign(t)
		p, err := f.v.Verify(ctx, token, t0)
		if err != nil {
			t.Fatal(err)
		}
		p.Roles[0] = "admin"
		p, err = f.v.Verify(ctx, token, t0)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(p.Roles, []string{"editor"}) {
			t.Fatalf("roles %v after a caller changed its copy, want [editor]", p.Roles)
		}
	})
}

package cluster

import (
	"context"
	"crypto/ed25519"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/goat-gateway/goat-gateway/auth"
	"github.com/goat-gateway/goat-gateway/core"
)

func TestMintNodeToken_Verify(t *testing.T) {
	now := time.Now()
	key, err := LoadNodeKey(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	_, other, _ := ed25519.GenerateKey(nil)
	dev := auth.NewDevIssuer(key) // the same key, as the dev issuer
	devTok, err := dev.Mint("node.x", []string{auth.NodeRole}, time.Hour, now)
	if err != nil {
		t.Fatal(err)
	}
	nodeTok, err := MintNodeToken(key, "node.x", time.Minute, now)
	if err != nil {
		t.Fatal(err)
	}
	forged, _ := MintNodeToken(other, "node.x", time.Minute, now)
	v, err := auth.NewVerifier(auth.VerifierConfig{Issuers: []auth.IssuerConfig{NodeIssuer(key), dev.IssuerConfig()}})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name     string
		token    string
		at       time.Time
		wantNode bool
		wantErr  error
	}{
		{"NodeToken", nodeTok, now, true, nil},
		{"DevTokenWithNodeRoleIsNoNode", devTok, now, false, nil},
		{"OtherKey", forged, now, false, core.ErrUnauthenticated},
		{"Expired", nodeTok, now.Add(time.Hour), false, core.ErrUnauthenticated},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := v.Verify(context.Background(), tc.token, tc.at)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("err=%v, want %v", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := p.Node; got != tc.wantNode {
				t.Fatalf("Node=%v, want %v", got, tc.wantNode)
			}
		})
	}
}

func TestLoadNodeKey_SharedDirectoryAgrees(t *testing.T) {
	dir := t.TempDir()
	keys := make(chan ed25519.PrivateKey, 8)
	for range cap(keys) {
		go func() {
			k, err := LoadNodeKey(dir)
			if err != nil {
				t.Error(err)
			}
			keys <- k
		}()
	}
	first := <-keys
	for range cap(keys) - 1 {
		if k := <-keys; !first.Equal(k) {
			t.Fatal("concurrent first starts made different keys")
		}
	}
}

func TestTokenSources(t *testing.T) {
	key, _ := LoadNodeKey(t.TempDir())
	now := time.Unix(1_800_000_000, 0)
	m := &mintedToken{key: key, sub: func() string { return "node.a" }, now: func() time.Time { return now }}
	t1, err := m.Token(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if t2, _ := m.Token(context.Background()); t2 != t1 {
		t.Error("token minted again while fresh")
	}
	now = now.Add(nodeTokenTTL/2 + time.Second)
	if t3, _ := m.Token(context.Background()); t3 == t1 {
		t.Error("token not minted again at half its life")
	}

	path := filepath.Join(t.TempDir(), "token")
	f := fileToken(path)
	if _, err := f.Token(context.Background()); err == nil {
		t.Error("missing file: no error")
	}
	for _, tc := range []struct{ content, want string }{{"abc\n", "abc"}, {"  rotated  ", "rotated"}} {
		if err := os.WriteFile(path, []byte(tc.content), 0o600); err != nil {
			t.Fatal(err)
		}
		if got, err := f.Token(context.Background()); err != nil || got != tc.want {
			t.Errorf("file %q: %q, %v, want %q", tc.content, got, err, tc.want)
		}
	}
	if err := os.WriteFile(path, []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Token(context.Background()); err == nil {
		t.Error("empty file: no error")
	}
}

func TestNew_Config(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		ok   bool
	}{
		{"Alone", Config{}, true},
		{"PeersWithoutCredentials", Config{Peers: []string{"http://b:8080"}}, false},
		{"PeersWithToken", Config{Peers: []string{"http://b:8080", "http://b:8080/"}, NodeToken: "t"}, true},
		{"BadPeer", Config{Peers: []string{"b:8080"}, NodeToken: "t"}, false},
		{"PeerWithQuery", Config{Peers: []string{"http://b:8080/?x=1"}, NodeToken: "t"}, false},
		{"PeerWithUser", Config{Peers: []string{"http://u:p@b:8080"}, NodeToken: "t"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n, err := New(tc.cfg)
			if (err == nil) != tc.ok {
				t.Fatalf("err=%v, want ok=%v", err, tc.ok)
			}
			if err == nil && tc.name == "PeersWithToken" && len(n.peers) != 1 {
				t.Fatalf("%d peers, want the duplicate merged", len(n.peers))
			}
		})
	}
}

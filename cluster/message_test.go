package cluster

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/goat-gateway/goat-gateway/core"
)

func TestSubject_RoundTrip(t *testing.T) {
	for _, tc := range []struct{ repo, subject string }{
		{"notes", "goat.commits.notes"},
		{"sys.sessions", "goat.commits.sys.sessions"},
		{"a.b-c_d", "goat.commits.a.b-c_d"},
		{"trailing.", "goat.commits.trailing.~"},
	} {
		t.Run(tc.repo, func(t *testing.T) {
			if got := Subject(tc.repo); got != tc.subject {
				t.Fatalf("Subject(%q)=%q, want %q", tc.repo, got, tc.subject)
			}
			if got, err := RepoOfSubject(tc.subject); err != nil || got != tc.repo {
				t.Fatalf("RepoOfSubject(%q)=%q, %v, want %q", tc.subject, got, err, tc.repo)
			}
		})
	}
	for _, bad := range []string{"goat.commits.", "other.notes", "goat.commits.a..b", "goat.commits.UPPER"} {
		if _, err := RepoOfSubject(bad); !errors.Is(err, core.ErrInvalid) {
			t.Errorf("RepoOfSubject(%q): %v, want ErrInvalid", bad, err)
		}
	}
}

// signed returns n signed commits of repo, a chain on one key.
func signed(tb testing.TB, repo string, n int) []*core.Commit {
	tb.Helper()
	priv := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, ed25519.SeedSize))
	var out []*core.Commit
	var parents []core.CommitID
	for i := range n {
		c := &core.Commit{Repo: repo, Key: "k", Parents: parents, Author: "s1", TS: int64(i), Schema: core.AnySchema, Data: map[string]any{"i": float64(i)}}
		if err := c.Sign(priv); err != nil {
			tb.Fatal(err)
		}
		parents = []core.CommitID{c.ID}
		out = append(out, c)
	}
	return out
}

func raws(tb testing.TB, cs []*core.Commit) []json.RawMessage {
	tb.Helper()
	out := make([]json.RawMessage, len(cs))
	for i, c := range cs {
		b, err := c.MarshalJSON()
		if err != nil {
			tb.Fatal(err)
		}
		out[i] = b
	}
	return out
}

func TestDecodeMessage(t *testing.T) {
	cs := signed(t, "notes", 2)
	good := AppendMessage(nil, Message{Node: "n1", Repo: "notes", Commits: raws(t, cs)})
	other := signed(t, "other", 1)
	tampered := bytes.Replace(good, []byte(`"i":1`), []byte(`"i":2`), 1)
	for _, tc := range []struct {
		name    string
		subject string
		body    string
		want    error // nil: decodes
		commits int
	}{
		{"Good", "goat.commits.notes", string(good), nil, 2},
		{"Announcement", "goat.commits.notes", `{"node":"n1","repo":"notes","commits":[]}`, nil, 0},
		{"SubjectOfAnotherRepo", "goat.commits.other", string(good), core.ErrInvalid, 0},
		{"CommitOfAnotherRepo", "goat.commits.notes", string(AppendMessage(nil, Message{Node: "n", Repo: "notes", Commits: raws(t, other)})), core.ErrInvalid, 0},
		{"TamperedCommit", "goat.commits.notes", string(tampered), core.ErrInvalid, 0},
		{"UnknownMemberIgnored", "goat.commits.notes", `{"node":"n","repo":"notes","commits":[],"x":1}`, nil, 0},
		{"MissingNode", "goat.commits.notes", `{"repo":"notes","commits":[]}`, core.ErrInvalid, 0},
		{"NullCommits", "goat.commits.notes", `{"node":"n","repo":"notes","commits":null}`, core.ErrInvalid, 0},
		{"TrailingData", "goat.commits.notes", `{"node":"n","repo":"notes","commits":[]} {}`, core.ErrInvalid, 0},
		{"NotJSON", "goat.commits.notes", `nope`, core.ErrInvalid, 0},
		{"CommitNotObject", "goat.commits.notes", `{"node":"n","repo":"notes","commits":[1]}`, core.ErrInvalid, 0},
		{"TooMany", "goat.commits.notes", `{"node":"n","repo":"notes","commits":[` + strings.Repeat(`{},`, MaxMessageCommits) + `{}]}`, core.ErrTooLarge, 0},
		{"BadSubject", "elsewhere", string(good), core.ErrInvalid, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			repo, got, err := DecodeMessage(tc.subject, []byte(tc.body))
			if tc.want != nil {
				if !errors.Is(err, tc.want) {
					t.Fatalf("err=%v, want %v", err, tc.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if repo != "notes" || len(got) != tc.commits {
				t.Fatalf("repo=%q commits=%d, want notes and %d", repo, len(got), tc.commits)
			}
			for i, c := range got {
				if c.ID != cs[i].ID {
					t.Fatalf("commit %d: %s, want %s", i, c.ID, cs[i].ID)
				}
			}
		})
	}
}

// splitMessages against a naive oracle: every commit that fits travels,
// in order, in messages within both limits, which decode back.
func TestSplitMessages_Oracle(t *testing.T) {
	all := raws(t, signed(t, "r", 60))
	rng := rand.New(rand.NewPCG(7, 7))
	for iter := range 200 {
		n := rng.IntN(len(all) + 1)
		in := all[:n]
		maxBytes := 100 + rng.IntN(3*len(all[0])+400)
		msgs, skipped := splitMessages("node", "r", in, maxBytes)
		var want []json.RawMessage
		for _, c := range in {
			if len(c)+messageOverhead+len("node")+len("r")+8 <= maxBytes {
				want = append(want, c)
			}
		}
		if got := len(in) - len(want); skipped != got {
			t.Fatalf("iter %d: skipped %d, want %d", iter, skipped, got)
		}
		var got []json.RawMessage
		for _, m := range msgs {
			if len(m) > maxBytes {
				t.Fatalf("iter %d: message of %d bytes, limit %d", iter, len(m), maxBytes)
			}
			_, cs, err := DecodeMessage("goat.commits.r", m)
			if err != nil {
				t.Fatalf("iter %d: %v", iter, err)
			}
			if len(cs) == 0 || len(cs) > MaxMessageCommits {
				t.Fatalf("iter %d: message with %d commits", iter, len(cs))
			}
			got = append(got, raws(t, cs)...)
		}
		if len(got) != len(want) {
			t.Fatalf("iter %d: %d commits travel, want %d", iter, len(got), len(want))
		}
		for i := range got {
			if !bytes.Equal(got[i], want[i]) {
				t.Fatalf("iter %d: commit %d differs or out of order", iter, i)
			}
		}
	}
}

func TestSplitMessages_CommitLimit(t *testing.T) {
	c := raws(t, signed(t, "r", 1))[0]
	in := make([]json.RawMessage, 2*MaxMessageCommits+1)
	for i := range in {
		in[i] = c
	}
	msgs, skipped := splitMessages("n", "r", in, 64<<20)
	if skipped != 0 || len(msgs) != 3 {
		t.Fatalf("%d messages, %d skipped, want 3 and 0", len(msgs), skipped)
	}
}

func FuzzDecodeMessage(f *testing.F) {
	cs := signed(f, "notes", 2)
	f.Add("goat.commits.notes", AppendMessage(nil, Message{Node: "n1", Repo: "notes", Commits: raws(f, cs)}))
	f.Add("goat.commits.notes", []byte(`{"node":"n1","repo":"notes","commits":[]}`))
	f.Add("goat.commits.a.~", []byte(`{"node":"","repo":"a.","commits":[{}]}`))
	f.Add("goat.commits.x", []byte(`{"node":1}`))
	f.Fuzz(func(t *testing.T, subject string, b []byte) {
		repo, commits, err := DecodeMessage(subject, b)
		if err != nil {
			if !errors.Is(err, core.ErrInvalid) && !errors.Is(err, core.ErrTooLarge) && !errors.Is(err, core.ErrBadSignature) && !errors.Is(err, core.ErrSchema) {
				t.Fatalf("error wraps no sentinel: %v", err)
			}
			return
		}
		if Subject(repo) != subject {
			t.Fatalf("repo %q from subject %q", repo, subject)
		}
		// What decodes re-encodes to a message that decodes the same.
		again, commits2, err := DecodeMessage(subject, AppendMessage(nil, Message{Node: "x", Repo: repo, Commits: raws(t, commits)}))
		if err != nil || again != repo || len(commits2) != len(commits) {
			t.Fatalf("re-encoded message: %v", err)
		}
		for i := range commits {
			if commits[i].ID != commits2[i].ID || commits[i].Repo != repo {
				t.Fatalf("commit %d changed", i)
			}
		}
	})
}

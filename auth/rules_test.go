package auth

import (
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/goat-gateway/goat-gateway/core"
)

var randN = flag.Int("auth.n", 20000, "iterations of the randomized rules tests")

func TestParseRules_Errors(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		line int
		want string // a fragment of the message
	}{
		{"Syntax", "rules: [\n", 1, "yaml"},
		{"UnknownTopLevelKey", "rulez: []\n", 1, `unknown key "rulez"`},
		{"RulesNotAList", "rules: {}\n", 1, "must be a list"},
		{"UnknownRuleKey", "rules:\n  - repos: a.*\n    reads: ['*']\n", 3, `unknown key "reads"`},
		{"NoRepos", "rules:\n  - read: ['*']\n", 2, "no repos"},
		{"ReposNotAString", "rules:\n  - repos: [a]\n    read: ['*']\n", 2, "string pattern"},
		{"ReposANumber", "rules:\n  - repos: 12\n    read: ['*']\n", 2, "string pattern"},
		{"SystemPattern", "rules:\n  - repos: sys.*\n    read: ['*']\n", 2, "fixed rules"},
		{"SubNotAWholeSegment", "rules:\n  - repos: user.{sub}x.*\n    read: ['{sub}']\n", 2, "whole dot-separated segment"},
		{"UnknownPlaceholder", "rules:\n  - repos: user.{id}.*\n    read: ['*']\n", 2, "{sub}"},
		{"UpperCase", "rules:\n  - repos: User.*\n    read: ['*']\n", 2, "only a-z"},
		{"DoubleStar", "rules:\n  - repos: a.**\n    read: ['*']\n", 2, `"**"`},
		{"EmptySegment", "rules:\n  - repos: a..b\n    read: ['*']\n", 2, "empty segment"},
		{"UnknownPrincipal", "rules:\n  - repos: a.*\n    read:\n      - alice\n", 4, "sub:NAME"},
		{"SelfWithoutSubInPattern", "rules:\n  - repos: a.*\n    read: ['{sub}']\n", 3, "needs {sub}"},
		{"AnonymousWrite", "rules:\n  - repos: a.*\n    write: ['*']\n", 3, "authenticated"},
		{"EmptyRole", "rules:\n  - repos: a.*\n    read: ['role:']\n", 3, "role"},
		{"PrincipalNotAString", "rules:\n  - repos: a.*\n    read: [5]\n", 3, "principals are strings"},
		{"ReadNotAList", "rules:\n  - repos: a.*\n    read: '*'\n", 3, "must be a list"},
		{"GrantsNothing", "rules:\n  - repos: a.*\n", 2, "grants nothing"},
		{"Alias", "x: &p ['*']\nrules:\n  - repos: a.*\n    read: *p\n", 1, "unknown key"},
		{"AliasInRule", "rules:\n  - &r {repos: a.*, read: ['*']}\n  - *r\n", 3, "aliases"},
		{"DuplicateKey", "rules:\n  - repos: a.*\n    repos: b.*\n    read: ['*']\n", 3, "twice"},
		{"TwoDocuments", "rules: []\n---\nrules: []\n", 0, "single YAML document"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseRules([]byte(tt.yaml))
			if !errors.Is(err, core.ErrInvalid) {
				t.Fatalf("err=%v, want ErrInvalid", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err=%q, want it to mention %q", err, tt.want)
			}
			if tt.line > 0 && !strings.Contains(err.Error(), fmt.Sprintf("line %d", tt.line)) {
				t.Fatalf("err=%q, want it to name line %d", err, tt.line)
			}
		})
	}
	t.Run("TooLarge", func(t *testing.T) {
		if _, err := ParseRules(make([]byte, MaxRulesBytes+1)); !errors.Is(err, core.ErrTooLarge) {
			t.Fatalf("err=%v, want ErrTooLarge", err)
		}
	})
}

func TestParseRules_Empty(t *testing.T) {
	for _, src := range []string{"", "\n# nothing\n", "rules:\n", "rules: []\n", "~\n"} {
		r, err := ParseRules([]byte(src))
		if err != nil {
			t.Fatalf("ParseRules(%q): %v", src, err)
		}
		if r.CanRead(Principal{Sub: "alice"}, "public.x") {
			t.Fatalf("ParseRules(%q) allows something: want default deny", src)
		}
	}
}

func TestLoadRules(t *testing.T) {
	path := filepath.Join(t.TempDir(), "rules.yaml")
	if err := os.WriteFile(path, []byte("rules:\n  - repos: a.*\n    read: [nobody]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadRules(path); err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "line 3") {
		t.Fatalf("err=%v, want the path and line 3", err)
	}
}

const accessRules = exampleRules + `
  - repos: "user.*"
    read: ["role:admin"]
  - repos: "team.eng.*"
    read: ["authenticated"]
    write: ["sub:bob", "role:eng"]
  - repos: "feedback.*"
    write: ["authenticated"]
    read: ["role:admin"]
  - repos: "*"
    read: ["role:auditor"]
  - repos: "mesh.*"
    read: ["node"]
`

func TestRules_Access(t *testing.T) {
	rules, err := ParseRules([]byte(accessRules))
	if err != nil {
		t.Fatal(err)
	}
	user := func(sub string, roles ...string) Principal { return Principal{Sub: sub, Roles: roles, Issuer: "i"} }
	node := Principal{Sub: "node:s_x", Node: true}
	tests := []struct {
		name        string
		r           *Rules
		p           Principal
		repo        string
		read, write bool
	}{
		{"OwnNamespace", rules, user("alice"), "user.alice.notes", true, true},
		{"OwnNamespaceDeeper", rules, user("alice"), "user.alice.x.notes", true, true},
		{"NamespaceRootItself", rules, user("alice"), "user.alice", false, false},
		{"NamespaceTrailingDot", rules, user("alice"), "user.alice.", false, false},
		{"OtherUsersNamespace", rules, user("alice"), "user.bob.notes", false, false},
		{"DottedSubCannotReachIn", rules, user("alice.x"), "user.alice.x.notes", false, false},
		{"DottedSubCannotReachParent", rules, user("alice.x"), "user.alice.notes", false, false},
		{"UpperCaseSubNotFolded", rules, user("Alice"), "user.alice.notes", false, false},
		{"GlobInSubIsNotAGlob", rules, user("a*"), "user.ab.notes", false, false},
		{"SubWithSlash", rules, user("alice/../bob"), "user.bob.notes", false, false},
		{"EmptySubIsNotAnyone", rules, user(""), "user..notes", false, false},
		{"AnonymousNoNamespace", rules, Anonymous(), "user.alice.notes", false, false},
		{"AnonymousReadsPublic", rules, Anonymous(), "public.news", true, false},
		{"ZeroPrincipalReadsPublic", rules, Principal{}, "public.news", true, false},
		{"PublicNeedsEditorToWrite", rules, user("alice"), "public.news", true, false},
		{"EditorWritesPublic", rules, user("ed", "editor"), "public.news", true, true},
		{"PublicPrefixOnly", rules, user("ed", "editor"), "public", false, false},
		{"NotAPrefixMatch", rules, user("ed", "editor"), "publicity.x", false, false},
		{"AdminReadsEveryNamespace", rules, user("root", "admin"), "user.bob.notes", true, false},
		{"LiteralSubWrites", rules, user("bob"), "team.eng.plan", true, true},
		{"RoleWrites", rules, user("eve", "eng"), "team.eng.plan", true, true},
		{"AuthenticatedOnlyReads", rules, user("carol"), "team.eng.plan", true, false},
		{"AnonymousNotAuthenticated", rules, Anonymous(), "team.eng.plan", false, false},
		{"WriteDoesNotImplyRead", rules, user("alice"), "feedback.app", false, true},
		{"DropBoxReadByAdmin", rules, user("root", "admin"), "feedback.app", true, true},
		{"StarPatternSkipsSystem", rules, user("aud", "auditor"), "sys.audit", false, false},
		{"StarPatternMatchesOthers", rules, user("aud", "auditor"), "anything.at.all", true, false},
		{"NodeMatchesNodePrincipal", rules, node, "mesh.x", true, true},
		{"UserIsNotNode", rules, user("node"), "mesh.x", false, false},
		{"InvalidRepoName", rules, node, "User.x", false, false},
		{"DotDotRepoName", rules, user("ed", "editor"), "public..x", false, false},

		{"SessionsReadableByAuthenticated", rules, user("alice"), SessionsRepo, true, false},
		{"SessionsNotByAnonymous", rules, Anonymous(), SessionsRepo, false, false},
		{"SessionsNotWritableByAdmin", rules, user("root", "admin"), SessionsRepo, true, false},
		{"SessionsWritableByNode", rules, node, SessionsRepo, true, true},
		{"SchemasReadableByAuthenticated", rules, user("alice"), SchemasRepo, true, false},
		{"SchemasWritableByAdmin", rules, user("root", "admin"), SchemasRepo, true, true},
		{"SchemasNotByAnonymous", rules, Anonymous(), SchemasRepo, false, false},
		{"OtherSystemRepoAdminReads", rules, user("root", "admin"), "sys.audit", true, false},
		{"OtherSystemRepoHidden", rules, user("alice"), "sys.audit", false, false},
		{"BareSys", rules, user("alice"), "sys", false, false},

		{"DevAuthenticatedEverything", DevRules(), user("alice"), "anything", true, true},
		{"DevAnonymousNothing", DevRules(), Anonymous(), "anything", false, false},
		{"DevSystemRulesStand", DevRules(), user("alice"), SessionsRepo, true, false},
		{"DevSchemasNeedAdmin", DevRules(), user("alice"), SchemasRepo, true, false},
		{"NilRulesDeny", nil, user("alice"), "anything", false, false},
		{"NilRulesNode", nil, node, "anything", true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got, want := tt.r.CanRead(tt.p, tt.repo), tt.read; got != want {
				t.Fatalf("CanRead(%v, %q)=%v, want %v", tt.p, tt.repo, got, want)
			}
			if got, want := tt.r.CanWrite(tt.p, tt.repo), tt.write; got != want {
				t.Fatalf("CanWrite(%v, %q)=%v, want %v", tt.p, tt.repo, got, want)
			}
		})
	}
}

func TestRules_Authorize(t *testing.T) {
	rules, err := ParseRules([]byte(accessRules))
	if err != nil {
		t.Fatal(err)
	}
	alice := Principal{Sub: "alice"}
	tests := []struct {
		name    string
		p       Principal
		repo    string
		write   bool
		wantErr error
	}{
		{"ReadAllowed", alice, "user.alice.notes", false, nil},
		{"WriteAllowed", alice, "user.alice.notes", true, nil},
		{"UnreadableIsNotFound", alice, "user.bob.notes", false, core.ErrNotFound},
		{"UnreadableWriteIsNotFound", alice, "user.bob.notes", true, core.ErrNotFound},
		{"ReadableWriteIsForbidden", alice, "public.news", true, core.ErrForbidden},
		{"AnonymousWriteIsForbidden", Anonymous(), "public.news", true, core.ErrForbidden},
		{"DropBoxWrite", alice, "feedback.app", true, nil},
		{"DropBoxReadIsNotFound", alice, "feedback.app", false, core.ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := rules.Authorize(tt.p, tt.repo, tt.write)
			if tt.wantErr == nil && err != nil || tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Fatalf("Authorize err=%v, want %v", err, tt.wantErr)
			}
		})
	}
}

// TestGlob checks glob against regexp on random patterns and names.
func TestGlob(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	str := func(alphabet string, max int) string {
		b := make([]byte, rng.IntN(max+1))
		for i := range b {
			b[i] = alphabet[rng.IntN(len(alphabet))]
		}
		return string(b)
	}
	for range *randN {
		pat, name := str("ab.*", 8), str("ab.", 10)
		re := "^"
		for _, c := range pat {
			if c == '*' {
				re += ".+"
			} else {
				re += regexp.QuoteMeta(string(c))
			}
		}
		want := regexp.MustCompile(re + "$").MatchString(name)
		if got := glob(strings.ReplaceAll(pat, "*", "?*"), name); got != want {
			t.Fatalf("glob(%q, %q)=%v, want %v", pat, name, got, want)
		}
	}
}

// TestRules_NamespaceIsolation: under "user.{sub}.*", no repository is ever
// open to two different subjects, whatever characters subjects contain.
func TestRules_NamespaceIsolation(t *testing.T) {
	rules, err := ParseRules([]byte("rules:\n  - repos: user.{sub}.*\n    read: ['{sub}']\n    write: ['{sub}']\n"))
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(3, 4))
	str := func(alphabet string, min, max int) string {
		b := make([]byte, min+rng.IntN(max-min+1))
		for i := range b {
			b[i] = alphabet[rng.IntN(len(alphabet))]
		}
		return string(b)
	}
	const alphabet = "ab.-_*?{}A"
	for range *randN / 4 {
		s1, s2 := str(alphabet, 1, 5), str(alphabet, 1, 5)
		if s1 == s2 {
			continue
		}
		repo := "user." + str("ab.-_", 1, 8)
		r1 := rules.CanRead(Principal{Sub: s1}, repo)
		r2 := rules.CanRead(Principal{Sub: s2}, repo)
		if r1 && r2 {
			t.Fatalf("subjects %q and %q both reach %q", s1, s2, repo)
		}
		if r1 && !strings.HasPrefix(repo, "user."+s1+".") {
			t.Fatalf("subject %q reaches %q outside user.%s.*", s1, repo, s1)
		}
	}
}

func FuzzParseRules(f *testing.F) {
	f.Add(exampleRules)
	f.Add(accessRules)
	f.Add("rules:\n  - repos: a.*\n    read: [nobody]\n")
	f.Add("x: &a [*a]\n")
	f.Add("")
	principals := []Principal{Anonymous(), {Sub: "alice"}, {Sub: "bob", Roles: []string{"editor", "admin"}}, {Sub: "n", Node: true}}
	repos := []string{"user.alice.notes", "public.x", "sys.sessions", "a", "team.eng.plan"}
	f.Fuzz(func(t *testing.T, src string) {
		r, err := ParseRules([]byte(src))
		if err != nil {
			if !errors.Is(err, core.ErrInvalid) && !errors.Is(err, core.ErrTooLarge) {
				t.Fatalf("err=%v wraps neither ErrInvalid nor ErrTooLarge", err)
			}
			return
		}
		for _, p := range principals {
			for _, repo := range repos {
				if r.CanWrite(p, repo) && !p.Authenticated() {
					t.Fatalf("anonymous may write %s", repo)
				}
				if repo == SessionsRepo && r.CanWrite(p, repo) && !p.Node {
					t.Fatalf("%v may write %s", p, repo)
				}
				r.CanRead(p, repo)
			}
		}
	})
}

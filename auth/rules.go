package auth

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/goat-gateway/goat-gateway/core"
)

// Rules decide which repositories a principal may read and write. A rules
// file lists rules; each grants read and/or write on the repositories its
// pattern matches. Grants add up (there is no deny), and what no rule grants
// is denied:
//
//	rules:
//	  - repos: "user.{sub}.*"
//	    read: ["{sub}"]
//	    write: ["{sub}"]
//	  - repos: "public.*"
//	    read: ["*"]
//	    write: ["role:editor"]
//
// Patterns: repository-name characters, "*" for one or more characters of
// any kind (dots included), and "{sub}" for the caller's subject, which must
// be a whole dot-separated segment. A subject is substituted only if it is
// itself a valid segment, ^[a-z0-9][a-z0-9_-]{0,63}$ (no dots): otherwise
// the rule does not apply to that caller. So "user.{sub}.*" gives alice
// exactly user.alice.<anything>, and no subject (say "alice.x") can reach
// into another subject's namespace.
//
// Principals: "*" (anyone, even without a token; read only), "authenticated"
// (any verified token), "{sub}" (the subject substituted into the pattern),
// "sub:NAME" (that subject), "role:NAME" (callers with that role), "node"
// (other gateway nodes).
//
// A rule whose pattern has {sub} applies only to the caller whose own
// subject fills it, whatever its principals; to let admins into every
// namespace, add a rule such as repos: "user.*", read: ["role:admin"].
//
// Read and write are independent: write does not imply read, so a drop box
// ("feedback.*", write by authenticated, read by role:admin) is possible.
//
// System repositories (named "sys" or starting with "sys.") follow fixed
// rules no file can change: sys.sessions is readable by every authenticated
// caller (peers need the public keys to verify commits) and written only by
// nodes; sys.schemas is readable by every authenticated caller and writable
// by role:admin; any other sys.* is readable by role:admin and written only
// by nodes. Nodes may read and write every repository.
type Rules struct {
	rules []rule
	dev   bool
}

type rule struct {
	line   int
	repos  string // compiled: "?" one character, "*" any run, "{sub}" kept
	hasSub bool
	read   []grant
	write  []grant
}

type grantKind int

const (
	grantAnyone grantKind = iota
	grantAuthenticated
	grantSelf
	grantSub
	grantRole
	grantNode
)

type grant struct {
	kind grantKind
	name string
}

// AdminRole may write sys.schemas and read the other system repositories.
const AdminRole = "admin"

// MaxRulesBytes bounds a rules file.
const MaxRulesBytes = 1 << 20

// DevRules lets every authenticated caller read and write every
// non-system repository (--dev, make run). Anonymous callers get nothing.
func DevRules() *Rules { return &Rules{dev: true} }

// LoadRules reads and parses a rules file.
func LoadRules(path string) (*Rules, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	r, err := ParseRules(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return r, nil
}

// ParseRules parses a rules file. Errors wrap core.ErrInvalid and name the
// line.
func ParseRules(b []byte) (*Rules, error) {
	if len(b) > MaxRulesBytes {
		return nil, fmt.Errorf("%w: rules: larger than %d bytes", core.ErrTooLarge, MaxRulesBytes)
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return &Rules{}, nil
		}
		return nil, fmt.Errorf("%w: rules: %v", core.ErrInvalid, err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%w: rules: a single YAML document is expected", core.ErrInvalid)
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 {
		return nil, fmt.Errorf("%w: rules: a single YAML document is expected", core.ErrInvalid)
	}
	top := doc.Content[0]
	if top.Kind == yaml.ScalarNode && top.Tag == "!!null" {
		return &Rules{}, nil
	}
	fields, err := mapping(top, "the top level", "rules")
	if err != nil {
		return nil, err
	}
	r := &Rules{}
	list, ok := fields["rules"]
	if !ok || list.Kind == yaml.ScalarNode && list.Tag == "!!null" {
		return r, nil
	}
	if list.Kind != yaml.SequenceNode {
		return nil, nodeErr(list, "rules must be a list")
	}
	for _, n := range list.Content {
		ru, err := parseRule(n)
		if err != nil {
			return nil, err
		}
		r.rules = append(r.rules, ru)
	}
	return r, nil
}

func nodeErr(n *yaml.Node, format string, args ...any) error {
	return fmt.Errorf("%w: rules line %d: %s", core.ErrInvalid, n.Line, fmt.Sprintf(format, args...))
}

// mapping returns the keys of mapping node n, refusing keys not in allowed,
// duplicates, and aliases (no alias expansion, no billion laughs).
func mapping(n *yaml.Node, what string, allowed ...string) (map[string]*yaml.Node, error) {
	if n.Kind == yaml.AliasNode {
		return nil, nodeErr(n, "YAML aliases are not supported")
	}
	if n.Kind != yaml.MappingNode {
		return nil, nodeErr(n, "%s must be a mapping with keys %s", what, strings.Join(allowed, ", "))
	}
	out := map[string]*yaml.Node{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode || v.Kind == yaml.AliasNode {
			return nil, nodeErr(k, "keys must be plain strings and values not aliases")
		}
		if !slices.Contains(allowed, k.Value) {
			return nil, nodeErr(k, "unknown key %q in %s (allowed: %s)", k.Value, what, strings.Join(allowed, ", "))
		}
		if _, dup := out[k.Value]; dup {
			return nil, nodeErr(k, "key %q appears twice", k.Value)
		}
		out[k.Value] = v
	}
	return out, nil
}

var patternChars = regexp.MustCompile(`^[a-z0-9_.*-]+$`)

func parseRule(n *yaml.Node) (rule, error) {
	fields, err := mapping(n, "a rule", "repos", "read", "write")
	if err != nil {
		return rule{}, err
	}
	ru := rule{line: n.Line}
	pn, ok := fields["repos"]
	if !ok {
		return rule{}, nodeErr(n, "rule has no repos")
	}
	if pn.Kind != yaml.ScalarNode || pn.Tag != "!!str" {
		return rule{}, nodeErr(pn, "repos must be a string pattern")
	}
	if ru.repos, ru.hasSub, err = compilePattern(pn.Value); err != nil {
		return rule{}, nodeErr(pn, "repos %q: %v", pn.Value, err)
	}
	for _, name := range []string{"read", "write"} {
		ln, ok := fields[name]
		if !ok {
			continue
		}
		if ln.Kind != yaml.SequenceNode {
			return rule{}, nodeErr(ln, "%s must be a list of principals, e.g. [\"{sub}\", \"role:editor\"]", name)
		}
		for _, pn := range ln.Content {
			if pn.Kind != yaml.ScalarNode || pn.Tag != "!!str" {
				return rule{}, nodeErr(pn, "%s: principals are strings", name)
			}
			g, err := parseGrant(pn.Value, ru.hasSub, name == "write")
			if err != nil {
				return rule{}, nodeErr(pn, "%s: %v", name, err)
			}
			if name == "read" {
				ru.read = append(ru.read, g)
			} else {
				ru.write = append(ru.write, g)
			}
		}
	}
	if len(ru.read) == 0 && len(ru.write) == 0 {
		return rule{}, nodeErr(n, "rule for %q grants nothing: give read or write", pn.Value)
	}
	return ru, nil
}

// compilePattern checks a repos pattern and rewrites each "*" (one or more
// characters) as "?*" ("?" one character, "*" any run), neither of which
// can occur in a repository name.
func compilePattern(p string) (string, bool, error) {
	if p == "" || len(p) > 256 {
		return "", false, errors.New("must be 1 to 256 characters")
	}
	if p == "sys" || strings.HasPrefix(p, "sys.") {
		return "", false, errors.New("system repositories (sys.*) have fixed rules")
	}
	segs := strings.Split(p, ".")
	hasSub := false
	for _, s := range segs {
		if s == "{sub}" {
			hasSub = true
			continue
		}
		if strings.Contains(s, "{") || strings.Contains(s, "}") {
			return "", false, errors.New(`the only placeholder is {sub}, and it must be a whole dot-separated segment`)
		}
		if s == "" {
			return "", false, errors.New("empty segment (leading, trailing or double dot)")
		}
	}
	plain := strings.ReplaceAll(p, "{sub}", "x")
	if !patternChars.MatchString(plain) {
		return "", false, errors.New(`may contain only a-z 0-9 _ . - * and {sub}`)
	}
	if strings.Contains(p, "**") {
		return "", false, errors.New(`"**" is not supported: "*" already matches across dots`)
	}
	if c := plain[0]; c == '.' || c == '_' || c == '-' {
		return "", false, errors.New("must start like a repository name, with a-z, 0-9, * or {sub}")
	}
	return strings.ReplaceAll(p, "*", "?*"), hasSub, nil
}

func parseGrant(s string, hasSub, write bool) (grant, error) {
	switch {
	case s == "*":
		if write {
			return grant{}, errors.New(`"*" would let callers without a token write; use "authenticated"`)
		}
		return grant{kind: grantAnyone}, nil
	case s == "authenticated":
		return grant{kind: grantAuthenticated}, nil
	case s == "node":
		return grant{kind: grantNode}, nil
	case s == "{sub}":
		if !hasSub {
			return grant{}, errors.New(`"{sub}" needs {sub} in the repos pattern`)
		}
		return grant{kind: grantSelf}, nil
	case strings.HasPrefix(s, "sub:"):
		name := strings.TrimPrefix(s, "sub:")
		if !validLabel(name, MaxSubBytes) {
			return grant{}, fmt.Errorf("%q: subject must be 1 to %d bytes without control characters", s, MaxSubBytes)
		}
		return grant{kind: grantSub, name: name}, nil
	case strings.HasPrefix(s, "role:"):
		name := strings.TrimPrefix(s, "role:")
		if !validLabel(name, MaxRoleBytes) {
			return grant{}, fmt.Errorf("%q: role must be 1 to %d bytes without control characters", s, MaxRoleBytes)
		}
		return grant{kind: grantRole, name: name}, nil
	}
	return grant{}, fmt.Errorf(`unknown principal %q: use "*", "authenticated", "{sub}", "sub:NAME", "role:NAME" or "node"`, s)
}

// Authorize maps the rules to the errors the api answers with: a
// repository p may not read is core.ErrNotFound (its existence is not
// revealed), one it may read but not write is core.ErrForbidden on writes.
// A write-only repository (a drop box) accepts writes and hides reads.
func (r *Rules) Authorize(p Principal, repo string, write bool) error {
	switch {
	case write && r.CanWrite(p, repo), !write && r.CanRead(p, repo):
		return nil
	case write && r.CanRead(p, repo):
		return fmt.Errorf("%w: %s may not write %s", core.ErrForbidden, p, repo)
	}
	if !p.Authenticated() {
		// Still a 404, so that a repository's existence is not told to
		// whoever asks, but one that says what most such callers forgot.
		return fmt.Errorf("repository %s: %w, or it may not be read without a token: no credentials were sent (send Authorization: Bearer TOKEN)", repo, core.ErrNotFound)
	}
	return fmt.Errorf("repository %s: %w", repo, core.ErrNotFound)
}

// CanRead reports whether p may read repo.
func (r *Rules) CanRead(p Principal, repo string) bool { return r.allowed(p, repo, false) }

// CanWrite reports whether p may write repo.
func (r *Rules) CanWrite(p Principal, repo string) bool { return r.allowed(p, repo, true) }

func (r *Rules) allowed(p Principal, repo string, write bool) bool {
	if core.ValidateRepoName(repo) != nil {
		return false
	}
	if p.Node && !p.Anonymous {
		return true
	}
	if repo == "sys" || strings.HasPrefix(repo, "sys.") {
		return systemAllowed(p, repo, write)
	}
	if r == nil {
		return false
	}
	if r.dev {
		return p.Authenticated()
	}
	for _, ru := range r.rules {
		grants := ru.read
		if write {
			grants = ru.write
		}
		if len(grants) > 0 && ru.matches(p, repo) && granted(grants, p) {
			return true
		}
	}
	return false
}

func systemAllowed(p Principal, repo string, write bool) bool {
	switch repo {
	case SessionsRepo:
		return !write && p.Authenticated()
	case SchemasRepo:
		if write {
			return p.HasRole(AdminRole)
		}
		return p.Authenticated()
	}
	return !write && p.HasRole(AdminRole)
}

// SchemasRepo is the system repository of schema definitions.
const SchemasRepo = "sys.schemas"

// subSegment is what a subject must look like to be substituted for {sub}.
var subSegment = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,63}$`)

func (ru *rule) matches(p Principal, repo string) bool {
	pat := ru.repos
	if ru.hasSub {
		if !p.Authenticated() || p.Node || !subSegment.MatchString(p.Sub) {
			return false
		}
		pat = strings.ReplaceAll(pat, "{sub}", p.Sub)
	}
	return glob(pat, repo)
}

func granted(gs []grant, p Principal) bool {
	for _, g := range gs {
		switch g.kind {
		case grantAnyone:
			return true
		case grantAuthenticated:
			if p.Authenticated() {
				return true
			}
		case grantSelf:
			// The pattern matched with p's own subject substituted.
			if p.Authenticated() {
				return true
			}
		case grantSub:
			if p.Authenticated() && p.Sub == g.name {
				return true
			}
		case grantRole:
			if p.HasRole(g.name) {
				return true
			}
		case grantNode:
			if p.Node {
				return true
			}
		}
	}
	return false
}

// glob matches name against a compiled pattern: "?" is one byte, "*" any
// run of bytes, everything else itself. Linear-time backtracking to the
// last star (research.swtch.com/glob), so hostile names cannot make
// matching slow.
func glob(pattern, name string) bool {
	px, nx := 0, 0
	nextPx, nextNx := 0, 0
	for px < len(pattern) || nx < len(name) {
		if px < len(pattern) {
			switch c := pattern[px]; c {
			case '?':
				if nx < len(name) {
					px++
					nx++
					continue
				}
			case '*':
				nextPx, nextNx = px, nx+1
				px++
				continue
			default:
				if nx < len(name) && name[nx] == c {
					px++
					nx++
					continue
				}
			}
		}
		if 0 < nextNx && nextNx <= len(name) {
			px, nx = nextPx, nextNx
			continue
		}
		return false
	}
	return true
}

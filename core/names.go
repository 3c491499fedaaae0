package core

import (
	"fmt"
	"strconv"
	"strings"
)

// Limits on names and commits. They are part of the wire contract: every
// peer must refuse the same inputs.
const (
	// MaxCommitBytes bounds one commit's JSON encoding.
	MaxCommitBytes = 1 << 20
	// MaxParents bounds a commit's parents (a merge of that many heads).
	MaxParents = 256
	// MaxAuthorLen bounds a session id.
	MaxAuthorLen = 64
	// MaxTS is the largest timestamp, 2^53-1, the largest integer every
	// JavaScript peer represents exactly.
	MaxTS = 1<<53 - 1
)

// The patterns below are checked by hand-written loops (every received
// commit is checked against four of them, and a regexp cost more than
// hashing the commit); TestNames_MatchPatterns holds the loops to these
// regular expressions.
const (
	repoPattern   = `^[a-z0-9][a-z0-9_.-]{0,127}$`
	keyPattern    = `^[A-Za-z0-9._~:@-]{1,200}$`
	authorPattern = `^[A-Za-z0-9_-]{1,64}$`
	nsPattern     = `^[a-z][a-z0-9_.-]{0,63}$`
)

// byteSet is a set of ASCII bytes.
type byteSet [4]uint64

func makeByteSet(ranges ...string) byteSet {
	var s byteSet
	for _, r := range ranges {
		for c := r[0]; c <= r[len(r)-1]; c++ {
			s[c>>6] |= 1 << (c & 63)
		}
	}
	return s
}

func (s *byteSet) has(c byte) bool { return s[c>>6]&(1<<(c&63)) != 0 }

// matches reports whether name is a first byte from first, then bytes of
// rest, min to max bytes in all.
func matches(name string, first, rest *byteSet, min, max int) bool {
	if len(name) < min || len(name) > max || !first.has(name[0]) {
		return false
	}
	for i := 1; i < len(name); i++ {
		if !rest.has(name[i]) {
			return false
		}
	}
	return true
}

var (
	lowerDigit    = makeByteSet("az", "09")
	repoRest      = makeByteSet("az", "09", "_", ".", "-")
	keyChars      = makeByteSet("AZ", "az", "09", ".", "_", "~", ":", "@", "-")
	authorChars   = makeByteSet("AZ", "az", "09", "_", "-")
	lowerOnly     = makeByteSet("az")
	nsRest        = repoRest
	matchRepoName = func(s string) bool { return matches(s, &lowerDigit, &repoRest, 1, 128) }
	matchKey      = func(s string) bool { return matches(s, &keyChars, &keyChars, 1, 200) }
	matchAuthor   = func(s string) bool { return matches(s, &authorChars, &authorChars, 1, 64) }
	matchNS       = func(s string) bool { return matches(s, &lowerOnly, &nsRest, 1, 64) }
)

// ValidateRepoName checks a repository name: one URL path segment matching
// ^[a-z0-9][a-z0-9_.-]{0,127}$ without "..".
func ValidateRepoName(name string) error {
	if !matchRepoName(name) || strings.Contains(name, "..") {
		return fmt.Errorf("%w: repository name %q must match ^[a-z0-9][a-z0-9_.-]{0,127}$ and not contain \"..\"", ErrInvalid, name)
	}
	return nil
}

// ValidateKey checks an item key against ^[A-Za-z0-9._~:@-]{1,200}$.
func ValidateKey(key string) error {
	if !matchKey(key) {
		return fmt.Errorf("%w: item key %q must match ^[A-Za-z0-9._~:@-]{1,200}$", ErrInvalid, key)
	}
	return nil
}

// ValidateAuthor checks a commit author: a session id or MergeAuthor.
func ValidateAuthor(a string) error {
	if !matchAuthor(a) {
		return fmt.Errorf("%w: author %q must match ^[A-Za-z0-9_-]{1,64}$", ErrInvalid, a)
	}
	return nil
}

// ParseSchemaRef splits "ns/version". The namespace matches
// ^[a-z][a-z0-9_.-]{0,63}$ and the version is a positive integer without
// leading zeros, so every reference has one spelling.
func ParseSchemaRef(ref string) (ns string, version int, err error) {
	ns, v, ok := strings.Cut(ref, "/")
	if !ok || !matchNS(ns) || v == "" || v[0] == '0' || len(v) > 9 {
		return "", 0, fmt.Errorf("%w: schema %q must look like \"ns/version\" (e.g. \"task/2\")", ErrInvalid, ref)
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		return "", 0, fmt.Errorf("%w: schema %q has an invalid version", ErrInvalid, ref)
	}
	return ns, n, nil
}

// SchemaRef formats "ns/version".
func SchemaRef(ns string, version int) string { return ns + "/" + strconv.Itoa(version) }

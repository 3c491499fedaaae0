package core

import (
	"fmt"
	"regexp"
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

var (
	repoPattern   = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]{0,127}$`)
	keyPattern    = regexp.MustCompile(`^[A-Za-z0-9._~:@-]{1,200}$`)
	authorPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)
	nsPattern     = regexp.MustCompile(`^[a-z][a-z0-9_.-]{0,63}$`)
)

// ValidateRepoName checks a repository name: one URL path segment matching
// ^[a-z0-9][a-z0-9_.-]{0,127}$ without "..".
func ValidateRepoName(name string) error {
	if !repoPattern.MatchString(name) || strings.Contains(name, "..") {
		return fmt.Errorf("%w: repository name %q must match ^[a-z0-9][a-z0-9_.-]{0,127}$ and not contain \"..\"", ErrInvalid, name)
	}
	return nil
}

// ValidateKey checks an item key against ^[A-Za-z0-9._~:@-]{1,200}$.
func ValidateKey(key string) error {
	if !keyPattern.MatchString(key) {
		return fmt.Errorf("%w: item key %q must match ^[A-Za-z0-9._~:@-]{1,200}$", ErrInvalid, key)
	}
	return nil
}

// ValidateAuthor checks a commit author: a session id or MergeAuthor.
func ValidateAuthor(a string) error {
	if !authorPattern.MatchString(a) {
		return fmt.Errorf("%w: author %q must match ^[A-Za-z0-9_-]{1,64}$", ErrInvalid, a)
	}
	return nil
}

// ParseSchemaRef splits "ns/version". The namespace matches
// ^[a-z][a-z0-9_.-]{0,63}$ and the version is a positive integer without
// leading zeros, so every reference has one spelling.
func ParseSchemaRef(ref string) (ns string, version int, err error) {
	ns, v, ok := strings.Cut(ref, "/")
	if !ok || !nsPattern.MatchString(ns) || v == "" || v[0] == '0' || len(v) > 9 {
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

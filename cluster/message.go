package cluster

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/goat-gateway/goat-gateway/core"
)

// SubjectPrefix starts the subject of every commit message:
// goat.commits.<repo>.
const SubjectPrefix = "goat.commits."

// subscribeSubject matches every repository's subject.
const subscribeSubject = SubjectPrefix + ">"

// MaxMessageCommits bounds the commits of one message.
const MaxMessageCommits = 1000

// Subject returns the NATS subject of a repository's commits. Repository
// names are dot-separated tokens already; the one name a subject cannot
// spell, a trailing dot (an empty last token), gets a "~" after it, which no
// repository name contains, so the mapping stays one to one.
func Subject(repo string) string {
	if strings.HasSuffix(repo, ".") {
		return SubjectPrefix + repo + "~"
	}
	return SubjectPrefix + repo
}

// RepoOfSubject inverts Subject.
func RepoOfSubject(subject string) (string, error) {
	repo, ok := strings.CutPrefix(subject, SubjectPrefix)
	if !ok {
		return "", fmt.Errorf("%w: subject %q does not start with %s", core.ErrInvalid, subject, SubjectPrefix)
	}
	repo = strings.TrimSuffix(repo, "~")
	if err := core.ValidateRepoName(repo); err != nil {
		return "", err
	}
	return repo, nil
}

// Message is what a node publishes on a repository's subject:
//
//	{"node":"<node id>","repo":"<repo>","commits":[<commit>, ...]}
//
// node is the publisher's storage node id (for logs; nodes do not receive
// their own messages). commits are canonical commit JSON, byte for byte as
// the publisher stored them, in its log order (a topological order), at
// most MaxMessageCommits of them, each of repo. A message without commits
// announces that the repository was created (PUT /v1/repos/{repo}), so that
// a client may subscribe to it on any node.
type Message struct {
	Node    string
	Repo    string
	Commits []json.RawMessage
}

// AppendMessage appends the wire form of m to dst.
func AppendMessage(dst []byte, m Message) []byte {
	dst = append(dst, `{"node":`...)
	dst = appendJSONString(dst, m.Node)
	dst = append(dst, `,"repo":`...)
	dst = appendJSONString(dst, m.Repo)
	dst = append(dst, `,"commits":[`...)
	for i, c := range m.Commits {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, c...)
	}
	return append(dst, "]}"...)
}

// messageOverhead is the size of a message's envelope without its commits
// and names (for splitting batches under the payload limit).
const messageOverhead = len(`{"node":"","repo":"","commits":[]}`)

func appendJSONString(dst []byte, s string) []byte {
	b, _ := json.Marshal(s)
	return append(dst, b...)
}

// DecodeMessage parses and checks a message received on subject: the
// envelope, the repository against the subject, and every commit
// with core.DecodeCommit (strict, id recomputed) and against the repository.
// Signatures and merges are the ingesting node's business. Errors wrap
// core.ErrInvalid (or core.ErrTooLarge for too many commits).
func DecodeMessage(subject string, b []byte) (repo string, commits []*core.Commit, err error) {
	repo, err = RepoOfSubject(subject)
	if err != nil {
		return "", nil, err
	}
	var m struct {
		Node    *string           `json:"node"`
		Repo    *string           `json:"repo"`
		Commits []json.RawMessage `json:"commits"`
	}
	// Unknown members are ignored, so that a newer node can add some
	// during a rolling upgrade; the commits themselves are strict.
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&m); err != nil {
		return "", nil, fmt.Errorf("%w: message: %v", core.ErrInvalid, err)
	}
	if dec.More() {
		return "", nil, fmt.Errorf("%w: message: data after the object", core.ErrInvalid)
	}
	switch {
	case m.Node == nil || m.Repo == nil || m.Commits == nil:
		return "", nil, fmt.Errorf("%w: message: node, repo and commits are required", core.ErrInvalid)
	case *m.Repo != repo:
		return "", nil, fmt.Errorf("%w: message for repository %q on the subject of %q", core.ErrInvalid, *m.Repo, repo)
	case len(m.Commits) > MaxMessageCommits:
		return "", nil, fmt.Errorf("%w: message with %d commits, more than %d", core.ErrTooLarge, len(m.Commits), MaxMessageCommits)
	}
	commits = make([]*core.Commit, len(m.Commits))
	for i, raw := range m.Commits {
		c, err := core.DecodeCommit(raw)
		if err != nil {
			return "", nil, fmt.Errorf("commits[%d]: %w", i, err)
		}
		if c.Repo != repo {
			return "", nil, fmt.Errorf("%w: commits[%d] belongs to repository %q, not %q", core.ErrInvalid, i, c.Repo, repo)
		}
		commits[i] = c
	}
	return repo, commits, nil
}

// splitMessages cuts commits (canonical JSON, in log order) into messages
// of at most MaxMessageCommits commits and maxBytes bytes, keeping order. A
// commit that alone exceeds maxBytes cannot travel over NATS: it is
// returned in skipped, for node-to-node sync to carry.
func splitMessages(node, repo string, commits []json.RawMessage, maxBytes int) (msgs [][]byte, skipped int) {
	base := messageOverhead + len(node) + len(repo) + 8 // quoting slack
	var cur []json.RawMessage
	size := base
	flush := func() {
		if len(cur) > 0 {
			msgs = append(msgs, AppendMessage(nil, Message{Node: node, Repo: repo, Commits: cur}))
			cur, size = nil, base
		}
	}
	for _, c := range commits {
		if base+len(c) > maxBytes {
			skipped++
			continue
		}
		if len(cur) == MaxMessageCommits || size+len(c)+1 > maxBytes {
			flush()
		}
		cur = append(cur, c)
		size += len(c) + 1
	}
	flush()
	return msgs, skipped
}

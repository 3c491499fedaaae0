package goat

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/goat-gateway/goat-gateway/core"
)

// Files of a client's local directory, beside the replica:
//
//	DIR/replica/        the storage data directory (one log per repository)
//	DIR/session.json    the session key (mode 0600) and its expiry
//	DIR/state.json      per repository: log cursor and unacknowledged commits
//	DIR/schemas.json    schemas learned from the gateway, for offline merges
//
// The JSON files are small and rewritten whole, atomically (temporary
// file, fsync, rename, directory fsync). The replica is the source of
// truth: losing state.json only costs a heal.
const (
	replicaDir  = "replica"
	sessionFile = "session.json"
	stateFile   = "state.json"
	schemasFile = "schemas.json"
)

// sessionKey is the client's signing key and the expiry it registers with.
type sessionKey struct {
	priv    ed25519.PrivateKey
	expires time.Time
}

type sessionJSON struct {
	PrivateKey string `json:"privateKey"` // unpadded base64url of the 32-byte seed
	Expires    int64  `json:"expires"`    // unix ms
}

func newSessionKey(now time.Time, ttl time.Duration) (sessionKey, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return sessionKey{}, err
	}
	return sessionKey{priv: priv, expires: now.Add(ttl).Truncate(time.Millisecond)}, nil
}

func (k sessionKey) public() ed25519.PublicKey { return k.priv.Public().(ed25519.PublicKey) }

// loadSessionKey reads DIR/session.json; fs.ErrNotExist if there is none.
// A file that group or others may read is refused: a readable key is a
// leaked one (the gateway's own key files follow the same rule).
func loadSessionKey(dir string) (sessionKey, error) {
	path := filepath.Join(dir, sessionFile)
	st, err := os.Stat(path)
	if err != nil {
		return sessionKey{}, err
	}
	if st.Mode().Perm()&0o077 != 0 {
		return sessionKey{}, fmt.Errorf("%w: %s is readable by others (mode %v); it must be 0600", core.ErrForbidden, path, st.Mode().Perm())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return sessionKey{}, err
	}
	var j sessionJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return sessionKey{}, fmt.Errorf("%w: %s: %v", core.ErrCorrupt, path, err)
	}
	seed, err := base64.RawURLEncoding.DecodeString(j.PrivateKey)
	if err != nil || len(seed) != ed25519.SeedSize {
		return sessionKey{}, fmt.Errorf("%w: %s: bad private key", core.ErrCorrupt, path)
	}
	return sessionKey{priv: ed25519.NewKeyFromSeed(seed), expires: time.UnixMilli(j.Expires)}, nil
}

func saveSessionKey(dir string, k sessionKey, sync bool) error {
	b, err := json.Marshal(sessionJSON{PrivateKey: base64.RawURLEncoding.EncodeToString(k.priv.Seed()), Expires: k.expires.UnixMilli()})
	if err != nil {
		return err
	}
	return writeFileAtomic(filepath.Join(dir, sessionFile), b, 0o600, sync)
}

// clientState is what DIR/state.json keeps per repository.
type clientState struct {
	Repos map[string]*repoState `json:"repos"`
}

type repoState struct {
	// Cursor is the log position after the last clone ("" if none).
	Cursor string `json:"cursor,omitempty"`
	// Outbox lists commits made here that the gateway has not
	// acknowledged, in the order they were made.
	Outbox []core.CommitID `json:"outbox,omitempty"`
}

func loadState(dir string) (*clientState, error) {
	st := &clientState{Repos: map[string]*repoState{}}
	b, err := os.ReadFile(filepath.Join(dir, stateFile))
	if errors.Is(err, fs.ErrNotExist) {
		return st, nil
	}
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(b, st); err != nil {
		// Only a cache of what a heal recomputes: start afresh.
		return &clientState{Repos: map[string]*repoState{}}, nil
	}
	if st.Repos == nil {
		st.Repos = map[string]*repoState{}
	}
	return st, nil
}

func loadSchemas(dir string) ([]*core.Schema, error) {
	b, err := os.ReadFile(filepath.Join(dir, schemasFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var raws []json.RawMessage
	if err := json.Unmarshal(b, &raws); err != nil {
		return nil, nil // a cache: the gateway sends them again
	}
	var out []*core.Schema
	for _, raw := range raws {
		if sc, err := core.DecodeSchema(raw); err == nil {
			out = append(out, sc)
		}
	}
	return out, nil
}

func saveSchemas(dir string, list []*core.Schema, sync bool) error {
	list = slices.DeleteFunc(slices.Clone(list), func(s *core.Schema) bool { return s.Ref() == core.AnySchema })
	b, err := json.Marshal(list)
	if err != nil {
		return err
	}
	return writeFileAtomic(filepath.Join(dir, schemasFile), b, 0o600, sync)
}

// writeFileAtomic replaces path with data: a reader (or a crash) sees the
// old file or the new one, never a mix.
func writeFileAtomic(path string, data []byte, perm os.FileMode, sync bool) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	ok := false
	defer func() {
		if !ok {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if err := f.Chmod(perm); err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		return err
	}
	if sync {
		if err := f.Sync(); err != nil {
			return err
		}
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	ok = true
	if sync {
		d, err := os.Open(dir)
		if err != nil {
			return err
		}
		defer d.Close()
		return d.Sync()
	}
	return nil
}

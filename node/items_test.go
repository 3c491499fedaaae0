package node_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/goat-gateway/goat-gateway/auth"
	"github.com/goat-gateway/goat-gateway/core"
	"github.com/goat-gateway/goat-gateway/node"
)

// setData is an Edit that replaces the value with data in any/1.
func setData(data map[string]any) node.Edit {
	return setSchemaData(core.AnySchema, data)
}

// setSchemaData is an Edit that replaces the value with data in schema.
func setSchemaData(schema string, data map[string]any) node.Edit {
	return func(*node.Value, map[string]any, string) (string, map[string]any, error) {
		return schema, core.CloneObject(data), nil
	}
}

// patch is an Edit that sets fields over the base value, in its schema.
func patch(fields map[string]any) node.Edit {
	return func(_ *node.Value, base map[string]any, baseSchema string) (string, map[string]any, error) {
		if base == nil {
			base = map[string]any{}
		}
		if baseSchema == "" {
			baseSchema = core.AnySchema
		}
		for k, v := range fields {
			base[k] = v
		}
		return baseSchema, base, nil
	}
}

func TestNode_WriteItem(t *testing.T) {
	ctx := context.Background()
	alice := user("alice")

	t.Run("Creates", func(t *testing.T) {
		e := openDev(t)
		e.createRepo(t, alice, "notes")
		v, created, err := e.n.WriteItem(ctx, alice, "notes", "k", nil, setData(map[string]any{"x": 1.0}))
		if err != nil {
			t.Fatal(err)
		}
		if !created {
			t.Fatal("created=false for a new key")
		}
		if got, want := v.Data, map[string]any{"x": 1.0}; !core.EqualJSON(got, want) {
			t.Fatalf("value %v, want %v", got, want)
		}
		if got, want := e.peekValue(t, "notes", "k").Head, v.Head; got != want {
			t.Fatalf("stored head %s, want the returned %s", got, want)
		}
		_, c := e.record(t, "notes", v.Head)
		if got, want := c.Schema, core.AnySchema; got != want {
			t.Fatalf("schema=%s, want %s", got, want)
		}
	})

	t.Run("ReturnsTheValueReadersSee", func(t *testing.T) {
		// WriteItem answers from what it wrote when nothing was merged in,
		// without reading the item back: that answer must be the stored
		// value, for full values, deltas and tombstones alike.
		e := openDev(t)
		e.createRepo(t, alice, "notes")
		for i, edit := range []node.Edit{
			setData(map[string]any{"title": "milk", "n": 1.0, "tags": []any{"a", "b"}}),
			patch(map[string]any{"n": 2.0}), // a delta of the previous
			setData(map[string]any{"title": "eggs", "nested": map[string]any{"x": true, "y": nil}}),
			setData(map[string]any{"isDeleted": true}),
			setData(map[string]any{"title": "back"}),
		} {
			v, _, err := e.n.WriteItem(ctx, alice, "notes", "k", nil, edit)
			if err != nil {
				t.Fatalf("write %d: %v", i, err)
			}
			stored := e.peekValue(t, "notes", "k")
			if v.Key != stored.Key || v.Schema != stored.Schema || v.Head != stored.Head || v.TS != stored.TS ||
				v.Deleted != stored.Deleted || v.Heads != stored.Heads || !core.EqualJSON(v.Data, stored.Data) {
				t.Fatalf("write %d returned %+v, readers see %+v", i, v, stored)
			}
		}
	})

	t.Run("NoOpWriteMakesNoCommit", func(t *testing.T) {
		e := openDev(t)
		e.createRepo(t, alice, "notes")
		v1, _, err := e.n.WriteItem(ctx, alice, "notes", "k", nil, setData(map[string]any{"x": 1.0}))
		if err != nil {
			t.Fatal(err)
		}
		last := e.n.LastSeq()
		e.bar.take()
		v2, created, err := e.n.WriteItem(ctx, alice, "notes", "k", nil, setData(map[string]any{"x": 1.0}))
		if err != nil {
			t.Fatal(err)
		}
		if created {
			t.Fatal("created=true for an existing key")
		}
		if got, want := v2.Head, v1.Head; got != want {
			t.Fatalf("head=%s after a no-op write, want %s", got, want)
		}
		if got, want := e.n.LastSeq(), last; got != want {
			t.Fatalf("LastSeq=%d after a no-op write, want %d", got, want)
		}
		if got := e.bar.take(); len(got) != 0 {
			t.Fatalf("barrier saw %+v for a no-op write, want nothing", got)
		}
	})

	t.Run("UpdateDescendsFromTheHead", func(t *testing.T) {
		e := openDev(t)
		e.createRepo(t, alice, "notes")
		v1, _, err := e.n.WriteItem(ctx, alice, "notes", "k", nil, setData(map[string]any{"x": 1.0}))
		if err != nil {
			t.Fatal(err)
		}
		v2, created, err := e.n.WriteItem(ctx, alice, "notes", "k", nil, patch(map[string]any{"y": 2.0}))
		if err != nil {
			t.Fatal(err)
		}
		if created {
			t.Fatal("created=true for an existing key")
		}
		if got, want := v2.Data, map[string]any{"x": 1.0, "y": 2.0}; !core.EqualJSON(got, want) {
			t.Fatalf("value %v, want %v", got, want)
		}
		_, c := e.record(t, "notes", v2.Head)
		if len(c.Parents) != 1 || c.Parents[0] != v1.Head {
			t.Fatalf("parents=%v, want [%s]", c.Parents, v1.Head)
		}
	})

	t.Run("IfMatchOfAnOlderVersionMerges", func(t *testing.T) {
		e := openDev(t)
		e.createRepo(t, alice, "notes")
		v1, _, err := e.n.WriteItem(ctx, alice, "notes", "k", nil, setData(map[string]any{"a": 1.0, "b": 1.0}))
		if err != nil {
			t.Fatal(err)
		}
		e.clock.Add(time.Second)
		if _, _, err := e.n.WriteItem(ctx, alice, "notes", "k", nil, patch(map[string]any{"a": 2.0})); err != nil {
			t.Fatal(err)
		}
		e.clock.Add(time.Second)
		sawBase := false
		edit := func(cur *node.Value, base map[string]any, baseSchema string) (string, map[string]any, error) {
			// The edit applies to the If-Match version, not the head.
			sawBase = core.EqualJSON(base, map[string]any{"a": 1.0, "b": 1.0}) && baseSchema == core.AnySchema &&
				cur != nil && core.EqualJSON(cur.Data, map[string]any{"a": 2.0, "b": 1.0})
			base["b"] = 2.0
			return baseSchema, base, nil
		}
		id := v1.Head
		v3, created, err := e.n.WriteItem(ctx, alice, "notes", "k", &id, edit)
		if err != nil {
			t.Fatal(err)
		}
		if !sawBase {
			t.Fatal("the edit did not get the If-Match version as its base")
		}
		if created {
			t.Fatal("created=true for an existing key")
		}
		if got, want := v3.Data, map[string]any{"a": 2.0, "b": 2.0}; !core.EqualJSON(got, want) {
			t.Fatalf("value %v, want the 3-way merge %v", got, want)
		}
		if got, want := v3.Heads, 1; got != want {
			t.Fatalf("heads=%d, want %d (merged)", got, want)
		}
		if _, c := e.record(t, "notes", v3.Head); !c.IsMerge() {
			t.Fatalf("head %s is by %s, want a merge commit", v3.Head, c.Author)
		}
	})

	t.Run("IfMatchOfAnotherKeyIsConflict", func(t *testing.T) {
		e := openDev(t)
		e.createRepo(t, alice, "notes")
		other, _, err := e.n.WriteItem(ctx, alice, "notes", "other", nil, setData(map[string]any{"x": 1.0}))
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := e.n.WriteItem(ctx, alice, "notes", "k", nil, setData(map[string]any{"x": 1.0})); err != nil {
			t.Fatal(err)
		}
		last := e.n.LastSeq()
		for name, id := range map[string]core.CommitID{"AnotherKey": other.Head, "Unknown": {1, 2, 3}} {
			t.Run(name, func(t *testing.T) {
				_, _, err := e.n.WriteItem(ctx, alice, "notes", "k", &id, setData(map[string]any{"x": 2.0}))
				wantErr(t, "If-Match "+name, err, core.ErrConflict)
			})
		}
		if got, want := e.n.LastSeq(), last; got != want {
			t.Fatalf("LastSeq=%d after refused writes, want %d", got, want)
		}
	})

	t.Run("SchemaViolationIsErrSchema", func(t *testing.T) {
		e := openDev(t)
		e.createRepo(t, alice, "notes")
		e.putSchema(t, alice, "task", 1, taskSchema())
		last := e.n.LastSeq()
		for name, edit := range map[string]node.Edit{
			"MissingRequired": setSchemaData("task/1", map[string]any{"done": true}),
			"WrongType":       setSchemaData("task/1", map[string]any{"title": 1.0}),
			"UnknownField":    setSchemaData("task/1", map[string]any{"title": "a", "x": 1.0}),
			"UnknownSchema":   setSchemaData("nope/1", map[string]any{"title": "a"}),
		} {
			t.Run(name, func(t *testing.T) {
				_, _, err := e.n.WriteItem(ctx, alice, "notes", "k", nil, edit)
				wantErr(t, name, err, core.ErrSchema)
			})
		}
		if got, want := e.n.LastSeq(), last; got != want {
			t.Fatalf("LastSeq=%d after refused writes, want %d", got, want)
		}
	})

	t.Run("EditErrorIsReturned", func(t *testing.T) {
		e := openDev(t)
		e.createRepo(t, alice, "notes")
		boom := errors.New("boom")
		_, _, err := e.n.WriteItem(ctx, alice, "notes", "k", nil, func(*node.Value, map[string]any, string) (string, map[string]any, error) {
			return "", nil, boom
		})
		wantErr(t, "WriteItem with a failing edit", err, boom)
	})

	t.Run("CustodialSessionRegisteredOnce", func(t *testing.T) {
		e := openDev(t)
		e.createRepo(t, alice, "notes")
		v1, _, err := e.n.WriteItem(ctx, alice, "notes", "k1", nil, setData(map[string]any{"x": 1.0}))
		if err != nil {
			t.Fatal(err)
		}
		v2, _, err := e.n.WriteItem(ctx, alice, "notes", "k2", nil, setData(map[string]any{"x": 2.0}))
		if err != nil {
			t.Fatal(err)
		}
		id := e.commitAuthor(t, "notes", v1.Head)
		if got := e.commitAuthor(t, "notes", v2.Head); got != id {
			t.Fatalf("second write signed by %s, want the same custodial session %s", got, id)
		}
		sess, err := e.n.Session(ctx, alice, id)
		if err != nil {
			t.Fatalf("Session(%s): %v", id, err)
		}
		if !sess.Custodial || sess.Owner != "alice" {
			t.Fatalf("session %+v: want a custodial session owned by alice", sess)
		}
		if got, want := len(e.history(t, auth.SessionsRepo, id)), 1; got != want {
			t.Fatalf("sys.sessions holds %d records of the custodial session, want %d", got, want)
		}
		bob := user("bob")
		v3, _, err := e.n.WriteItem(ctx, bob, "notes", "k3", nil, setData(map[string]any{"x": 3.0}))
		if err != nil {
			t.Fatal(err)
		}
		if got := e.commitAuthor(t, "notes", v3.Head); got == id {
			t.Fatal("bob's write was signed with alice's custodial session")
		}
	})

	t.Run("RevokedCustodialSessionBlocksWrites", func(t *testing.T) {
		// docs/security.md: revoking a custodial session blocks the
		// caller's REST writes until the next period.
		e := openDev(t)
		e.createRepo(t, alice, "notes")
		v, _, err := e.n.WriteItem(ctx, alice, "notes", "k", nil, setData(map[string]any{"x": 1.0}))
		if err != nil {
			t.Fatal(err)
		}
		id := e.commitAuthor(t, "notes", v.Head)
		if _, err := e.n.RevokeSession(ctx, alice, id); err != nil {
			t.Fatal(err)
		}
		e.clock.Add(time.Second)
		last := e.n.LastSeq()
		_, _, err = e.n.WriteItem(ctx, alice, "notes", "k", nil, setData(map[string]any{"x": 2.0}))
		wantErr(t, "WriteItem after its custodial session was revoked", err, core.ErrUnauthenticated)
		if got, want := e.n.LastSeq(), last; got != want {
			t.Fatalf("LastSeq=%d after a refused write, want %d", got, want)
		}
	})

	t.Run("CustodialSessionRevokedOnAnotherNode", func(t *testing.T) {
		// Two nodes of one deployment derive the same custodial session;
		// a revocation that replicates here blocks the writes here, even
		// though this node has the session's key at hand.
		keys := t.TempDir()
		a := open(t, node.Config{Dev: true, KeysDir: keys})
		b := open(t, node.Config{Dev: true, KeysDir: keys})
		a.createRepo(t, alice, "notes")
		b.createRepo(t, alice, "notes")
		va, _, err := a.n.WriteItem(ctx, alice, "notes", "k", nil, setData(map[string]any{"x": 1.0}))
		if err != nil {
			t.Fatal(err)
		}
		vb, _, err := b.n.WriteItem(ctx, alice, "notes", "k", nil, setData(map[string]any{"x": 1.0}))
		if err != nil {
			t.Fatal(err)
		}
		id := a.commitAuthor(t, "notes", va.Head)
		if got := b.commitAuthor(t, "notes", vb.Head); got != id {
			t.Fatalf("the nodes signed with %s and %s, want one custodial session", id, got)
		}
		if _, err := b.n.RevokeSession(ctx, alice, id); err != nil {
			t.Fatal(err)
		}
		h := b.history(t, auth.SessionsRepo, id)
		for i := len(h) - 1; i >= 0; i-- { // oldest first: parents before children
			c, err := h[i].Commit()
			if err != nil {
				t.Fatal(err)
			}
			a.ingest(t, auth.SessionsRepo, node.OriginReplica, c)
		}
		if got, err := a.n.Session(ctx, alice, id); err != nil || got.Revoked.IsZero() {
			t.Fatalf("session on a after the replicated revocation: %+v, %v; want it revoked", got, err)
		}
		a.clock.Add(time.Second)
		_, _, err = a.n.WriteItem(ctx, alice, "notes", "k", nil, setData(map[string]any{"x": 2.0}))
		wantErr(t, "WriteItem after a replicated revocation", err, core.ErrUnauthenticated)
	})

	t.Run("ReadersSeeDefaultsPeekSeesStored", func(t *testing.T) {
		e := openDev(t)
		e.createRepo(t, alice, "notes")
		e.putSchema(t, alice, "task", 1, taskSchema())
		v, _, err := e.n.WriteItem(ctx, alice, "notes", "k", nil, setSchemaData("task/1", map[string]any{"title": "a"}))
		if err != nil {
			t.Fatal(err)
		}
		withDefault := map[string]any{"title": "a", "done": false}
		if !core.EqualJSON(v.Data, withDefault) {
			t.Fatalf("WriteItem returned %v, want %v", v.Data, withDefault)
		}
		r, err := e.n.Open(alice, "notes", false)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Release()
		got, err := r.Value("k")
		if err != nil {
			t.Fatal(err)
		}
		if !core.EqualJSON(got.Data, withDefault) {
			t.Fatalf("Open(...).Value=%v, want %v", got.Data, withDefault)
		}
		items, more, err := r.Items("", 10, false, "task")
		if err != nil {
			t.Fatal(err)
		}
		if more || len(items) != 1 || !core.EqualJSON(items[0].Data, withDefault) {
			t.Fatalf("Items=%v (more %v), want one item %v", items, more, withDefault)
		}
		if got := e.peekValue(t, "notes", "k").Data; !core.EqualJSON(got, map[string]any{"title": "a"}) {
			t.Fatalf("Peek value=%v, want it as stored, without defaults", got)
		}
	})

	t.Run("Refusals", func(t *testing.T) {
		e := openWithRules(t)
		e.createRepo(t, user("bob", "editor"), "public.news")
		e.createRepo(t, alice, "user.alice.notes")
		for _, c := range []struct {
			name      string
			p         auth.Principal
			repo, key string
			want      error
		}{
			{"ReadableNotWritable", alice, "public.news", "k", core.ErrForbidden},
			{"Unreadable", user("bob"), "user.alice.notes", "k", core.ErrNotFound},
			{"MissingRepository", alice, "user.alice.missing", "k", core.ErrNotFound},
			{"BadKey", alice, "user.alice.notes", "a key", core.ErrInvalid},
			{"Anonymous", auth.Anonymous(), "public.news", "k", core.ErrNotFound},
		} {
			t.Run(c.name, func(t *testing.T) {
				_, _, err := e.n.WriteItem(ctx, c.p, c.repo, c.key, nil, setData(map[string]any{}))
				wantErr(t, c.name, err, c.want)
			})
		}
	})
}

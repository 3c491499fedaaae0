package sync

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/goat-gateway/goat-gateway/core"
)

// fakeTransport is a Transport with function fields.
type fakeTransport struct {
	log  func(ctx context.Context, repo, cursor string, limit int) (*LogPage, error)
	sync func(ctx context.Context, repo string, req *Request) (*Response, error)
}

func (f *fakeTransport) Log(ctx context.Context, repo, cursor string, limit int) (*LogPage, error) {
	return f.log(ctx, repo, cursor, limit)
}

func (f *fakeTransport) Sync(ctx context.Context, repo string, req *Request) (*Response, error) {
	return f.sync(ctx, repo, req)
}

// fakeLocal wraps a memSet with an overridable Ingest.
type fakeLocal struct {
	*memSet
	ingest func(ctx context.Context, cs []*core.Commit) error
}

func (f *fakeLocal) Ingest(ctx context.Context, cs []*core.Commit) error { return f.ingest(ctx, cs) }

func TestDriver_Clone(t *testing.T) {
	all := makeCommits(t, "s", 1, 25, 3)
	ctx := context.Background()

	t.Run("FromStart", func(t *testing.T) {
		server, client := newMemSet(nil, all), newMemSet(nil, nil)
		mt := &memTransport{tb: t, srv: &Server{Rand: seededRand(1)}, server: server, client: client, logID: LogID{1}}
		d := &Driver{Transport: mt, PageLimit: 10, Rand: seededRand(2)}
		st, err := d.Clone(ctx, client, "r", "")
		if err != nil {
			t.Fatal(err)
		}
		checkConverged(t, client, server, 0, unionOf(all))
		if got, want := st.Pages, 3; got != want {
			t.Fatalf("pages=%d, want %d", got, want)
		}
		if got, want := st.Received, 25; got != want {
			t.Fatalf("received=%d, want %d", got, want)
		}
		if got, want := st.Cursor, EncodeCursor(LogID{1}, 25); got != want {
			t.Fatalf("cursor=%q, want %q", got, want)
		}
		if st.Healed || st.Rounds != 0 {
			t.Fatalf("clone from the log healed: %+v", st)
		}
	})
	t.Run("FromSavedCursor", func(t *testing.T) {
		server, client := newMemSet(nil, all), newMemSet(nil, all[:20])
		mt := &memTransport{tb: t, server: server, logID: LogID{1}}
		d := &Driver{Transport: mt, PageLimit: 10}
		st, err := d.Clone(ctx, client, "r", EncodeCursor(LogID{1}, 20))
		if err != nil {
			t.Fatal(err)
		}
		checkConverged(t, client, server, 0, unionOf(all))
		if got, want := st.Received, 5; got != want {
			t.Fatalf("received=%d, want %d", got, want)
		}
	})
	t.Run("StaleCursorHeals", func(t *testing.T) {
		extra := makeCommits(t, "c", 1, 4, 2)
		server, client := newMemSet(nil, all), newMemSet(nil, append(append([]*core.Commit{}, all[:20]...), extra...))
		mt := &memTransport{tb: t, srv: &Server{Rand: seededRand(1)}, server: server, client: client, logID: LogID{1}}
		d := &Driver{Transport: mt, Rand: seededRand(2)}
		st, err := d.Clone(ctx, client, "r", EncodeCursor(LogID{2}, 20))
		if err != nil {
			t.Fatal(err)
		}
		checkConverged(t, client, server, 0, unionOf(all, extra))
		if !st.Healed || st.Cursor != "" || st.Rounds == 0 {
			t.Fatalf("stats=%+v, want a heal and no cursor", st)
		}
	})
	t.Run("MissingParentsHeals", func(t *testing.T) {
		// The cursor skips commits the client does not have; later pages
		// need them as parents.
		server, client := newMemSet(nil, all), newMemSet(nil, nil)
		mt := &memTransport{tb: t, srv: &Server{Rand: seededRand(1)}, server: server, client: client, logID: LogID{1}}
		d := &Driver{Transport: mt, Rand: seededRand(2)}
		st, err := d.Clone(ctx, client, "r", EncodeCursor(LogID{1}, 10))
		if err != nil {
			t.Fatal(err)
		}
		checkConverged(t, client, server, 0, unionOf(all))
		if !st.Healed {
			t.Fatalf("stats=%+v, want a heal", st)
		}
	})
	t.Run("EmptyPageEndsLoop", func(t *testing.T) {
		calls := 0
		ft := &fakeTransport{log: func(context.Context, string, string, int) (*LogPage, error) {
			calls++
			return &LogPage{Next: EncodeCursor(LogID{}, 0), More: true}, nil
		}}
		st, err := (&Driver{Transport: ft}).Clone(ctx, newMemSet(nil, nil), "r", "")
		if err != nil {
			t.Fatal(err)
		}
		if calls != 1 || st.Pages != 1 {
			t.Fatalf("calls=%d pages=%d, want 1", calls, st.Pages)
		}
	})
	t.Run("BadCommitFails", func(t *testing.T) {
		ft := &fakeTransport{log: func(context.Context, string, string, int) (*LogPage, error) {
			return &LogPage{Commits: []json.RawMessage{[]byte(`{"id":"nope"}`)}}, nil
		}}
		if _, err := (&Driver{Transport: ft}).Clone(ctx, newMemSet(nil, nil), "r", ""); !errors.Is(err, core.ErrInvalid) {
			t.Fatalf("err=%v, want ErrInvalid", err)
		}
	})
	t.Run("TransportErrorFails", func(t *testing.T) {
		boom := errors.New("boom")
		ft := &fakeTransport{log: func(context.Context, string, string, int) (*LogPage, error) { return nil, boom }}
		if _, err := (&Driver{Transport: ft}).Clone(ctx, newMemSet(nil, nil), "r", ""); !errors.Is(err, boom) {
			t.Fatalf("err=%v, want boom", err)
		}
	})
}

func TestDriver_Heal(t *testing.T) {
	ctx := context.Background()
	cOwn := makeCommits(t, "c", 1, 30, 3)
	sOwn := makeCommits(t, "s", 1, 30, 3)

	t.Run("Converges", func(t *testing.T) {
		client, server := newMemSet(nil, cOwn), newMemSet(nil, sOwn)
		mt := &memTransport{tb: t, srv: &Server{Rand: seededRand(1)}, server: server, client: client}
		st, err := (&Driver{Transport: mt, Rand: seededRand(2), V1: true}).Heal(ctx, client, "r")
		if err != nil {
			t.Fatal(err)
		}
		checkConverged(t, client, server, 0, unionOf(cOwn, sOwn))
		if got, want := st.Rounds, 2; got != want {
			t.Fatalf("rounds=%d, want %d", got, want)
		}
		if st.Pushed != 30 || st.Received != 30 {
			t.Fatalf("pushed=%d received=%d, want 30 each", st.Pushed, st.Received)
		}
		if st.BytesSent <= 0 || st.BytesReceived <= 0 {
			t.Fatalf("bytes not counted: %+v", st)
		}
	})
	t.Run("ConvergesV2", func(t *testing.T) {
		// Both sides gained commits in the same time windows: round 2
		// cannot tell the client's own from a false positive, so the
		// server lists the partition and round 3 pushes.
		client, server := newMemSet(nil, cOwn), newMemSet(nil, sOwn)
		mt := &memTransport{tb: t, srv: &Server{Rand: seededRand(1)}, server: server, client: client}
		st, err := (&Driver{Transport: mt, Rand: seededRand(2)}).Heal(ctx, client, "r")
		if err != nil {
			t.Fatal(err)
		}
		checkConverged(t, client, server, 0, unionOf(cOwn, sOwn))
		if got, want := st.Rounds, 3; got != want {
			t.Fatalf("rounds=%d, want %d", got, want)
		}
		if st.Pushed != 30 || st.Received != 30 {
			t.Fatalf("pushed=%d received=%d, want 30 each", st.Pushed, st.Received)
		}
	})
	t.Run("NewerClientCommitsTwoRounds", func(t *testing.T) {
		// The client's commits are newer than anything on the server: they
		// land in the last window, empty on the server, and go in round 2.
		newer := makeCommitsTS(t, "n", 30, 3, func(i int) int64 { return 1763900000000 + int64(i) })
		client, server := newMemSet(nil, append(slices.Clone(sOwn[:20]), newer...)), newMemSet(nil, sOwn)
		mt := &memTransport{tb: t, srv: &Server{Rand: seededRand(1)}, server: server, client: client}
		st, err := (&Driver{Transport: mt, Rand: seededRand(2)}).Heal(ctx, client, "r")
		if err != nil {
			t.Fatal(err)
		}
		checkConverged(t, client, server, 0, unionOf(sOwn, newer))
		if got, want := st.Rounds, 2; got != want {
			t.Fatalf("rounds=%d, want %d", got, want)
		}
	})
	t.Run("FallsBackToV1", func(t *testing.T) {
		// A gateway without sync-v2 refuses the v field as an unknown one.
		client, server := newMemSet(nil, cOwn), newMemSet(nil, sOwn)
		srv := &Server{Rand: seededRand(1)}
		mt := &memTransport{tb: t, srv: srv, server: server, client: client}
		ft := &fakeTransport{sync: func(ctx context.Context, repo string, req *Request) (*Response, error) {
			if req.V != 0 {
				return nil, fmt.Errorf("%w: unknown field \"v\"", core.ErrInvalid)
			}
			return mt.Sync(ctx, repo, req)
		}}
		st, err := (&Driver{Transport: ft, Rand: seededRand(2)}).Heal(ctx, client, "r")
		if err != nil {
			t.Fatal(err)
		}
		checkConverged(t, client, server, 0, unionOf(cOwn, sOwn))
		if got, want := st.Rounds, 2; got != want {
			t.Fatalf("rounds=%d, want %d (version 1)", got, want)
		}
	})
	t.Run("FallsBackToV2", func(t *testing.T) {
		// A version 2 gateway (v0.1.0) refuses "v": 3 as an invalid
		// protocol version: the driver speaks version 2 to it.
		client, server := newMemSet(nil, cOwn), newMemSet(nil, sOwn)
		mt := &memTransport{tb: t, srv: &Server{Rand: seededRand(1)}, server: server, client: client}
		var versions []int
		ft := &fakeTransport{sync: func(ctx context.Context, repo string, req *Request) (*Response, error) {
			versions = append(versions, req.V)
			if req.V == Version3 {
				return nil, fmt.Errorf("%w: request: protocol version 3", core.ErrInvalid)
			}
			return mt.Sync(ctx, repo, req)
		}}
		st, err := (&Driver{Transport: ft, Rand: seededRand(2)}).Heal(ctx, client, "r")
		if err != nil {
			t.Fatal(err)
		}
		checkConverged(t, client, server, 0, unionOf(cOwn, sOwn))
		if versions[0] != Version3 || slices.ContainsFunc(versions[1:], func(v int) bool { return v != Version2 }) {
			t.Fatalf("versions %v, want 3 once then 2", versions)
		}
		if st.Rounds > 3 {
			t.Fatalf("rounds=%d, want at most 3", st.Rounds)
		}
	})
	t.Run("MaxRounds", func(t *testing.T) {
		// A server that never takes the pushed commits.
		client, server := newMemSet(nil, cOwn), newMemSet(nil, nil)
		srv := &Server{Rand: seededRand(1)}
		ft := &fakeTransport{sync: func(_ context.Context, _ string, req *Request) (*Response, error) {
			return srv.Answer(server, req)
		}}
		st, err := (&Driver{Transport: ft, Rand: seededRand(2), MaxRounds: 5}).Heal(ctx, client, "r")
		if !errors.Is(err, core.ErrConflict) {
			t.Fatalf("err=%v, want ErrConflict", err)
		}
		if got, want := st.Rounds, 5; got != want {
			t.Fatalf("rounds=%d, want %d", got, want)
		}
	})
	t.Run("IngestErrorStops", func(t *testing.T) {
		client, server := newMemSet(nil, nil), newMemSet(nil, sOwn)
		mt := &memTransport{tb: t, srv: &Server{Rand: seededRand(1)}, server: server}
		local := &fakeLocal{memSet: client, ingest: func(context.Context, []*core.Commit) error { return core.ErrSchema }}
		if _, err := (&Driver{Transport: mt, Rand: seededRand(2)}).Heal(ctx, local, "r"); !errors.Is(err, core.ErrSchema) {
			t.Fatalf("err=%v, want ErrSchema", err)
		}
	})
	t.Run("InvalidResponseStops", func(t *testing.T) {
		ft := &fakeTransport{sync: func(context.Context, string, *Request) (*Response, error) {
			return &Response{Count: -1}, nil
		}}
		if _, err := (&Driver{Transport: ft}).Heal(ctx, newMemSet(nil, cOwn), "r"); !errors.Is(err, core.ErrInvalid) {
			t.Fatalf("err=%v, want ErrInvalid", err)
		}
	})
	t.Run("CanceledContext", func(t *testing.T) {
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		ft := &fakeTransport{sync: func(context.Context, string, *Request) (*Response, error) {
			t.Fatal("round after cancel")
			return nil, nil
		}}
		if _, err := (&Driver{Transport: ft}).Heal(cctx, newMemSet(nil, cOwn), "r"); !errors.Is(err, context.Canceled) {
			t.Fatalf("err=%v, want Canceled", err)
		}
	})
}

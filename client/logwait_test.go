package client_test

import (
	"context"
	"testing"
	"time"

	"github.com/goat-gateway/goat-gateway/client"
	"github.com/goat-gateway/goat-gateway/core"
	"github.com/goat-gateway/goat-gateway/internal/goattest"
)

func TestClient_LogWait(t *testing.T) {
	ctx := context.Background()
	g := goattest.StartGateway(t, goattest.Config{})
	const sub, repo = "alice", "user.alice.poll"
	a := goattest.NewAuthor(t, g, sub)
	a.CreateRepo(t, repo)
	// A request timeout far below the wait: LogWait must extend it.
	c := newClient(t, g, sub, client.Options{Timeout: 100 * time.Millisecond})
	info, err := c.GetRepo(ctx, repo)
	if err != nil {
		t.Fatal(err)
	}

	t.Run("EmptyTailAfterWait", func(t *testing.T) {
		page, err := c.LogWait(ctx, repo, info.Cursor, 0, time.Second)
		if err != nil {
			t.Fatalf("LogWait: %v, want an empty tail page once the wait is over", err)
		}
		if got, want := len(page.Commits), 0; got != want || page.More || page.Next != info.Cursor {
			t.Fatalf("page = %d commits, more=%v, next=%q; want %d, a tail, next=%q", got, page.More, page.Next, want, info.Cursor)
		}
	})

	t.Run("AnswersWithTheCommit", func(t *testing.T) {
		type result struct {
			ids []string
			err error
		}
		done := make(chan result, 1)
		go func() {
			page, err := c.LogWait(ctx, repo, info.Cursor, 0, 30*time.Second)
			var r result
			r.err = err
			if page != nil {
				for _, raw := range page.Commits {
					cm, err := core.DecodeCommit(raw)
					if err != nil {
						r.err = err
						break
					}
					r.ids = append(r.ids, cm.ID.String())
				}
			}
			done <- r
		}()
		cm := a.Commit(repo, "k", map[string]any{"v": 1.0})
		a.Push(t, cm)
		r := goattest.Recv(t, done, "the long poll's answer")
		if r.err != nil || len(r.ids) != 1 || r.ids[0] != cm.ID.String() {
			t.Fatalf("LogWait = %v, %v; want the pushed commit %s", r.ids, r.err, cm.ID)
		}
	})
}

package api

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/goat-gateway/goat-gateway/auth"
	"github.com/goat-gateway/goat-gateway/core"
	"github.com/goat-gateway/goat-gateway/gen/apiserver"
	"github.com/goat-gateway/goat-gateway/storage"
)

// maxReplay bounds the records replayed after Last-Event-ID per repository;
// a client further behind gets `reset` and heals by reconciliation, which
// is cheaper for it and for us than a long replay.
const maxReplay = 10000

// sseRetry is the reconnect delay the stream asks for, in milliseconds.
const sseRetry = 2000

func (h handlers) GetEvents(ctx context.Context, req apiserver.GetEventsRequestObject) (apiserver.GetEventsResponseObject, error) {
	p := principalFrom(ctx)
	repos := slices.Clone(req.Params.Repo)
	slices.Sort(repos)
	repos = slices.Compact(repos)
	if len(repos) == 0 {
		return nil, fmt.Errorf("%w: repo: name at least one repository", core.ErrInvalid)
	}
	for _, name := range repos {
		r, release, err := h.repo(ctx, name, false)
		if err != nil {
			return nil, err
		}
		_ = r
		release()
	}
	last := ""
	if req.Params.LastEventIDQuery != nil {
		last = *req.Params.LastEventIDQuery
	}
	if req.Params.LastEventIDHeader != nil {
		last = *req.Params.LastEventIDHeader
	}
	var after *resumePoint
	if last != "" {
		node, seq, err := parseEventID(last)
		if err != nil {
			return nil, err
		}
		after = &resumePoint{node: node, seq: seq}
	}
	key := "sub:" + p.Sub
	if p.Anonymous {
		key = "anonymous"
	}
	if !h.s.streams.acquire(key) {
		return nil, fmt.Errorf("%w: more than %d concurrent streams for this caller", errRateLimited, h.s.cfg.MaxStreamsPerCaller)
	}
	return &eventStream{s: h.s, ctx: ctx, repos: repos, after: after, principal: p, limitKey: key}, nil
}

type resumePoint struct {
	node string
	seq  uint64
}

// eventStream is the response of GET /v1/events: it writes the stream when
// visited, until the client goes, the node shuts down, the subscriber is
// dropped for being slow, or the token expires.
type eventStream struct {
	s         *Server
	ctx       context.Context
	repos     []string
	after     *resumePoint
	principal auth.Principal
	limitKey  string
}

func (e *eventStream) VisitGetEventsResponse(w http.ResponseWriter) error {
	s := e.s
	sub, watermark := s.hub.subscribe(e.repos, s.cfg.SubscriberBuffer)
	defer func() {
		s.streams.release(e.limitKey)
		s.hub.unsubscribe(sub)
	}()

	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	bw := bufio.NewWriterSize(w, 16<<10)
	flush := func() error {
		_ = rc.SetWriteDeadline(time.Now().Add(s.cfg.WriteTimeout))
		if err := bw.Flush(); err != nil {
			return err
		}
		return rc.Flush()
	}
	node := s.store.NodeID().String()
	position := eventID(node, watermark)
	fmt.Fprintf(bw, "retry: %d\n\n", sseRetry)

	lastSent := watermark
	if e.after != nil {
		if e.after.node != node || e.after.seq > watermark {
			// Another node's (or an older) event log: nothing can be
			// replayed; every repository must reconcile.
			for _, repo := range e.repos {
				writeEvent(bw, position, "reset", resetData(repo, "event id from another event log"))
			}
		} else if err := e.replay(bw, node, position, watermark); err != nil {
			return err
		}
	}
	writeEvent(bw, position, "ready", []byte("{}"))
	if err := flush(); err != nil {
		return nil
	}

	heartbeat := time.NewTicker(s.cfg.Heartbeat)
	defer heartbeat.Stop()
	var expiry <-chan time.Time
	if !e.principal.Expires.IsZero() {
		t := time.NewTimer(time.Until(e.principal.Expires))
		defer t.Stop()
		expiry = t.C
	}
	for {
		select {
		case <-e.ctx.Done():
			return nil
		case <-sub.gone:
			return nil
		case <-expiry:
			writeEvent(bw, eventID(node, lastSent), "expired", []byte(`{"reason":"the token expired; reconnect with a fresh one"}`))
			_ = flush()
			return nil
		case <-heartbeat.C:
			_, _ = bw.WriteString(": ping\n\n")
			if err := flush(); err != nil {
				return nil
			}
		case ev := <-sub.ch:
			// Take everything already queued, then flush once.
			for {
				if ev.Seq > lastSent {
					writeEvent(bw, ev.ID, ev.Name, ev.Data)
					lastSent = ev.Seq
				}
				select {
				case ev = <-sub.ch:
					continue
				default:
				}
				break
			}
			if err := flush(); err != nil {
				return nil
			}
		}
	}
}

// replay writes the commits of every repository with sequence numbers in
// (after, watermark], in sequence order; a repository too far behind gets
// `reset` instead.
func (e *eventStream) replay(bw *bufio.Writer, node, position string, watermark uint64) error {
	var evs []event
	for _, name := range e.repos {
		r, release, err := e.s.store.Repo(name)
		if err != nil {
			writeEvent(bw, position, "reset", resetData(name, "repository unavailable"))
			continue
		}
		from := r.FirstAfterSeq(e.after.seq)
		var recs []storage.Record
		tooFar := false
		for off := from; ; {
			page, err := r.ReadLog(off, 1000)
			if err != nil {
				release()
				return err
			}
			for _, rec := range page {
				if rec.Seq > watermark {
					break
				}
				recs = append(recs, rec)
			}
			if len(page) < 1000 || page[len(page)-1].Seq > watermark {
				break
			}
			if len(recs) > maxReplay {
				tooFar = true
				break
			}
			off += int64(len(page))
		}
		release()
		if tooFar || len(recs) > maxReplay {
			writeEvent(bw, position, "reset", resetData(name, "too far behind to replay; reconcile"))
			continue
		}
		for _, rec := range recs {
			evs = append(evs, e.s.commitEvent(node, name, rec))
		}
	}
	slices.SortFunc(evs, func(a, b event) int {
		switch {
		case a.Seq < b.Seq:
			return -1
		case a.Seq > b.Seq:
			return 1
		}
		return 0
	})
	for _, ev := range evs {
		writeEvent(bw, ev.ID, ev.Name, ev.Data)
	}
	return nil
}

func resetData(repo, reason string) []byte {
	return []byte(`{"reason":` + strconv.Quote(reason) + `,"repo":` + strconv.Quote(repo) + `}`)
}

// writeEvent writes one SSE event. data is one line of JSON (canonical
// JSON never contains a raw newline).
func writeEvent(bw *bufio.Writer, id, name string, data []byte) {
	_, _ = bw.WriteString("id: ")
	_, _ = bw.WriteString(id)
	_, _ = bw.WriteString("\nevent: ")
	_, _ = bw.WriteString(name)
	_, _ = bw.WriteString("\ndata: ")
	_, _ = bw.Write(data)
	_, _ = bw.WriteString("\n\n")
}

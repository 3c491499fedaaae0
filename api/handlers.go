package api

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/goat-gateway/goat-gateway/auth"
	"github.com/goat-gateway/goat-gateway/core"
	"github.com/goat-gateway/goat-gateway/gen"
	"github.com/goat-gateway/goat-gateway/storage"
	gsync "github.com/goat-gateway/goat-gateway/sync"
)

// handlers implements the strict server interface generated from
// openapi.yaml. Errors are returned as errors and rendered as problems by
// Server.errorHandler.
type handlers struct{ s *Server }

var _ gen.StrictServerInterface = handlers{}

const (
	defaultLimit = 100
	maxLimit     = 1000
	// maxPushCommits bounds the commits of one push or sync request.
	maxPushCommits = 1000
	maxWait        = 30 * time.Second
)

func limitOf(p *gen.Limit) int {
	if p == nil || *p <= 0 {
		return defaultLimit
	}
	return min(int(*p), maxLimit)
}

// repo opens a repository for the caller: 404 if it does not exist or the
// caller may not read it, 403 if write is asked and not allowed.
func (h handlers) repo(ctx context.Context, name string, write bool) (*storage.Repo, func(), error) {
	if err := core.ValidateRepoName(name); err != nil {
		return nil, nil, err
	}
	if err := h.s.cfg.Rules.Authorize(principalFrom(ctx), name, write); err != nil {
		return nil, nil, err
	}
	return h.s.store.Repo(name)
}

func (h handlers) GetHealthz(ctx context.Context, _ gen.GetHealthzRequestObject) (gen.GetHealthzResponseObject, error) {
	return gen.GetHealthz200JSONResponse{Status: gen.HealthStatusOk}, nil
}

func (h handlers) GetReadyz(ctx context.Context, _ gen.GetReadyzRequestObject) (gen.GetReadyzResponseObject, error) {
	if h.s.ctx.Err() != nil {
		return nil, fmt.Errorf("%w: shutting down", core.ErrClosed)
	}
	return gen.GetReadyz200JSONResponse{Status: gen.HealthStatusOk}, nil
}

func (h handlers) GetMetrics(ctx context.Context, _ gen.GetMetricsRequestObject) (gen.GetMetricsResponseObject, error) {
	return metricsResponse{h.s.metrics}, nil
}

type metricsResponse struct{ m *metrics }

func (r metricsResponse) VisitGetMetricsResponse(w http.ResponseWriter) error {
	req, _ := http.NewRequest(http.MethodGet, "/metrics", nil)
	r.m.handler.ServeHTTP(w, req)
	return nil
}

func (h handlers) GetOpenAPI(ctx context.Context, _ gen.GetOpenAPIRequestObject) (gen.GetOpenAPIResponseObject, error) {
	return gen.GetOpenAPI200ApplicationyamlResponse{Body: bytes.NewReader(gen.Spec), ContentLength: int64(len(gen.Spec))}, nil
}

func (h handlers) GetInfo(ctx context.Context, _ gen.GetInfoRequestObject) (gen.GetInfoResponseObject, error) {
	node := h.s.store.NodeID().String()
	return gen.GetInfo200JSONResponse{
		NodeId:       node,
		Audience:     h.s.cfg.Audience,
		Version:      h.s.cfg.Version,
		LogId:        node,
		Capabilities: []string{"sync-v1", "sync-v2", "log-v1", "sse-v1", "merge-v1", "compression"},
		Limits: gen.Limits{
			MaxBodyBytes:         h.s.cfg.BodyLimit,
			MaxCommitBytes:       core.MaxCommitBytes,
			MaxCommitsPerRequest: maxPushCommits,
			MaxFilterBits:        gsync.MaxFilterBits,
			MaxPageLimit:         maxLimit,
			MaxWaitSeconds:       int32(maxWait / time.Second),
		},
	}, nil
}

func (h handlers) ListRepos(ctx context.Context, req gen.ListReposRequestObject) (gen.ListReposResponseObject, error) {
	names, err := h.s.store.List()
	if err != nil {
		return nil, err
	}
	p := principalFrom(ctx)
	limit := limitOf(req.Params.Limit)
	out := gen.ListRepos200JSONResponse{Repos: []gen.RepoListEntry{}}
	for _, n := range names {
		if req.Params.Prefix != nil && !strings.HasPrefix(n, *req.Params.Prefix) {
			continue
		}
		if req.Params.After != nil && n <= *req.Params.After {
			continue
		}
		if !h.s.cfg.Rules.CanRead(p, n) {
			continue
		}
		if len(out.Repos) == limit {
			next := out.Repos[len(out.Repos)-1].Name
			out.Next = &next
			break
		}
		out.Repos = append(out.Repos, gen.RepoListEntry{Name: n})
	}
	return out, nil
}

func (h handlers) repoInfo(r *storage.Repo) gen.RepoInfo {
	count, digest := r.State()
	return gen.RepoInfo{
		Name:   r.Name(),
		Count:  int64(count),
		Digest: hex.EncodeToString(digest[:]),
		Items:  int64(r.ItemCount()),
		LogId:  r.LogID().String(),
		Cursor: gsync.EncodeCursor(gsync.LogID(r.LogID()), uint64(r.LogLen())),
	}
}

func (h handlers) GetRepo(ctx context.Context, req gen.GetRepoRequestObject) (gen.GetRepoResponseObject, error) {
	r, release, err := h.repo(ctx, req.Repo, false)
	if err != nil {
		return nil, err
	}
	defer release()
	return gen.GetRepo200JSONResponse{Body: h.repoInfo(r), Headers: gen.GetRepo200ResponseHeaders{CacheControl: "no-cache"}}, nil
}

func (h handlers) CreateRepo(ctx context.Context, req gen.CreateRepoRequestObject) (gen.CreateRepoResponseObject, error) {
	if err := core.ValidateRepoName(req.Repo); err != nil {
		return nil, err
	}
	if err := h.s.cfg.Rules.Authorize(principalFrom(ctx), req.Repo, true); err != nil {
		return nil, err
	}
	r, release, err := h.s.store.Create(req.Repo)
	if err == nil {
		defer release()
		return gen.CreateRepo201JSONResponse(h.repoInfo(r)), nil
	}
	if !isConflict(err) {
		return nil, err
	}
	r, release, err = h.s.store.Repo(req.Repo)
	if err != nil {
		return nil, err
	}
	defer release()
	return gen.CreateRepo200JSONResponse(h.repoInfo(r)), nil
}

func isConflict(err error) bool { return err != nil && errorsIs(err, core.ErrConflict) }

// rawResponse writes stored canonical commit JSON as it is, which the
// generated encoders (encoding/json over structs) would re-encode.
type rawResponse struct {
	status  int
	headers map[string]string
	body    []byte
}

func (r rawResponse) visit(w http.ResponseWriter) error {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	for k, v := range r.headers {
		h.Set(k, v)
	}
	w.WriteHeader(r.status)
	_, err := w.Write(r.body)
	return err
}

func (r rawResponse) VisitGetCommitResponse(w http.ResponseWriter) error      { return r.visit(w) }
func (r rawResponse) VisitGetLogResponse(w http.ResponseWriter) error         { return r.visit(w) }
func (r rawResponse) VisitGetItemHistoryResponse(w http.ResponseWriter) error { return r.visit(w) }
func (r rawResponse) VisitSyncRoundResponse(w http.ResponseWriter) error      { return r.visit(w) }

// immutableCacheControl is public for repositories anyone may read.
func (h handlers) immutableCacheControl(repo string) string {
	if h.s.cfg.Rules.CanRead(auth.Anonymous(), repo) {
		return "public, max-age=31536000, immutable"
	}
	return "private, max-age=31536000, immutable"
}

// etagMatches implements If-None-Match (weak comparison, lists, *).
func etagMatches(inm *string, etag string) bool {
	if inm == nil {
		return false
	}
	for _, t := range strings.Split(*inm, ",") {
		t = strings.TrimPrefix(strings.TrimSpace(t), "W/")
		if t == "*" || t == etag {
			return true
		}
	}
	return false
}

func (h handlers) GetCommit(ctx context.Context, req gen.GetCommitRequestObject) (gen.GetCommitResponseObject, error) {
	id, err := core.ParseCommitID(req.Id)
	if err != nil {
		return nil, err
	}
	r, release, err := h.repo(ctx, req.Repo, false)
	if err != nil {
		return nil, err
	}
	defer release()
	etag := `"` + req.Id + `"`
	cc := h.immutableCacheControl(req.Repo)
	if !r.Has(id) {
		return nil, fmt.Errorf("%w: commit %s in %s", core.ErrNotFound, id, req.Repo)
	}
	if etagMatches(req.Params.IfNoneMatch, etag) {
		return gen.GetCommit304Response{Headers: gen.NotModifiedResponseHeaders{ETag: &etag}}, nil
	}
	rec, err := r.GetRecord(id)
	if err != nil {
		return nil, err
	}
	return rawResponse{status: 200, headers: map[string]string{"ETag": etag, "Cache-Control": cc}, body: rec.JSON}, nil
}

// appendCommitsJSON writes {"commits":[...]<rest>} from stored records.
func appendCommitsJSON(dst []byte, recs []storage.Record) []byte {
	dst = append(dst, `{"commits":[`...)
	for i, rec := range recs {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, rec.JSON...)
	}
	return append(dst, ']')
}

func (h handlers) GetLog(ctx context.Context, req gen.GetLogRequestObject) (gen.GetLogResponseObject, error) {
	r, release, err := h.repo(ctx, req.Repo, false)
	if err != nil {
		return nil, err
	}
	defer release()
	logID := gsync.LogID(r.LogID())
	var from uint64
	if req.Params.After != nil {
		cur, err := gsync.DecodeCursor(*req.Params.After)
		if err != nil {
			return nil, err
		}
		if err := cur.For(logID, uint64(r.LogLen())); err != nil {
			return nil, err
		}
		from = cur.Offset
	}
	limit := limitOf(req.Params.Limit)
	if req.Params.Wait != nil && *req.Params.Wait > 0 && int64(from) >= r.LogLen() {
		wait := min(time.Duration(*req.Params.Wait)*time.Second, maxWait)
		wctx, cancel := context.WithTimeout(ctx, wait)
		err := r.Wait(wctx, int64(from))
		cancel()
		if err != nil && ctx.Err() != nil {
			return nil, ctx.Err()
		}
	}
	recs, err := r.ReadLog(int64(from), limit)
	if err != nil {
		return nil, err
	}
	next := from + uint64(len(recs))
	full := len(recs) == limit
	body := appendCommitsJSON(make([]byte, 0, 64+len(recs)*512), recs)
	body = fmt.Appendf(body, `,"next":%q,"tail":%v}`, gsync.EncodeCursor(logID, next), !full)
	headers := map[string]string{"Cache-Control": "no-cache"}
	if full && req.Params.After != nil {
		headers["Cache-Control"] = h.immutableCacheControl(req.Repo)
		etag := fmt.Sprintf(`"%s-%d-%d"`, r.LogID(), from, len(recs))
		headers["ETag"] = etag
		if etagMatches(req.Params.IfNoneMatch, etag) {
			return logNotModified{etag: etag, cc: headers["Cache-Control"]}, nil
		}
	}
	return rawResponse{status: 200, headers: headers, body: body}, nil
}

type logNotModified struct{ etag, cc string }

func (r logNotModified) VisitGetLogResponse(w http.ResponseWriter) error {
	w.Header().Set("ETag", r.etag)
	w.Header().Set("Cache-Control", r.cc)
	w.WriteHeader(http.StatusNotModified)
	return nil
}

func (h handlers) GetItemHistory(ctx context.Context, req gen.GetItemHistoryRequestObject) (gen.GetItemHistoryResponseObject, error) {
	if err := core.ValidateKey(req.Key); err != nil {
		return nil, err
	}
	r, release, err := h.repo(ctx, req.Repo, false)
	if err != nil {
		return nil, err
	}
	defer release()
	limit := limitOf(req.Params.Limit)
	all, err := r.History(req.Key, 1<<30)
	if err != nil {
		return nil, err
	}
	if len(all) == 0 {
		return nil, fmt.Errorf("%w: item %q in %s", core.ErrNotFound, req.Key, req.Repo)
	}
	start := 0
	if req.Params.Before != nil {
		id, err := core.ParseCommitID(*req.Params.Before)
		if err != nil {
			return nil, err
		}
		i := slices.IndexFunc(all, func(rec storage.Record) bool { return rec.ID == id })
		if i < 0 {
			return nil, fmt.Errorf("%w: before: %s is not a commit of %q", core.ErrInvalid, id, req.Key)
		}
		start = i + 1
	}
	page := all[start:min(start+limit, len(all))]
	body := appendCommitsJSON(nil, page)
	if start+len(page) < len(all) && len(page) > 0 {
		body = fmt.Appendf(body, `,"next":%q`, page[len(page)-1].ID.String())
	}
	body = append(body, '}')
	return rawResponse{status: 200, headers: map[string]string{"Cache-Control": "private, no-cache"}, body: body}, nil
}

func (h handlers) ListItems(ctx context.Context, req gen.ListItemsRequestObject) (gen.ListItemsResponseObject, error) {
	r, release, err := h.repo(ctx, req.Repo, false)
	if err != nil {
		return nil, err
	}
	defer release()
	limit := limitOf(req.Params.Limit)
	withDeleted := req.Params.IncludeDeleted != nil && *req.Params.IncludeDeleted
	after := ""
	if req.Params.After != nil {
		after = *req.Params.After
	}
	out := gen.ListItems200JSONResponse{Items: []gen.Item{}}
	for len(out.Items) < limit {
		vals, err := r.Items(after, limit, withDeleted)
		if err != nil {
			return nil, err
		}
		for _, v := range vals {
			if req.Params.Schema != nil && v.Schema != *req.Params.Schema && !strings.HasPrefix(v.Schema, *req.Params.Schema+"/") {
				continue
			}
			if len(out.Items) == limit {
				break
			}
			out.Items = append(out.Items, h.item(v))
		}
		if len(vals) < limit {
			return out, nil
		}
		after = vals[len(vals)-1].Key
		if len(out.Items) == limit {
			break
		}
	}
	if len(out.Items) > 0 {
		next := out.Items[len(out.Items)-1].Key
		out.Next = &next
	}
	return out, nil
}

// item renders a value as an Item, with schema defaults applied for
// readers.
func (h handlers) item(v storage.Value) gen.Item {
	data := v.Data
	if sc, err := h.s.reg.Get(v.Schema); err == nil && !v.Deleted {
		data = sc.WithDefaults(data)
	}
	it := gen.Item{Key: v.Key, Schema: v.Schema, Data: data, Head: v.Head.String(), Ts: v.TS}
	if v.Deleted {
		t := true
		it.Deleted = &t
	}
	return it
}

func (h handlers) GetItem(ctx context.Context, req gen.GetItemRequestObject) (gen.GetItemResponseObject, error) {
	if err := core.ValidateKey(req.Key); err != nil {
		return nil, err
	}
	r, release, err := h.repo(ctx, req.Repo, false)
	if err != nil {
		return nil, err
	}
	defer release()
	v, err := r.Value(req.Key)
	if err != nil {
		return nil, err
	}
	if v.Deleted {
		return nil, fmt.Errorf("%w: item %q was deleted (its history remains)", core.ErrNotFound, req.Key)
	}
	etag := `"` + v.Head.String() + `"`
	cc := "private, no-cache"
	if etagMatches(req.Params.IfNoneMatch, etag) {
		return gen.GetItem304Response{Headers: gen.NotModifiedResponseHeaders{ETag: &etag}}, nil
	}
	return gen.GetItem200JSONResponse{Body: h.item(v), Headers: gen.GetItem200ResponseHeaders{ETag: etag, CacheControl: cc}}, nil
}

// decodeCommits parses the commits of a push or sync body strictly (the
// generated binding is lenient: duplicate keys, case-insensitive names).
// A commit that does not decode is reported as rejected, by index.
func decodeCommits(raws []json.RawMessage) ([]*core.Commit, []error) {
	commits := make([]*core.Commit, len(raws))
	errs := make([]error, len(raws))
	for i, raw := range raws {
		commits[i], errs[i] = core.DecodeCommit(raw)
	}
	return commits, errs
}

// ingest appends client commits and reports a verdict per commit, in the
// request's order.
func (h handlers) ingest(ctx context.Context, r *storage.Repo, raws []json.RawMessage) ([]gen.PushResult, error) {
	if len(raws) > maxPushCommits {
		return nil, fmt.Errorf("%w: %d commits in one request, more than %d", core.ErrTooLarge, len(raws), maxPushCommits)
	}
	commits, errs := decodeCommits(raws)
	results := make([]gen.PushResult, len(raws))
	var batch []*core.Commit
	var at []int
	for i, c := range commits {
		if errs[i] != nil {
			results[i] = rejected(idOf(raws[i]), errs[i])
			continue
		}
		batch = append(batch, c)
		at = append(at, i)
	}
	if len(batch) > 0 {
		verify := h.s.verifyFromClient
		if principalFrom(ctx).Node {
			verify = h.s.verifyReplicated
		}
		res, err := r.AppendVerified(ctx, batch, verify)
		if err != nil {
			return nil, err
		}
		for j, x := range res {
			i := at[j]
			switch x.Status {
			case storage.Appended:
				results[i] = gen.PushResult{Id: x.ID.String(), Status: gen.PushResultStatusAccepted}
			case storage.Duplicate:
				results[i] = gen.PushResult{Id: x.ID.String(), Status: gen.PushResultStatusDuplicate}
			default:
				results[i] = rejected(x.ID.String(), x.Err)
			}
		}
	}
	return results, nil
}

func rejected(id string, err error) gen.PushResult {
	reason := err.Error()
	pt := gen.ProblemType(ProblemFor(err).Type)
	return gen.PushResult{Id: id, Status: gen.PushResultStatusRejected, Reason: &reason, ProblemType: &pt}
}

// idOf digs the claimed id out of a commit that did not decode, for the
// verdict; the zero id when there is none.
func idOf(raw json.RawMessage) string {
	var probe struct {
		ID string `json:"id"`
	}
	if json.Unmarshal(raw, &probe) == nil {
		if _, err := core.ParseCommitID(probe.ID); err == nil {
			return probe.ID
		}
	}
	return core.ZeroID.String()
}

func (h handlers) PushCommits(ctx context.Context, req gen.PushCommitsRequestObject) (gen.PushCommitsResponseObject, error) {
	r, release, err := h.repo(ctx, req.Repo, true)
	if err != nil {
		return nil, err
	}
	defer release()
	var body struct {
		Commits []json.RawMessage `json:"commits"`
	}
	if err := json.Unmarshal(rawBody(ctx), &body); err != nil {
		return nil, fmt.Errorf("%w: body: %v", core.ErrInvalid, err)
	}
	results, err := h.ingest(ctx, r, body.Commits)
	if err != nil {
		return nil, err
	}
	return gen.PushCommits200JSONResponse{Results: results}, nil
}

// repoSet adapts a repository to the sync protocol's Set.
type repoSet struct {
	r     *storage.Repo
	count int
	xor   [32]byte
	end   int64
}

func newRepoSet(r *storage.Repo) *repoSet {
	end := r.LogLen()
	count, xor := r.State()
	return &repoSet{r: r, count: count, xor: xor, end: end}
}

func (s *repoSet) Digest() gsync.Digest {
	return gsync.Digest{Count: int64(s.count), XOR: gsync.Sum(s.xor)}
}

func (s *repoSet) Walk(fn func(core.CommitID) bool) {
	s.r.EachID(0, func(off int64, id core.CommitID) bool {
		return off < s.end && fn(id)
	})
}

func (s *repoSet) Get(id core.CommitID) (*core.Commit, bool) { return s.r.Commit(id) }

// WalkTS implements gsync.TSWalker from the index, for sync-v2 partitions.
func (s *repoSet) WalkTS(fn func(core.CommitID, int64) bool) {
	s.r.EachIDTS(0, func(off int64, id core.CommitID, ts int64) bool {
		return off < s.end && fn(id, ts)
	})
}

func (h handlers) SyncRound(ctx context.Context, req gen.SyncRoundRequestObject) (gen.SyncRoundResponseObject, error) {
	write := req.Body != nil && req.Body.Commits != nil && len(*req.Body.Commits) > 0
	r, release, err := h.repo(ctx, req.Repo, write)
	if err != nil {
		return nil, err
	}
	defer release()
	sreq, err := gsync.DecodeRequest(rawBody(ctx))
	if err != nil {
		return nil, err
	}
	var results []gen.PushResult
	// A sync-v2 request may push up to gsync.MaxStream commits (DecodeRequest
	// checked); they are ingested maxPushCommits at a time, in order, so
	// parents land before children.
	for i := 0; i < len(sreq.Commits); i += maxPushCommits {
		res, err := h.ingest(ctx, r, sreq.Commits[i:min(i+maxPushCommits, len(sreq.Commits))])
		if err != nil {
			return nil, err
		}
		results = append(results, res...)
	}
	srv := gsync.Server{Rand: rand.Reader}
	resp, err := srv.Answer(newRepoSet(r), sreq)
	if err != nil {
		return nil, err
	}
	h.s.metrics.rounds.WithLabelValues(strconv.FormatBool(resp.InSync)).Inc()
	body, err := resp.MarshalJSON()
	if err != nil {
		return nil, err
	}
	if results != nil {
		rb, _ := json.Marshal(results)
		body = append(append(append(body[:len(body)-1], `,"results":`...), rb...), '}')
	}
	return rawResponse{status: 200, headers: map[string]string{"Cache-Control": "no-store"}, body: body}, nil
}

func (h handlers) ListSchemas(ctx context.Context, _ gen.ListSchemasRequestObject) (gen.ListSchemasResponseObject, error) {
	if !h.s.cfg.Rules.CanRead(principalFrom(ctx), auth.SchemasRepo) {
		return nil, fmt.Errorf("%w: reading schemas needs a token", core.ErrUnauthenticated)
	}
	out := gen.ListSchemas200JSONResponse{Schemas: []gen.ItemSchema{}}
	for _, sc := range h.s.reg.List() {
		var is gen.ItemSchema
		b, _ := json.Marshal(sc)
		if err := json.Unmarshal(b, &is); err != nil {
			return nil, err
		}
		out.Schemas = append(out.Schemas, is)
	}
	return out, nil
}

func (h handlers) PutSchema(ctx context.Context, req gen.PutSchemaRequestObject) (gen.PutSchemaResponseObject, error) {
	p := principalFrom(ctx)
	if !(h.s.cfg.Dev && p.Authenticated()) {
		if err := h.s.cfg.Rules.Authorize(p, auth.SchemasRepo, true); err != nil {
			return nil, err
		}
	}
	// Strictly, like every other body: a duplicate key must not pass.
	parsed, err := core.ParseJSON(rawBody(ctx))
	if err != nil {
		return nil, err
	}
	body, ok := parsed.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("%w: body: not an object", core.ErrInvalid)
	}
	body["ns"], body["version"] = req.Ns, req.Version
	b, _ := json.Marshal(body)
	sc, err := core.DecodeSchema(b)
	if err != nil {
		return nil, err
	}
	if old, err := h.s.reg.Get(sc.Ref()); err == nil {
		if err := h.s.reg.Add(sc); err != nil {
			return nil, err
		}
		return gen.PutSchema200JSONResponse(toGenSchema(old)), nil
	}
	if sc.Version > 1 {
		if _, err := h.s.reg.Get(core.SchemaRef(sc.NS, sc.Version-1)); err != nil {
			return nil, fmt.Errorf("%w: publish %s first: upgrades go one version at a time", core.ErrSchema, core.SchemaRef(sc.NS, sc.Version-1))
		}
	}
	data, err := core.Normalize(body)
	if err != nil {
		return nil, err
	}
	if err := h.s.writeAsNode(ctx, auth.SchemasRepo, schemaKey(sc.NS, sc.Version), core.AnySchema, data.(map[string]any)); err != nil {
		return nil, err
	}
	if err := h.s.reg.Add(sc); err != nil {
		return nil, err
	}
	return gen.PutSchema201JSONResponse(toGenSchema(sc)), nil
}

func toGenSchema(sc *core.Schema) gen.ItemSchema {
	var is gen.ItemSchema
	b, _ := json.Marshal(sc)
	_ = json.Unmarshal(b, &is)
	return is
}

func (h handlers) CreateSession(ctx context.Context, req gen.CreateSessionRequestObject) (gen.CreateSessionResponseObject, error) {
	p := principalFrom(ctx)
	if !p.Authenticated() {
		return nil, fmt.Errorf("%w: registering a session needs a token", core.ErrUnauthenticated)
	}
	// The generated binding is lenient (duplicate keys, last wins).
	if _, err := core.ParseJSON(rawBody(ctx)); err != nil {
		return nil, err
	}
	body := req.Body
	expires := time.UnixMilli(body.Expires).UTC()
	sreq := auth.SessionRequest{PublicKey: body.PublicKey, Proof: body.Proof, Expires: expires.Format(core.DateLayout)}
	reg := auth.Registrar{Audience: h.s.cfg.Audience, Root: h.s.root}
	sess, err := reg.Register(sreq, p, h.s.now())
	if err != nil {
		return nil, err
	}
	if old, err := h.s.sessions.Session(sess.ID); err == nil {
		if old.Owner != sess.Owner {
			return nil, fmt.Errorf("%w: this key is registered to another owner", core.ErrConflict)
		}
		return gen.CreateSession200JSONResponse(toGenSession(old)), nil
	}
	if err := h.s.writeAsNode(ctx, auth.SessionsRepo, sess.ID, auth.SessionSchemaRef, sess.Data()); err != nil {
		return nil, err
	}
	if err := h.s.sessions.Put(sess); err != nil {
		return nil, err
	}
	return gen.CreateSession201JSONResponse(toGenSession(sess)), nil
}

func toGenSession(s auth.Session) gen.Session {
	out := gen.Session{Id: s.ID, Owner: s.Owner, PublicKey: b64url(s.PublicKey), Expires: s.Expires.UnixMilli()}
	if !s.Revoked.IsZero() {
		r := s.Revoked.UnixMilli()
		out.Revoked = &r
	}
	return out
}

func (h handlers) GetSession(ctx context.Context, req gen.GetSessionRequestObject) (gen.GetSessionResponseObject, error) {
	if !principalFrom(ctx).Authenticated() {
		return nil, fmt.Errorf("%w: reading sessions needs a token", core.ErrUnauthenticated)
	}
	sess, err := h.s.sessions.Session(req.Id)
	if err != nil || sess.Node {
		return nil, fmt.Errorf("%w: session %q", core.ErrNotFound, req.Id)
	}
	return gen.GetSession200JSONResponse(toGenSession(sess)), nil
}

// RevokeSession revokes one of the caller's sessions (an admin may revoke
// any). Commits the session signed before stay valid; new ones are
// refused everywhere the revocation has replicated.
func (h handlers) RevokeSession(ctx context.Context, req gen.RevokeSessionRequestObject) (gen.RevokeSessionResponseObject, error) {
	p := principalFrom(ctx)
	if !p.Authenticated() {
		return nil, fmt.Errorf("%w: revoking a session needs a token", core.ErrUnauthenticated)
	}
	sess, err := h.s.sessions.Session(req.Id)
	if err != nil || sess.Node || (sess.Owner != p.Sub && !p.HasRole(auth.AdminRole)) {
		return nil, fmt.Errorf("%w: session %q", core.ErrNotFound, req.Id)
	}
	if sess.Revoked.IsZero() {
		sess = sess.RevokeAt(h.s.now())
		if err := h.s.writeAsNode(ctx, auth.SessionsRepo, sess.ID, auth.SessionSchemaRef, sess.Data()); err != nil {
			return nil, err
		}
		if err := h.s.sessions.Put(sess); err != nil {
			return nil, err
		}
		h.s.custody.forget(sess.ID)
	}
	return gen.RevokeSession200JSONResponse(toGenSession(sess)), nil
}

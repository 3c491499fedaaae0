package api

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/goat-gateway/goat-gateway/auth"
	"github.com/goat-gateway/goat-gateway/core"
	"github.com/goat-gateway/goat-gateway/gen"
	"github.com/goat-gateway/goat-gateway/gen/apiserver"
	"github.com/goat-gateway/goat-gateway/gen/models"
	"github.com/goat-gateway/goat-gateway/node"
	gsync "github.com/goat-gateway/goat-gateway/sync"
)

// handlers implements the strict server interface generated from
// openapi.yaml: each parses its request, calls the node, and maps the
// result. Errors are returned as errors and rendered as problems by
// Server.errorHandler.
type handlers struct{ s *Server }

var _ apiserver.StrictServerInterface = handlers{}

const (
	defaultLimit = 100
	maxLimit     = 1000
	maxWait      = 30 * time.Second
)

func limitOf(p *models.Limit) int {
	if p == nil || *p <= 0 {
		return defaultLimit
	}
	return min(int(*p), maxLimit)
}

func (h handlers) GetHealthz(ctx context.Context, _ apiserver.GetHealthzRequestObject) (apiserver.GetHealthzResponseObject, error) {
	return apiserver.GetHealthz200JSONResponse{Status: models.HealthStatusOk}, nil
}

// maxDamagedListed bounds the repositories /readyz names one by one; the
// storage check counts them all.
const maxDamagedListed = 32

func (h handlers) GetReadyz(ctx context.Context, _ apiserver.GetReadyzRequestObject) (apiserver.GetReadyzResponseObject, error) {
	if err := h.s.node.Ready(); err != nil {
		return nil, err
	}
	if bad := h.s.node.Damaged(); len(bad) > 0 {
		// A damaged repository answers every request with an error until
		// an operator repairs it, so the node is not ready: the balancer
		// stops routing here and the check names what to repair.
		checks := map[string]string{"storage": fmt.Sprintf("%d damaged repositories: stop the node and run goat-gateway fsck --repair", len(bad))}
		for _, name := range bad[:min(len(bad), maxDamagedListed)] {
			checks["repo:"+name] = "damaged"
		}
		return apiserver.GetReadyz503JSONResponse{Status: models.HealthStatusUnavailable, Checks: &checks}, nil
	}
	return apiserver.GetReadyz200JSONResponse{Status: models.HealthStatusOk}, nil
}

func (h handlers) GetMetrics(ctx context.Context, _ apiserver.GetMetricsRequestObject) (apiserver.GetMetricsResponseObject, error) {
	return metricsResponse{h.s.metrics}, nil
}

type metricsResponse struct{ m *metrics }

func (r metricsResponse) VisitGetMetricsResponse(w http.ResponseWriter) error {
	req, _ := http.NewRequest(http.MethodGet, "/metrics", nil)
	r.m.handler.ServeHTTP(w, req)
	return nil
}

func (h handlers) GetOpenAPI(ctx context.Context, _ apiserver.GetOpenAPIRequestObject) (apiserver.GetOpenAPIResponseObject, error) {
	return apiserver.GetOpenAPI200ApplicationyamlResponse{Body: bytes.NewReader(gen.Spec), ContentLength: int64(len(gen.Spec))}, nil
}

func (h handlers) GetInfo(ctx context.Context, _ apiserver.GetInfoRequestObject) (apiserver.GetInfoResponseObject, error) {
	id := h.s.node.ID()
	return apiserver.GetInfo200JSONResponse{
		NodeId:       id,
		Audience:     h.s.node.Audience(),
		RootKeys:     rootKeys(h.s.node.RootKeys()),
		Version:      h.s.cfg.Version,
		LogId:        id,
		Capabilities: []string{"sync-v1", "sync-v2", "sync-v3", "log-v1", "sse-v1", "merge-v1", "compression"},
		Limits: models.Limits{
			MaxBodyBytes:         h.s.cfg.BodyLimit,
			MaxCommitBytes:       core.MaxCommitBytes,
			MaxCommitsPerRequest: node.MaxCommitsPerRequest,
			MaxFilterBits:        advertisedFilterBits(h.s.cfg.BodyLimit),
			MaxPageLimit:         maxLimit,
			MaxWaitSeconds:       int32(maxWait / time.Second),
		},
	}, nil
}

func rootKeys(keys []ed25519.PublicKey) []string {
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = b64url(k)
	}
	return out
}

func (h handlers) ListRepos(ctx context.Context, req apiserver.ListReposRequestObject) (apiserver.ListReposResponseObject, error) {
	var prefix, after string
	if req.Params.Prefix != nil {
		prefix = *req.Params.Prefix
	}
	if req.Params.After != nil {
		after = *req.Params.After
	}
	names, more, err := h.s.node.ListRepos(principalFrom(ctx), prefix, after, limitOf(req.Params.Limit))
	if err != nil {
		return nil, err
	}
	out := apiserver.ListRepos200JSONResponse{Repos: make([]models.RepoListEntry, 0, len(names))}
	for _, n := range names {
		out.Repos = append(out.Repos, models.RepoListEntry{Name: n})
	}
	if more && len(names) > 0 {
		next := names[len(names)-1]
		out.Next = &next
	}
	return out, nil
}

func repoInfo(ri node.RepoInfo) models.RepoInfo {
	return models.RepoInfo{
		Name:   ri.Name,
		Count:  int64(ri.Count),
		Digest: hex.EncodeToString(ri.Digest[:]),
		Items:  int64(ri.Items),
		LogId:  ri.LogID,
		Cursor: ri.Cursor,
	}
}

func (h handlers) GetRepo(ctx context.Context, req apiserver.GetRepoRequestObject) (apiserver.GetRepoResponseObject, error) {
	r, err := h.s.node.Open(principalFrom(ctx), req.Repo, false)
	if err != nil {
		return nil, err
	}
	defer r.Release()
	return apiserver.GetRepo200JSONResponse{Body: repoInfo(r.Info()), Headers: apiserver.GetRepo200ResponseHeaders{CacheControl: "no-cache"}}, nil
}

func (h handlers) DeleteRepo(ctx context.Context, req apiserver.DeleteRepoRequestObject) (apiserver.DeleteRepoResponseObject, error) {
	if err := h.s.node.DeleteRepo(ctx, principalFrom(ctx), req.Repo); err != nil {
		return nil, err
	}
	return apiserver.DeleteRepo204Response{}, nil
}

func (h handlers) CreateRepo(ctx context.Context, req apiserver.CreateRepoRequestObject) (apiserver.CreateRepoResponseObject, error) {
	ri, created, err := h.s.node.CreateRepo(ctx, principalFrom(ctx), req.Repo)
	if err != nil {
		return nil, err
	}
	if created {
		return apiserver.CreateRepo201JSONResponse(repoInfo(ri)), nil
	}
	return apiserver.CreateRepo200JSONResponse(repoInfo(ri)), nil
}

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
	if h.s.node.CanRead(auth.Anonymous(), repo) {
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

func (h handlers) GetCommit(ctx context.Context, req apiserver.GetCommitRequestObject) (apiserver.GetCommitResponseObject, error) {
	id, err := core.ParseCommitID(req.Id)
	if err != nil {
		return nil, err
	}
	r, err := h.s.node.Open(principalFrom(ctx), req.Repo, false)
	if err != nil {
		return nil, err
	}
	defer r.Release()
	rec, err := r.Record(id)
	if err != nil {
		return nil, err
	}
	etag := `"` + req.Id + `"`
	cc := h.immutableCacheControl(req.Repo)
	if etagMatches(req.Params.IfNoneMatch, etag) {
		return apiserver.GetCommit304Response{Headers: apiserver.NotModifiedResponseHeaders{ETag: &etag}}, nil
	}
	return rawResponse{status: 200, headers: map[string]string{"ETag": etag, "Cache-Control": cc}, body: rec.JSON}, nil
}

// appendCommitsJSON writes {"commits":[...]<rest>} from stored records.
func appendCommitsJSON(dst []byte, recs []node.Record) []byte {
	dst = append(dst, `{"commits":[`...)
	for i, rec := range recs {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, rec.JSON...)
	}
	return append(dst, ']')
}

func (h handlers) GetLog(ctx context.Context, req apiserver.GetLogRequestObject) (apiserver.GetLogResponseObject, error) {
	r, err := h.s.node.Open(principalFrom(ctx), req.Repo, false)
	if err != nil {
		return nil, err
	}
	defer r.Release()
	logID := r.LogID()
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
		err := r.WaitLog(wctx, int64(from))
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
		etag := fmt.Sprintf(`"%s-%d-%d"`, r.Info().LogID, from, len(recs))
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

func (h handlers) GetItemHistory(ctx context.Context, req apiserver.GetItemHistoryRequestObject) (apiserver.GetItemHistoryResponseObject, error) {
	if err := core.ValidateKey(req.Key); err != nil {
		return nil, err
	}
	r, err := h.s.node.Open(principalFrom(ctx), req.Repo, false)
	if err != nil {
		return nil, err
	}
	defer r.Release()
	limit := limitOf(req.Params.Limit)
	var before core.CommitID
	if req.Params.Before != nil {
		if before, err = core.ParseCommitID(*req.Params.Before); err != nil {
			return nil, err
		}
	}
	// One record more than the page says whether there is a next page.
	page, err := r.History(req.Key, before, limit+1)
	if err != nil && !before.IsZero() {
		// A before for an item that does not exist: the item is what is
		// missing, as without a before.
		if newest, herr := r.History(req.Key, core.CommitID{}, 1); herr == nil && len(newest) == 0 {
			return nil, fmt.Errorf("%w: item %q in %s", core.ErrNotFound, req.Key, req.Repo)
		}
	}
	if err != nil {
		return nil, err
	}
	if len(page) == 0 && before.IsZero() {
		return nil, fmt.Errorf("%w: item %q in %s", core.ErrNotFound, req.Key, req.Repo)
	}
	more := len(page) > limit
	page = page[:min(limit, len(page))]
	body := appendCommitsJSON(nil, page)
	if req.Params.Resolve != nil && *req.Params.Resolve {
		if body, err = h.appendResolved(body, r, req.Key, req.Params.Schema, page); err != nil {
			return nil, err
		}
	} else if req.Params.Schema != nil {
		return nil, fmt.Errorf("%w: schema: only with resolve=true (it picks the branch values are resolved on)", core.ErrInvalid)
	}
	if more {
		body = fmt.Appendf(body, `,"next":%q`, page[len(page)-1].ID.String())
	}
	body = append(body, '}')
	return rawResponse{status: 200, headers: map[string]string{"Cache-Control": "private, no-cache"}, body: body}, nil
}

// appendResolved adds `,"values":[...]` to a history page: the item as
// of each commit, on the branch of schema (nil: the newest).
func (h handlers) appendResolved(body []byte, r *node.Repo, key string, schema *string, page []node.Record) ([]byte, error) {
	var ref string
	if schema != nil {
		ref = *schema
	}
	view, err := h.s.node.Branch(ref)
	if err != nil {
		return nil, err
	}
	vals := make([]*models.ResolvedValue, len(page))
	for i, rec := range page {
		v, err := r.ValueAt(key, rec.ID, view)
		if errors.Is(err, core.ErrSchema) {
			continue // newer than the branch: null
		}
		if err != nil {
			return nil, err
		}
		rv := &models.ResolvedValue{Schema: v.Schema, Data: v.Data}
		if v.Deleted {
			t := true
			rv.Deleted = &t
		}
		vals[i] = rv
	}
	b, err := json.Marshal(vals)
	if err != nil {
		return nil, err
	}
	body = append(body, `,"values":`...)
	return append(body, b...), nil
}

func (h handlers) ListItems(ctx context.Context, req apiserver.ListItemsRequestObject) (apiserver.ListItemsResponseObject, error) {
	r, err := h.s.node.Open(principalFrom(ctx), req.Repo, false)
	if err != nil {
		return nil, err
	}
	defer r.Release()
	var after, schema string
	if req.Params.After != nil {
		after = *req.Params.After
	}
	if req.Params.Schema != nil {
		schema = *req.Params.Schema
	}
	withDeleted := req.Params.IncludeDeleted != nil && *req.Params.IncludeDeleted
	vals, more, err := r.Items(after, limitOf(req.Params.Limit), withDeleted, schema)
	if err != nil {
		return nil, err
	}
	out := apiserver.ListItems200JSONResponse{Items: make([]models.Item, 0, len(vals))}
	for _, v := range vals {
		out.Items = append(out.Items, item(v))
	}
	if more && len(vals) > 0 {
		next := vals[len(vals)-1].Key
		out.Next = &next
	}
	return out, nil
}

// item renders a value as an Item.
func item(v node.Value) models.Item {
	it := models.Item{Key: v.Key, Schema: v.Schema, Data: v.Data, Head: v.Head.String(), Ts: v.TS}
	if v.Deleted {
		t := true
		it.Deleted = &t
	}
	return it
}

func (h handlers) GetItem(ctx context.Context, req apiserver.GetItemRequestObject) (apiserver.GetItemResponseObject, error) {
	if err := core.ValidateKey(req.Key); err != nil {
		return nil, err
	}
	var schema string
	if req.Params.Schema != nil {
		schema = *req.Params.Schema
	}
	view, err := h.s.node.Branch(schema)
	if err != nil {
		return nil, err
	}
	if req.Params.At != nil && req.Params.AsOf != nil {
		return nil, fmt.Errorf("%w: at and asOf: give one (a commit, or a time)", core.ErrInvalid)
	}
	var at core.CommitID
	if req.Params.At != nil {
		if at, err = core.ParseCommitID(*req.Params.At); err != nil {
			return nil, fmt.Errorf("at: %w", err)
		}
	}
	if req.Params.AsOf != nil {
		ms, err := node.ParseAsOf(*req.Params.AsOf)
		if err != nil {
			return nil, err
		}
		view = view.At(ms)
	}
	r, err := h.s.node.Open(principalFrom(ctx), req.Repo, false)
	if err != nil {
		return nil, err
	}
	defer r.Release()
	var v node.Value
	if req.Params.At != nil {
		v, err = r.ValueAt(req.Key, at, view)
	} else {
		v, err = r.ValueIn(req.Key, view)
	}
	if err != nil {
		return nil, err
	}
	travel := req.Params.At != nil || view.HasAsOf
	if v.Deleted && !travel {
		return nil, fmt.Errorf("%w: item %q was deleted (its history remains)", core.ErrNotFound, req.Key)
	}
	etag := `"` + v.Head.String() + `"`
	cc := "private, no-cache"
	if etagMatches(req.Params.IfNoneMatch, etag) {
		return apiserver.GetItem304Response{Headers: apiserver.NotModifiedResponseHeaders{ETag: &etag}}, nil
	}
	return apiserver.GetItem200JSONResponse{Body: item(v), Headers: apiserver.GetItem200ResponseHeaders{ETag: etag, CacheControl: cc}}, nil
}

// decodedCommits are the commits of a push or sync body: those that
// decoded, for the node, and a verdict slot for each commit of the body.
type decodedCommits struct {
	batch   []*core.Commit
	at      []int // index in the body of each of batch
	results []gsync.PushResult
}

// decodeCommits decodes n commits strictly; one that does not decode is
// rejected by index (with the id it claims, if any), and the rest go on.
func decodeCommits(n int, decode func(i int) (*core.Commit, error), claimed func(i int) string) decodedCommits {
	d := decodedCommits{results: make([]gsync.PushResult, n)}
	for i := range n {
		c, err := decode(i)
		if err != nil {
			d.results[i] = rejected(claimed(i), err)
			continue
		}
		d.batch = append(d.batch, c)
		d.at = append(d.at, i)
	}
	return d
}

// verdicts fills in the node's results for the decoded commits.
func (d decodedCommits) verdicts(res []node.Result) []gsync.PushResult {
	for j, x := range res {
		i := d.at[j]
		switch x.Status {
		case node.Appended:
			d.results[i] = gsync.PushResult{ID: x.ID.String(), Status: gsync.StatusAccepted}
		case node.Duplicate:
			d.results[i] = gsync.PushResult{ID: x.ID.String(), Status: gsync.StatusDuplicate}
		default:
			d.results[i] = rejected(x.ID.String(), x.Err)
		}
	}
	return d.results
}

// maxReason is the PushResult schema's maxLength of reason; reasons quote
// input (a field, a value), so they are cut to fit.
const maxReason = 1024

func rejected(id string, err error) gsync.PushResult {
	reason := err.Error()
	if len(reason) > maxReason {
		reason = strings.ToValidUTF8(reason[:maxReason-3], "") + "..."
	}
	return gsync.PushResult{ID: id, Status: gsync.StatusRejected, Reason: reason, ProblemType: ProblemFor(err).Type}
}

// claimedID is the id a commit that did not decode claims, for its
// verdict; the zero id when it claims none.
func claimedID(v any) string {
	if m, ok := v.(map[string]any); ok {
		if s, ok := m["id"].(string); ok {
			if id, err := core.ParseCommitID(s); err == nil {
				return id.String()
			}
		}
	}
	return core.ZeroID.String()
}

func (h handlers) PushCommits(ctx context.Context, req apiserver.PushCommitsRequestObject) (apiserver.PushCommitsResponseObject, error) {
	if p, ok := bodyValue(ctx).(*canonicalPush); ok {
		// Every commit decoded (decodeCanonicalPush), with its bytes.
		d := decodedCommits{batch: p.commits, at: make([]int, len(p.commits)), results: make([]gsync.PushResult, len(p.commits))}
		for i := range d.at {
			d.at[i] = i
		}
		res, err := h.s.node.PushEncoded(ctx, principalFrom(ctx), req.Repo, p.commits, p.encoded)
		if err != nil {
			return nil, err
		}
		return pushResponse{d.verdicts(res)}, nil
	}
	body, err := bodyObject(ctx)
	if err != nil {
		return nil, err
	}
	commits, _ := body["commits"].([]any)
	d := decodeCommits(len(commits),
		func(i int) (*core.Commit, error) { return core.DecodeCommitValue(commits[i]) },
		func(i int) string { return claimedID(commits[i]) })
	res, err := h.s.node.Push(ctx, principalFrom(ctx), req.Repo, d.batch)
	if err != nil {
		return nil, err
	}
	return pushResponse{d.verdicts(res)}, nil
}

type pushResponse struct{ results []gsync.PushResult }

func (r pushResponse) VisitPushCommitsResponse(w http.ResponseWriter) error {
	b, err := json.Marshal(struct {
		Results []gsync.PushResult `json:"results"`
	}{r.results})
	if err != nil {
		return err
	}
	return rawResponse{status: 200, body: b}.visit(w)
}

func (h handlers) SyncRound(ctx context.Context, req apiserver.SyncRoundRequestObject) (apiserver.SyncRoundResponseObject, error) {
	sreq, err := gsync.DecodeRequest(rawBody(ctx))
	if err != nil {
		return nil, err
	}
	d := decodeCommits(len(sreq.Commits),
		func(i int) (*core.Commit, error) { return core.DecodeCommit(sreq.Commits[i]) },
		func(i int) string {
			var v any
			_ = json.Unmarshal(sreq.Commits[i], &v)
			return claimedID(v)
		})
	resp, res, err := h.s.node.SyncRound(ctx, principalFrom(ctx), req.Repo, sreq, d.batch)
	if err != nil {
		return nil, err
	}
	if len(sreq.Commits) > 0 {
		resp.Results = d.verdicts(res)
	}
	h.s.metrics.rounds.WithLabelValues(strconv.FormatBool(resp.InSync)).Inc()
	body, err := resp.MarshalJSON()
	if err != nil {
		return nil, err
	}
	return rawResponse{status: 200, headers: map[string]string{"Cache-Control": "no-store"}, body: body}, nil
}

func (h handlers) ListSchemas(ctx context.Context, _ apiserver.ListSchemasRequestObject) (apiserver.ListSchemasResponseObject, error) {
	list, err := h.s.node.Schemas(principalFrom(ctx))
	if err != nil {
		return nil, err
	}
	out := apiserver.ListSchemas200JSONResponse{Schemas: make([]models.ItemSchema, 0, len(list))}
	for _, sc := range list {
		out.Schemas = append(out.Schemas, h.toGenSchema(sc))
	}
	return out, nil
}

func (h handlers) PutSchema(ctx context.Context, req apiserver.PutSchemaRequestObject) (apiserver.PutSchemaResponseObject, error) {
	def, err := bodyObject(ctx)
	if err != nil {
		return nil, err
	}
	sc, created, err := h.s.node.PutSchema(ctx, principalFrom(ctx), req.Ns, int(req.Version), def)
	if err != nil {
		return nil, err
	}
	if created {
		return apiserver.PutSchema201JSONResponse(h.toGenSchema(sc)), nil
	}
	return apiserver.PutSchema200JSONResponse(h.toGenSchema(sc)), nil
}

func (h handlers) RetireSchema(ctx context.Context, req apiserver.RetireSchemaRequestObject) (apiserver.RetireSchemaResponseObject, error) {
	sc, _, err := h.s.node.RetireSchema(ctx, principalFrom(ctx), req.Ns, int(req.Version))
	if err != nil {
		return nil, err
	}
	return apiserver.RetireSchema200JSONResponse(h.toGenSchema(sc)), nil
}

func (h handlers) toGenSchema(sc *core.Schema) models.ItemSchema {
	var is models.ItemSchema
	b, _ := json.Marshal(sc)
	_ = json.Unmarshal(b, &is)
	if h.s.node.Retired(sc.Ref()) {
		t := true
		is.Retired = &t
	}
	return is
}

func (h handlers) CreateSession(ctx context.Context, req apiserver.CreateSessionRequestObject) (apiserver.CreateSessionResponseObject, error) {
	// The body was validated against SessionRequest: the fields are there
	// and of their types.
	body, err := bodyObject(ctx)
	if err != nil {
		return nil, err
	}
	pub, _ := body["publicKey"].(string)
	proof, _ := body["proof"].(string)
	ms, _ := body["expires"].(float64)
	expires := time.UnixMilli(int64(ms)).UTC()
	sreq := auth.SessionRequest{PublicKey: pub, Proof: proof, Expires: expires.Format(core.DateLayout)}
	sess, created, err := h.s.node.RegisterSession(ctx, principalFrom(ctx), sreq)
	if err != nil {
		return nil, err
	}
	if created {
		return apiserver.CreateSession201JSONResponse(toGenSession(sess)), nil
	}
	return apiserver.CreateSession200JSONResponse(toGenSession(sess)), nil
}

// toGenSession writes s as its public record (core.SessionRecord's JSON is
// the wire form; the model is filled from it so the two cannot drift).
func toGenSession(s auth.Session) models.Session {
	var out models.Session
	b, _ := s.Record().MarshalJSON()
	_ = json.Unmarshal(b, &out)
	return out
}

func (h handlers) GetSession(ctx context.Context, req apiserver.GetSessionRequestObject) (apiserver.GetSessionResponseObject, error) {
	sess, err := h.s.node.Session(ctx, principalFrom(ctx), req.Id)
	if err != nil {
		return nil, err
	}
	return apiserver.GetSession200JSONResponse(toGenSession(sess)), nil
}

func (h handlers) RevokeSession(ctx context.Context, req apiserver.RevokeSessionRequestObject) (apiserver.RevokeSessionResponseObject, error) {
	sess, err := h.s.node.RevokeSession(ctx, principalFrom(ctx), req.Id)
	if err != nil {
		return nil, err
	}
	return apiserver.RevokeSession200JSONResponse(toGenSession(sess)), nil
}

// advertisedFilterBits is the largest filter a client may send: the
// largest the node decodes, or less when a smaller body limit would refuse
// a sync request carrying it. A filter of m bits is m/6 bytes of base64;
// 1 MiB of the body is left for the rest of the request.
func advertisedFilterBits(bodyLimit int64) int64 {
	fit := (bodyLimit - 1<<20) * 6
	fit -= fit % 64
	return min(max(fit, 64), gsync.MaxFilterBits)
}

package gen_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers/legacy"
	"github.com/labstack/echo/v5"

	"github.com/goat-gateway/goat-gateway/gen/apiclient"
	"github.com/goat-gateway/goat-gateway/gen/apiserver"
	"github.com/goat-gateway/goat-gateway/gen/models"
)

// stubServer implements the few operations these tests call; the embedded
// nil interface makes any other call panic.
type stubServer struct {
	apiserver.StrictServerInterface
	t *testing.T
}

const head = "9282547fdc028996472d8efa0bff078f26286e5aa46c488ced4a0a059d2be4c9"

func (s stubServer) GetInfo(context.Context, apiserver.GetInfoRequestObject) (apiserver.GetInfoResponseObject, error) {
	return apiserver.GetInfo200JSONResponse{
		NodeId: "node-1", Version: "test", LogId: "L1", Audience: "goat-gateway", Capabilities: []string{"sync"},
		Limits: models.Limits{MaxBodyBytes: 1 << 24, MaxCommitBytes: 1 << 20, MaxCommitsPerRequest: 1000, MaxPageLimit: 1000, MaxWaitSeconds: 30, MaxFilterBits: 1 << 26},
	}, nil
}

func (s stubServer) PutItem(_ context.Context, req apiserver.PutItemRequestObject) (apiserver.PutItemResponseObject, error) {
	if req.Params.IfMatch == nil || *req.Params.IfMatch != `"`+head+`"` {
		s.t.Errorf("If-Match=%v, want the quoted head", req.Params.IfMatch)
	}
	item := models.Item{Key: req.Key, Schema: req.Body.Schema, Data: req.Body.Data, Head: head, Ts: 1763800060000}
	return apiserver.PutItem201JSONResponse{Body: item, Headers: apiserver.PutItem201ResponseHeaders{ETag: `"` + head + `"`}}, nil
}

func (s stubServer) PatchItem(_ context.Context, req apiserver.PatchItemRequestObject) (apiserver.PatchItemResponseObject, error) {
	data := map[string]any{"title": "Water the plants"}
	patch := req.ApplicationMergePatchPlusJSONBody
	if patch == nil {
		patch = (*models.MergePatch)(req.JSONBody)
	}
	for k, v := range *patch {
		if v == nil {
			delete(data, k)
		} else {
			data[k] = v
		}
	}
	return apiserver.PatchItem200JSONResponse{
		Body:    models.Item{Key: req.Key, Schema: "task/2", Data: data, Head: head, Ts: 1763800260000},
		Headers: apiserver.PatchItem200ResponseHeaders{ETag: `"` + head + `"`},
	}, nil
}

const sessionID = "s_6nKoWz9jY_-yd_WQWiUhZJNE"

func (s stubServer) RevokeSession(_ context.Context, req apiserver.RevokeSessionRequestObject) (apiserver.RevokeSessionResponseObject, error) {
	if req.Id != sessionID {
		return apiserver.RevokeSession404ApplicationProblemPlusJSONResponse{NotFoundApplicationProblemPlusJSONResponse: apiserver.NotFoundApplicationProblemPlusJSONResponse{
			Type: models.ProblemTypeNotFound, Title: "Not found", Status: http.StatusNotFound, Detail: "no session " + req.Id,
		}}, nil
	}
	revoked := int64(1763800300000)
	return apiserver.RevokeSession200JSONResponse{Id: req.Id, Owner: "alice", PublicKey: "kf1nlEH_mGk4w0hiHCkfU9xbBTwVP8Yk1lejywTpgj8",
		Expires: 1766392000000, Revoked: &revoked}, nil
}

func (s stubServer) GetLog(context.Context, apiserver.GetLogRequestObject) (apiserver.GetLogResponseObject, error) {
	return apiserver.GetLog409ApplicationProblemPlusJSONResponse{MustReconcileApplicationProblemPlusJSONResponse: apiserver.MustReconcileApplicationProblemPlusJSONResponse{
		Type: models.ProblemTypeMustReconcile, Title: "Must reconcile", Status: http.StatusConflict, Detail: "cursor is from another log",
	}}, nil
}

// validator is request validation as api/ is expected to do it: kin-openapi
// against the embedded spec, keeping the validated body for the strict
// handler to bind.
func validator(t *testing.T) echo.MiddlewareFunc {
	t.Helper()
	doc, err := apiserver.GetSpec()
	if err != nil {
		t.Fatal(err)
	}
	router, err := legacy.NewRouter(doc)
	if err != nil {
		t.Fatal(err)
	}
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c *echo.Context) error {
			route, params, err := router.FindRoute(c.Request())
			if err != nil {
				return echo.ErrNotFound
			}
			in := &openapi3filter.RequestValidationInput{Request: c.Request(), PathParams: params, Route: route,
				Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc, KeepValidatedValue: true}}
			if err := openapi3filter.ValidateRequest(c.Request().Context(), in); err != nil {
				return echo.ErrBadRequest.Wrap(err)
			}
			return next(c)
		}
	}
}

func startServer(t *testing.T, middleware ...echo.MiddlewareFunc) *apiclient.ClientWithResponses {
	t.Helper()
	e := echo.New()
	e.Use(middleware...)
	apiserver.RegisterHandlers(e, apiserver.NewStrictHandler(stubServer{t: t}, nil))
	srv := httptest.NewServer(e)
	t.Cleanup(srv.Close)
	client, err := apiclient.NewClientWithResponses(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	return client
}

// TestRoundTrip_ClientServer checks that the generated client and the
// generated echo v5 strict server agree on the wire.
func TestRoundTrip_ClientServer(t *testing.T) {
	ctx := context.Background()
	client := startServer(t, validator(t))

	t.Run("GetInfo", func(t *testing.T) {
		resp, err := client.GetInfoWithResponse(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if resp.JSON200 == nil {
			t.Fatalf("status %d, body %s", resp.StatusCode(), resp.Body)
		}
		if got, want := resp.JSON200.Limits.MaxFilterBits, int64(1<<26); got != want {
			t.Fatalf("maxFilterBits=%d, want %d", got, want)
		}
	})
	t.Run("PutItem", func(t *testing.T) {
		etag := `"` + head + `"`
		resp, err := client.PutItemWithResponse(ctx, "user.alice.notes", "task-2", &models.PutItemParams{IfMatch: &etag},
			models.ItemWrite{Schema: "task/2", Data: map[string]any{"title": "Call the plumber", "done": false}})
		if err != nil {
			t.Fatal(err)
		}
		if resp.JSON201 == nil {
			t.Fatalf("status %d, body %s", resp.StatusCode(), resp.Body)
		}
		if got, want := resp.HTTPResponse.Header.Get("ETag"), etag; got != want {
			t.Fatalf("ETag=%s, want %s", got, want)
		}
		if got, want := resp.JSON201.Data["title"], "Call the plumber"; got != want {
			t.Fatalf("title=%v, want %v", got, want)
		}
	})
	t.Run("PatchItem", func(t *testing.T) {
		resp, err := client.PatchItemWithApplicationMergePatchPlusJSONBodyWithResponse(ctx, "user.alice.notes", "task-3", nil,
			models.MergePatch{"done": true, "notes": nil})
		if err != nil {
			t.Fatal(err)
		}
		if resp.JSON200 == nil {
			t.Fatalf("status %d, body %s", resp.StatusCode(), resp.Body)
		}
		if got, want := resp.JSON200.Data["done"], true; got != want {
			t.Fatalf("done=%v, want %v", got, want)
		}
	})
	t.Run("RevokeSession", func(t *testing.T) {
		resp, err := client.RevokeSessionWithResponse(ctx, sessionID)
		if err != nil {
			t.Fatal(err)
		}
		if resp.JSON200 == nil || resp.JSON200.Revoked == nil {
			t.Fatalf("status %d, body %s", resp.StatusCode(), resp.Body)
		}
		if got, want := *resp.JSON200.Revoked, int64(1763800300000); got != want {
			t.Fatalf("revoked=%d, want %d", got, want)
		}
	})
	t.Run("RevokeUnknownSession", func(t *testing.T) {
		resp, err := client.RevokeSessionWithResponse(ctx, "s_unknown")
		if err != nil {
			t.Fatal(err)
		}
		if resp.ApplicationproblemJSON404 == nil {
			t.Fatalf("status %d, body %s", resp.StatusCode(), resp.Body)
		}
		if got, want := resp.ApplicationproblemJSON404.Type, models.ProblemTypeNotFound; got != want {
			t.Fatalf("type=%s, want %s", got, want)
		}
	})
	t.Run("GetLogMustReconcile", func(t *testing.T) {
		after := "N2YzYTljMmUxYjRkNWU2Zi4z"
		resp, err := client.GetLogWithResponse(ctx, "user.alice.notes", &models.GetLogParams{After: &after})
		if err != nil {
			t.Fatal(err)
		}
		if resp.ApplicationproblemJSON409 == nil {
			t.Fatalf("status %d, body %s", resp.StatusCode(), resp.Body)
		}
		if got, want := resp.HTTPResponse.Header.Get("Content-Type"), "application/problem+json"; got != want {
			t.Fatalf("Content-Type=%s, want %s", got, want)
		}
		if got, want := resp.ApplicationproblemJSON409.Type, models.ProblemTypeMustReconcile; got != want {
			t.Fatalf("type=%s, want %s", got, want)
		}
	})
}

// TestRoundTrip_MergePatchNeedsValidatedBody pins down why docs/api.md tells
// api/ to validate with KeepValidatedValue (or install a binder): echo's
// default binder refuses application/merge-patch+json.
func TestRoundTrip_MergePatchNeedsValidatedBody(t *testing.T) {
	client := startServer(t)
	resp, err := client.PatchItemWithApplicationMergePatchPlusJSONBodyWithResponse(context.Background(), "user.alice.notes", "task-3", nil,
		models.MergePatch{"done": true})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := resp.StatusCode(), http.StatusUnsupportedMediaType; got != want {
		t.Fatalf("status=%d, want %d", got, want)
	}
}

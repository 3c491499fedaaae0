package api

import (
	"github.com/labstack/echo/v5"

	"github.com/goat-gateway/goat-gateway/gen/apiserver"
	"github.com/goat-gateway/goat-gateway/gen/models"
)

// rawBodies serves the operations that carry a body without the strict
// wrapper's binding, which would decode the body a second time (leniently:
// case-insensitive names, duplicate keys): their handlers read the value
// the validation middleware parsed and validated once (bodyValue), or the
// bytes their protocol decoders read (rawBody). Every other operation goes
// through the strict wrapper.
type rawBodies struct {
	apiserver.ServerInterface
	h handlers
}

func (s rawBodies) PushCommits(c *echo.Context, repo models.Repo) error {
	resp, err := s.h.PushCommits(c.Request().Context(), apiserver.PushCommitsRequestObject{Repo: repo})
	if err != nil {
		return err
	}
	return resp.VisitPushCommitsResponse(c.Response())
}

func (s rawBodies) SyncRound(c *echo.Context, repo models.Repo) error {
	resp, err := s.h.SyncRound(c.Request().Context(), apiserver.SyncRoundRequestObject{Repo: repo})
	if err != nil {
		return err
	}
	return resp.VisitSyncRoundResponse(c.Response())
}

func (s rawBodies) PutItem(c *echo.Context, repo models.Repo, key models.Key, params models.PutItemParams) error {
	resp, err := s.h.PutItem(c.Request().Context(), apiserver.PutItemRequestObject{Repo: repo, Key: key, Params: params})
	if err != nil {
		return err
	}
	return resp.VisitPutItemResponse(c.Response())
}

func (s rawBodies) PatchItem(c *echo.Context, repo models.Repo, key models.Key, params models.PatchItemParams) error {
	resp, err := s.h.PatchItem(c.Request().Context(), apiserver.PatchItemRequestObject{Repo: repo, Key: key, Params: params})
	if err != nil {
		return err
	}
	return resp.VisitPatchItemResponse(c.Response())
}

func (s rawBodies) PutSchema(c *echo.Context, ns models.SchemaNamespace, version int32) error {
	resp, err := s.h.PutSchema(c.Request().Context(), apiserver.PutSchemaRequestObject{Ns: ns, Version: version})
	if err != nil {
		return err
	}
	return resp.VisitPutSchemaResponse(c.Response())
}

func (s rawBodies) CreateSession(c *echo.Context) error {
	resp, err := s.h.CreateSession(c.Request().Context(), apiserver.CreateSessionRequestObject{})
	if err != nil {
		return err
	}
	return resp.VisitCreateSessionResponse(c.Response())
}

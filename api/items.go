package api

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"strings"

	"github.com/goat-gateway/goat-gateway/core"
	"github.com/goat-gateway/goat-gateway/gen/apiserver"
	"github.com/goat-gateway/goat-gateway/gen/models"
	"github.com/goat-gateway/goat-gateway/node"
)

func b64url(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// ifMatch reads If-Match's single strong "<id>".
func ifMatch(s *string) (*core.CommitID, error) {
	if s == nil {
		return nil, nil
	}
	t := strings.TrimSpace(*s)
	if len(t) < 2 || t[0] != '"' || t[len(t)-1] != '"' {
		return nil, fmt.Errorf("%w: If-Match must be one strong ETag, \"<head id>\"", core.ErrInvalid)
	}
	id, err := core.ParseCommitID(t[1 : len(t)-1])
	if err != nil {
		return nil, err
	}
	return &id, nil
}

// writeItem runs one REST write through the node, on the branch of schema
// ("" for the newest).
func (h handlers) writeItem(ctx context.Context, repo, key, schema string, match *string, edit node.Edit) (models.Item, bool, error) {
	id, err := ifMatch(match)
	if err != nil {
		return models.Item{}, false, err
	}
	v, created, err := h.s.node.WriteItemAt(ctx, principalFrom(ctx), repo, key, schema, id, edit)
	if err != nil {
		return models.Item{}, false, err
	}
	return item(v), created, nil
}

func etag(it models.Item) string { return `"` + it.Head + `"` }

func (h handlers) PutItem(ctx context.Context, req apiserver.PutItemRequestObject) (apiserver.PutItemResponseObject, error) {
	body, err := bodyObject(ctx)
	if err != nil {
		return nil, err
	}
	schema, _ := body["schema"].(string)
	data, _ := body["data"].(map[string]any)
	if data == nil {
		return nil, fmt.Errorf("%w: data: must be an object", core.ErrInvalid)
	}
	// The write is on the branch of its schema: a note/1 writer edits what
	// a note/1 reader sees, and the gateway merges that with newer
	// branches (DESIGN section 2).
	it, created, err := h.writeItem(ctx, req.Repo, req.Key, schema, req.Params.IfMatch, func(*node.Value, map[string]any, string) (string, map[string]any, error) {
		return schema, data, nil
	})
	if err != nil {
		return nil, err
	}
	// The bytes of PutItem201JSONResponse/PutItem200JSONResponse, without
	// encoding/json's reflection (itemjson.go).
	if created {
		return itemResponse{status: http.StatusCreated, it: it}, nil
	}
	return itemResponse{status: http.StatusOK, it: it}, nil
}

// applyMergePatch implements RFC 7396.
func applyMergePatch(target, patch any) any {
	pm, ok := patch.(map[string]any)
	if !ok {
		return core.Clone(patch)
	}
	tm, ok := target.(map[string]any)
	if !ok {
		tm = map[string]any{}
	}
	for k, v := range pm {
		if v == nil {
			delete(tm, k)
		} else {
			tm[k] = applyMergePatch(tm[k], v)
		}
	}
	return tm
}

func (h handlers) PatchItem(ctx context.Context, req apiserver.PatchItemRequestObject) (apiserver.PatchItemResponseObject, error) {
	patch, err := bodyObject(ctx)
	if err != nil {
		return nil, err
	}
	it, _, err := h.writeItem(ctx, req.Repo, req.Key, "", req.Params.IfMatch, func(cur *node.Value, base map[string]any, schema string) (string, map[string]any, error) {
		if cur == nil || cur.Deleted {
			return "", nil, fmt.Errorf("%w: item %q", core.ErrNotFound, req.Key)
		}
		return schema, applyMergePatch(base, patch).(map[string]any), nil
	})
	if err != nil {
		return nil, err
	}
	return apiserver.PatchItem200JSONResponse{Body: it, Headers: apiserver.PatchItem200ResponseHeaders{ETag: etag(it)}}, nil
}

func (h handlers) DeleteItem(ctx context.Context, req apiserver.DeleteItemRequestObject) (apiserver.DeleteItemResponseObject, error) {
	it, _, err := h.writeItem(ctx, req.Repo, req.Key, "", req.Params.IfMatch, func(cur *node.Value, base map[string]any, schema string) (string, map[string]any, error) {
		if cur == nil {
			return "", nil, fmt.Errorf("%w: item %q", core.ErrNotFound, req.Key)
		}
		base[core.DeletedField] = true
		return schema, base, nil
	})
	if err != nil {
		return nil, err
	}
	return apiserver.DeleteItem200JSONResponse{Body: it, Headers: apiserver.DeleteItem200ResponseHeaders{ETag: etag(it)}}, nil
}

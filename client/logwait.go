package client

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/goat-gateway/goat-gateway/gen/apiclient"
	"github.com/goat-gateway/goat-gateway/gen/models"
	gsync "github.com/goat-gateway/goat-gateway/sync"
)

// LogWait is Log as a long poll (the `wait` parameter): when nothing
// follows cursor, the gateway holds the request until a commit arrives
// (and answers with it at once) or wait passes (and answers an empty tail
// page). wait is sent in whole seconds, at least one; the gateway caps it
// (GET /v1/info maxWaitSeconds). The request timeout is extended by wait,
// so a held request is not cut off as a slow one.
func (c *Client) LogWait(ctx context.Context, repo, cursor string, limit int, wait time.Duration) (*gsync.LogPage, error) {
	op := fmt.Sprintf("log of %q", repo)
	secs := int32(max(1, min(wait/time.Second, 1<<31-1)))
	params := &models.GetLogParams{After: optional(cursor), Limit: limitOf(limit), Wait: &secs}
	timeout := c.opts.Timeout
	if timeout > 0 {
		timeout += time.Duration(secs) * time.Second
	}
	r, err := c.roundTripWithin(ctx, timeout, func(ctx context.Context, e apiclient.RequestEditorFn) (*http.Response, error) {
		return c.gc.GetLog(ctx, repo, params, e)
	})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	return decodeLogPage(op, r)
}

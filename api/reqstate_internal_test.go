package api

import (
	"context"
	"testing"

	"github.com/goat-gateway/goat-gateway/auth"
)

// The accessors read what the middlewares recorded, from withRemote's
// reqState when the request has one and from context values otherwise,
// and say "nothing recorded" for neither.
func TestReqState_Accessors(t *testing.T) {
	p := auth.Principal{Sub: "alice"}
	body := []byte(`{"a":1}`)
	value := map[string]any{"a": 1.0}
	route := matchedRoute{params: map[string]string{"repo": "r"}}

	rem := &remote{ip: "192.0.2.1"}
	rem.req = reqState{principal: p, hasPrincipal: true, route: route, routed: true, rawBody: body, bodyRead: true, bodyValue: value}
	inState := context.WithValue(context.Background(), remoteKey{}, rem)

	var asValues context.Context = context.Background()
	for k, v := range map[ctxKey]any{principalKey: p, routeKey: route, rawBodyKey: body, bodyValueKey: value} {
		asValues = context.WithValue(asValues, k, v)
	}
	// withRemote's struct with nothing recorded in it yet: the context
	// values under it still count.
	asValuesUnderRemote := context.WithValue(asValues, remoteKey{}, &remote{})

	for name, ctx := range map[string]context.Context{"reqState": inState, "context values": asValues, "context values under an empty reqState": asValuesUnderRemote} {
		t.Run(name, func(t *testing.T) {
			if got := principalFrom(ctx); got.Sub != "alice" {
				t.Errorf("principalFrom: %+v", got)
			}
			if got, ok := rawBodyOf(ctx); !ok || string(got) != string(body) {
				t.Errorf("rawBodyOf: %q, %v", got, ok)
			}
			if got, ok := bodyValue(ctx).(map[string]any); !ok || got["a"] != 1.0 {
				t.Errorf("bodyValue: %v", bodyValue(ctx))
			}
			if got, ok := routeFrom(ctx); !ok || got.params["repo"] != "r" {
				t.Errorf("routeFrom: %+v, %v", got, ok)
			}
		})
	}
	t.Run("nothing recorded", func(t *testing.T) {
		for _, ctx := range []context.Context{context.Background(), context.WithValue(context.Background(), remoteKey{}, &remote{})} {
			if got := principalFrom(ctx); !got.Anonymous {
				t.Errorf("principalFrom: %+v, want anonymous", got)
			}
			if _, ok := rawBodyOf(ctx); ok {
				t.Error("rawBodyOf: read, want unread")
			}
			if v := bodyValue(ctx); v != nil {
				t.Errorf("bodyValue: %v", v)
			}
			if _, ok := routeFrom(ctx); ok {
				t.Error("routeFrom: routed")
			}
		}
	})
}

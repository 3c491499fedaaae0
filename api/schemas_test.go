package api_test

import (
	"testing"

	"github.com/goat-gateway/goat-gateway/gen/models"
	"github.com/goat-gateway/goat-gateway/internal/goattest"
)

func TestServer_Schemas(t *testing.T) {
	g := startGateway(t, goattest.Config{})
	tok := g.Token("alice")
	wantStatus(t, g.call(t, "PUT", "/v1/repos/r", tok, nil), 201)
	v1 := `{"fields":{"title":{"type":"string","required":true},"prio":{"type":"string"},"tags":{"type":"set"}}}`
	wantStatus(t, g.call(t, "PUT", "/v1/schemas/task/1", tok, v1), 201)
	wantStatus(t, g.call(t, "PUT", "/v1/schemas/task/1", tok, v1), 200)
	wantStatus(t, g.call(t, "PUT", "/v1/schemas/task/1", tok, `{"fields":{"title":{"type":"number"}}}`), 409)
	wantStatus(t, g.call(t, "PUT", "/v1/schemas/task/3", tok, v1), 422)
	v2 := `{"fields":{"name":{"type":"text","required":true},"prio":{"type":"number"},"tags":{"type":"set"}},
	        "upgrade":[{"op":"rename","from":"title","to":"name"},{"op":"convert","field":"prio","conversion":"toNumber"}]}`
	wantStatus(t, g.call(t, "PUT", "/v1/schemas/task/2", tok, v2), 201)

	var list models.SchemaList
	g.call(t, "GET", "/v1/schemas", tok, nil).json(t, &list)
	refs := map[string]bool{}
	for _, s := range list.Schemas {
		refs[s.Ns+"/"+string(rune('0'+s.Version))] = true
	}
	for _, want := range []string{"any/1", "task/1", "task/2"} {
		if !refs[want] {
			t.Fatalf("schemas %v lack %s", refs, want)
		}
	}

	wantStatus(t, g.call(t, "PUT", "/v1/repos/r/items/t1", tok, `{"schema":"task/1","data":{"title":"a","prio":"2","tags":["x","y"]}}`), 201)
	wantStatus(t, g.call(t, "PUT", "/v1/repos/r/items/t2", tok, `{"schema":"task/1","data":{"prio":"2"}}`), 422)
	wantStatus(t, g.call(t, "PUT", "/v1/repos/r/items/t3", tok, `{"schema":"task/1","data":{"title":"a","tags":["y","x"]}}`), 422)

	// Schemas survive a restart: they live in sys.schemas.
	g.Restart(t)
	tok2 := g.Token("alice")
	wantStatus(t, g.call(t, "PUT", "/v1/repos/r/items/t4", tok2, `{"schema":"task/2","data":{"name":"b","prio":3}}`), 201)
}

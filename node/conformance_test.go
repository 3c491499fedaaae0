package node_test

import (
	"testing"

	"github.com/goat-gateway/goat-gateway/internal/goattest"
	"github.com/goat-gateway/goat-gateway/node"
	gsync "github.com/goat-gateway/goat-gateway/sync"
)

// node.Local is this node's side of a heal with a peer: it runs the
// gsync.Local conformance suite. The suite signs with a key no session
// directory knows, so it runs as OriginGateway, which verifies nothing;
// TestNode_Local covers the verification of the other origins.
func TestNode_LocalConformance(t *testing.T) {
	goattest.RunLocalConformance(t, func(tb testing.TB) gsync.Local {
		e := openDev(tb)
		l, release, err := e.n.Local(goattest.ConformanceRepo, node.OriginGateway)
		if err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(release)
		return l
	})
}

package sync_test

import (
	"testing"

	"github.com/goat-gateway/goat-gateway/core"
	"github.com/goat-gateway/goat-gateway/internal/goattest"
	gsync "github.com/goat-gateway/goat-gateway/sync"
)

func TestMemSet_LocalConformance(t *testing.T) {
	goattest.RunLocalConformance(t, func(testing.TB) gsync.Local { return gsync.NewMemLocal() })
}

func TestMemTransport_Conformance(t *testing.T) {
	goattest.RunTransportConformance(t, func(tb testing.TB, _ *goattest.Author) (gsync.Transport, func(...*core.Commit)) {
		return gsync.NewMemTransport(tb, goattest.ConformanceRepo)
	})
}

package goat

import (
	"log/slog"
	"testing"
	"time"

	"github.com/goat-gateway/goat-gateway/internal/goattest"
	gsync "github.com/goat-gateway/goat-gateway/sync"
)

// The replica, as the sync driver sees it, keeps the contract of
// gsync.Local. The client is offline (nothing listens at its URL), so
// only the suite writes to the replica.
func TestRepo_LocalConformance(t *testing.T) {
	goattest.RunLocalConformance(t, func(tb testing.TB) gsync.Local {
		c, err := Open(Config{
			URL: "http://127.0.0.1:1", Token: "x.eyJzdWIiOiJ0In0.x", NoSync: true,
			ReconnectMin: time.Second, ReconnectMax: time.Minute, Logger: slog.New(slog.DiscardHandler),
		})
		if err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(func() { c.Close() })
		// The suite's signer is registered nowhere: this is the Local
		// contract, not verification (verify_test.go).
		c.trust.trustAll = true
		r, err := c.Repo(goattest.ConformanceRepo)
		if err != nil {
			tb.Fatal(err)
		}
		return r.local()
	})
}

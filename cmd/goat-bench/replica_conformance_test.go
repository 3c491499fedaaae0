package main

import (
	"testing"

	"github.com/goat-gateway/goat-gateway/internal/goattest"
	gsync "github.com/goat-gateway/goat-gateway/sync"
)

func TestReplica_LocalConformance(t *testing.T) {
	goattest.RunLocalConformance(t, func(testing.TB) gsync.Local { return newReplica() })
}

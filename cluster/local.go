package cluster

import (
	"context"

	"github.com/goat-gateway/goat-gateway/core"
	"github.com/goat-gateway/goat-gateway/node"
	gsync "github.com/goat-gateway/goat-gateway/sync"
)

// Node is what the cluster needs of the node it runs in (*node.Node).
// Everything the cluster appends, it appends as a replica's
// (node.OriginReplica): verified, never published again.
type Node interface {
	// ID is the node id (peers recognize themselves by it).
	ID() string
	// Repos lists the node's repositories.
	Repos() ([]string, error)
	// Ensure creates a repository another node announced.
	Ensure(ctx context.Context, repo string, origin node.Origin) (bool, error)
	// Ingest appends commits that another node replicated.
	Ingest(ctx context.Context, repo string, commits []*core.Commit, origin node.Origin) ([]node.Result, error)
	// Local opens a repository, creating it, as the local side of a heal.
	Local(repo string, origin node.Origin) (*gsync.LogSet, func(), error)
}

var _ Node = (*node.Node)(nil)

package api

import (
	"github.com/goat-gateway/goat-gateway/auth"
	"github.com/goat-gateway/goat-gateway/node"
)

// preauthorize holds, for every operation that takes a request body, the
// node's rule for who may call it, decided from the route and the token
// alone: routeMiddleware asks it before the body is read, so a caller who
// may not do the operation costs the node no body bytes and no parsing
// (issue 17, item 1). The handlers still ask the node again, with the
// body (a sync round's write access depends on whether it carries
// commits); this is an early answer, not the only check. A test holds
// every operation of openapi.yaml with a requestBody to having a row.
var preauthorize = map[string]func(n *node.Node, p auth.Principal, params map[string]string) error{
	"createRepo":  writeRepo,
	"putItem":     writeRepo,
	"patchItem":   writeRepo,
	"deleteItem":  writeRepo,
	"pushCommits": writeRepo,
	// A round may be read-only: its write access is known from the body.
	"syncRound": func(n *node.Node, p auth.Principal, params map[string]string) error {
		return n.Authorize(p, params["repo"], false)
	},
	"createSession": func(n *node.Node, p auth.Principal, _ map[string]string) error {
		return n.AuthorizeSessions(p)
	},
	"putSchema": func(n *node.Node, p auth.Principal, _ map[string]string) error {
		return n.AuthorizeSchemaWrite(p)
	},
}

func writeRepo(n *node.Node, p auth.Principal, params map[string]string) error {
	return n.Authorize(p, params["repo"], true)
}

package node

import (
	"fmt"

	"github.com/goat-gateway/goat-gateway/auth"
	"github.com/goat-gateway/goat-gateway/core"
)

// AuthorizeSessions checks that p may register sessions (RegisterSession):
// any authenticated caller may. The HTTP face asks before it reads a
// request's body, so a caller who may not costs no body.
func (n *Node) AuthorizeSessions(p auth.Principal) error {
	if !p.Authenticated() {
		return fmt.Errorf("%w: registering a session needs a token", core.ErrUnauthenticated)
	}
	return nil
}

// AuthorizeSchemaWrite checks that p may publish schemas (PutSchema): in
// dev mode any authenticated caller, otherwise who may write sys.schemas.
func (n *Node) AuthorizeSchemaWrite(p auth.Principal) error {
	if n.cfg.Dev && p.Authenticated() {
		return nil
	}
	return n.cfg.Rules.Authorize(p, auth.SchemasRepo, true)
}

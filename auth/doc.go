// Package auth decides who a caller is and what it may touch: bearer token
// verification (Verifier, DevIssuer), session records and their proof of
// possession (Session, Registrar, Sessions), the verification of every signed
// commit that enters a node (VerifyCommit, VerifyReplicatedCommit), and the
// repository rules (Rules).
//
// Everything here is pure except key files (LoadOrCreateKey) and JWKS URL
// fetches; clocks are parameters (now), so every time-dependent decision is
// testable without waiting.
//
// Guarantees (each is shown by a test named in docs/security.md):
//   - A token is accepted only if it is signed by a key of a configured
//     issuer with an algorithm that issuer's key type allows (EdDSA, RS*/PS*,
//     ES*; never none or HS*), its iss is that issuer, its aud names one of
//     the issuer's audiences, it has not expired (exp is required) and is
//     valid (nbf, iat) within the leeway, and it carries a sub. Every refusal
//     wraps core.ErrUnauthenticated and says why.
//   - A commit is accepted only if its id recomputes, its signature verifies
//     under the public key of the session its author field names, the
//     session was valid at the commit's ts and (for new commits) is valid
//     now, and the session's owner may write the commit's repository.
//   - Rules deny by default; a {sub} substitution never lets one subject
//     reach another subject's namespace, because only subjects that are a
//     single repository-name segment (no dots) are ever substituted, and
//     {sub} must be a whole segment of a pattern. System repositories
//     (sys.*) have fixed rules no rules file can widen.
//   - A session record binds an owner to an Ed25519 public key only with a
//     proof that the key's holder asked for that owner, audience and expiry,
//     and only with the gateway root key's signature.
package auth

// Package node is one gateway node as a domain service, with no HTTP in it
// (DESIGN section 1): the store of repositories, the session directory and
// the schema registry (both loaded from, and written through, the system
// repositories sys.sessions and sys.schemas), custodial signing of the REST
// writes, commit verification, the merger, the live event hub, and
// per-caller quotas. The HTTP adapter (package api) and scale-out (package
// cluster) are two faces of it; neither reaches around it.
//
// # The write path
//
// Every commit enters through Ingest, with an explicit Origin:
//
//   - OriginClient: a caller's push or sync round. Each commit must verify
//     against its author's session, whose owner may write the repository
//     under the rules, and fit its schema; merge commits are recomputed.
//   - OriginReplica: another node's commit (NATS, node-to-node sync, or a
//     push by a node principal). It must verify against a session valid at
//     its ts, but is not authorized again: its author's rights were checked
//     where it entered, so a revoked session's earlier commits keep
//     replicating.
//   - OriginGateway: this node's own commits (custodial REST writes, system
//     records, merges). They are built here from validated values and
//     signed here, so they are not verified again.
//
// Ingest returns a Result per commit, in the caller's order; a bad commit
// never sinks the others of its batch. It returns only after the appended
// commits are durable (fsync, with group commit) and, when a Barrier is
// configured, after the barrier released the write (scale-out: the NATS
// server holds it). The barrier is consulted per write, with that write's
// own sequence numbers, so a request never waits for another's replication.
//
// # Observing the node
//
// Config.Observer sees every repository creation and every durable append,
// with the origin of each record, in node sequence order, on the storage's
// writer goroutines: it must not block. Scale-out publishes what did not
// come from a replica; the event hub fans every append out to SSE
// subscribers.
//
// # Guarantees
//
//   - A write is acknowledged only once durable; a system record (session,
//     schema) is in effect on this node when its write returns.
//   - Live events reach a stream in sequence order: a stream of one
//     repository as soon as that repository's records are durable (never
//     behind another repository's write), a stream of several in node
//     sequence order. A subscriber that falls behind is dropped rather than
//     waited on, and replays what it missed from the durable log when it
//     reconnects.
//   - Nothing here knows HTTP: errors wrap the core sentinels, and the one
//     mapping to statuses lives in package api.
package node

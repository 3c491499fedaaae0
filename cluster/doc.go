// Package cluster lets several gateway nodes serve the same repositories
// (DESIGN section 8): each node keeps its own replica, publishes the commits
// it ingests on NATS so that every other node ingests them at once and
// pushes them to its own SSE subscribers, and reconciles with its peers
// over the sync protocol (POST /v1/repos/{repo}/sync with a node token) to
// heal whatever NATS did not deliver.
//
// # Guarantees
//
//   - Nothing is trusted because of where it came from: every replicated
//     commit is verified by the receiving node as a replica (id
//     recomputed, signature valid for its session at its ts, merges
//     recomputed), whether it arrived over NATS or from a peer.
//   - Convergence: every node reconciles every repository with every peer
//     when it starts (a node whose files were lost refills here), every
//     HealInterval, whenever its NATS connection is (re)established or the
//     NATS client dropped messages, and shortly after a message could not be
//     ingested whole (a commit that arrived before its parent or its
//     session). NATS is an accelerator; correctness does not depend on it.
//   - A write acknowledged while NATS is connected has reached the NATS
//     server (the cluster is the node's node.Barrier: the node holds each
//     write's acknowledgement until a flush round trip covering that
//     write's own sequence numbers confirms it, at most ReplicationWait),
//     so every other node connected to NATS receives it even if the node
//     that took it dies the next instant and loses its disk.
//   - No publication loops: a node publishes a commit at most once, when it
//     first appends it, and never publishes what it ingested as a replica
//     (from NATS, by its own reconciliation, or pushed by a peer's): the
//     node tells the cluster (its node.Observer) the origin of every
//     record. Merge commits are published like any other: which merges a
//     node makes depends on the order in which concurrent commits reached
//     it.
//   - Nothing blocks the storage: Appended and the NATS callback only queue
//     into bounded buffers; a full buffer drops, counts, and marks the
//     repository for reconciliation.
//
// # Wire format
//
// Subject goat.commits.<repo> (see Subject), payload one JSON object:
//
//	{"node":"<publisher node id>","repo":"<repo>","commits":[<commit>, ...]}
//
// commits are canonical commit JSON as stored, in the publisher's log
// order, at most MaxMessageCommits and at most the server's max_payload
// bytes per message; a commit too large for one message is left to
// reconciliation. A message without commits announces a repository created
// on the publishing node (node.Observer's Created). See Message and
// DecodeMessage.
//
// # Node credentials
//
// Peers call each other with a bearer token whose principal is a node
// (auth.NodeRole from an issuer trusted with NodeTokens). By default the
// nodes share a node issuer key (KEYS_DIR/node-issuer.key, see LoadNodeKey)
// next to the root key they must share anyway; each trusts it (Issuers) and
// mints its own short-lived tokens with it. Operators with their own issuer
// can give every node a token instead (Config.NodeToken, NodeTokenFile).
package cluster

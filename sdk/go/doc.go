// Package goat is the Go SDK of goat-gateway: a local replica of a
// gateway's repositories that a Go service embeds to work with the data as
// if it were local. Reads and writes never wait on the network; sync runs
// in the background; the application keeps working offline.
//
//	c, err := goat.Open(goat.Config{URL: "https://sync.example.com", Token: tok, Dir: "/var/lib/app/goat"})
//	tasks, err := c.Repo("team.tasks")
//	err = tasks.Set("t1", "task/1", map[string]any{"title": "Buy milk"})
//	it, err := tasks.Get("t1")
//	q, err := tasks.Query(goat.Query{Filter: open, Less: byTitle})
//
// # Guarantees
//
//   - Local first: Get, Items, Set, Update, Delete and queries touch only
//     the local replica. A write is visible to reads at once; it becomes a
//     signed commit within Config.CoalesceWindow (default 250 ms; rapid
//     edits of one item make one commit per window), durable in the local
//     directory before it is pushed.
//   - Convergence: every commit made here is signed by the client's session
//     key and pushed; every commit of the gateway reaches the replica (live
//     over one event stream for all open repositories, and by a digest check
//     and reconciliation after every reconnect, `reset`, and every
//     Config.HealInterval). Concurrent heads merge locally with the merge
//     package, so a replica's merge commits are byte-identical to the
//     gateway's and to every other replica's: replicas that exchanged all
//     commits have equal digests and equal values.
//   - Offline: with a local directory, commits wait in the replica (and an
//     outbox of unacknowledged ids) across restarts and go up when the
//     gateway is reachable again. The session key is kept in the directory
//     (mode 0600), so a reopened client signs as the same session.
//   - Recovery: a gateway that restarts, moves, or loses its repository
//     files gets everything back from its clients: on reconnect a client
//     registers its session again, creates its repositories, and heals
//     them, pushing whatever the gateway lacks.
//   - Errors: gateway problems come back as the core sentinels
//     (errors.Is(err, core.ErrForbidden)), an unreachable gateway as
//     ErrOffline. Status reports online, syncing, pending and the last
//     standing error.
//
// # What the replica verifies
//
// The replica recomputes every commit id (storage does) and every merge
// commit (merge.Verify). It does not check signatures or authorization:
// that needs the session records, and every commit it receives was
// verified and authorized by the gateway it trusts with its token (or was
// made by this client). A commit the gateway rejects for good (a write the
// rules forbid) stays in the local replica; Status.LastError reports it.
//
// # Wire
//
// Requests are built by the generated client of openapi.yaml (package
// gen); bodies are read as bytes so that commits keep their canonical
// encoding. The SSE reader is this package's own: lines and events are
// bounded (Config.MaxEventBytes), the stream resumes with Last-Event-ID,
// and a stream silent for three heartbeats is dropped and reconnected. A
// stream that does not become live within Config.ReadyTimeout (a proxy
// that buffers responses) is replaced by long polls of each repository's
// log until a later attempt at the stream succeeds (Status.Polling).
// docs/sdk-go.md describes the sync states and the local directory.
package goat

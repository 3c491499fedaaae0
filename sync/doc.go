// Package sync is the goat-gateway sync protocol (DESIGN section 5): set
// digests, salted Bloom filters, stateless reconciliation rounds, opaque log
// cursors, and the client-side driver loop that the Go SDK and node-to-node
// sync share.
//
// The package shares its name with the standard library's sync. Other
// packages import it as gsync:
//
//	import gsync "github.com/goat-gateway/goat-gateway/sync"
//
// and inside it the standard library would be imported as stdsync.
//
// # Guarantees
//
// The protocol half (Digest, Filter, Cursor, Request, Response,
// Server.Answer, Client) is pure: values in, values out, no clock, no I/O,
// no goroutines; randomness (filter salts) comes from an io.Reader the
// caller passes. Every decoder of outside bytes (filters, cursors, requests,
// responses) validates sizes before allocating for them, returns errors
// wrapping core.ErrInvalid, and never panics.
//
// Two peers that run rounds until the client reports done hold equal sets:
// the client stops only when its digest equals the server's, and every
// round either moves commits or sends filters with fresh salts, so an id
// that one filter hides by a false positive is found by a later one.
// Bloom filters have no false negatives, so a round never sends a commit
// the receiver holds (unless the receiver changed in between).
//
// # Wire formats
//
// Digest: "count" (JSON integer) and "digest" (64 lowercase hex characters:
// the XOR of the 32-byte ids; all zeros for the empty set). See Digest.
//
// Filter: {"m", "k", "salt", "bits"}, element salt || id, hashed and laid
// out exactly as github.com/bits-and-blooms/bloom/v3 does. See Filter; test
// vectors for other implementations are in testdata/bloom_vectors.json.
//
// Rounds: POST /v1/repos/{repo}/sync carries a Request and answers a
// Response (see both). A heal is:
//
//  1. the client sends its digest; the server answers inSync, or (when
//     different) its filter, sized by FilterPolicy from the counts;
//  2. the client pushes its commits absent from that filter and sends its
//     own filter, unless the push alone will make the server equal; the
//     server answers its commits absent from the client's filter, and its
//     filter only if the client will not equal it after ingesting them;
//  3. rounds go on, with fresh salts, only after a false positive or a
//     response cut by a limit.
//
// Version 2 ("v": 2, capability "sync-v2"; see round2.go and docs/sync.md)
// compares per-partition digests first (partitions: time windows finer
// towards now, large ones split by id prefix; see Layout), sends a filter
// over the partitions that differ only, with small invertible tables of
// short ids (see Table), and resolves what a filter hid or the server
// lacks exactly (decoded tables, else id lists): at most 3 requests
// whenever the divergence fits one
// response and one push, and bytes that grow with the divergence, not with
// the set. Version 3 ("v": 3, capability "sync-v3") is the same rounds in a
// smaller encoding: layouts as gaps, the request's layout reduced to the
// differing windows, 13-byte table cells. The Driver speaks version 3 by
// default and falls back to version 2, then version 1; a Server answers
// all three. Vectors: testdata/sync_v2_vectors.json,
// testdata/sync_v3_vectors.json.
//
// Cursors: opaque base64url strings carrying the node's log identity and
// an offset, with a checksum. See Cursor.
package sync

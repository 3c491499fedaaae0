// Package goattest is the one test harness of this module, used by the
// tests of every package: an in-process gateway on a loopback port
// (StartGateway), dev tokens, authors with registered session keys that
// sign and push commits through client.Client (NewAuthor), a wait-until
// helper (WaitFor), a reverse proxy that buffers responses on demand
// (StartProxy) and Debian's nginx in front of a gateway (StartNginx), an
// in-memory sync peer (MemPeer), and the conformance
// suites that every implementation of the sync protocol's interfaces
// runs in its own package's tests (RunLocalConformance for gsync.Local,
// RunTransportConformance for gsync.Transport), in the style of
// litestream's RunWithReplicaClient.
//
// Guarantees: a gateway is built in one place (open), the way the binary
// builds it; waits are bounded by Patience and fail naming what was
// awaited, never sleep a fixed time; nothing here mocks our own HTTP
// layer. It is for tests only: it imports testing.
//
// It imports the gateway (node, api, storage, client), so the internal
// tests of those packages cannot import it: they wait on signals, and
// run the suites from an external test package (storage_test, sync_test,
// client_test).
//
// The sync package is imported as gsync everywhere (its name is the
// standard library's).
package goattest

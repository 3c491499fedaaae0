// Package goattest is the one test harness of this module, used by the
// tests of every package: an in-process gateway on a loopback port
// (StartGateway), dev tokens, authors with registered session keys that
// sign and push commits (NewAuthor), a wait-until helper (WaitFor), and
// the conformance suites that every implementation of the sync
// protocol's interfaces runs (RunLocalConformance for gsync.Local,
// RunTransportConformance for gsync.Transport), in the style of
// litestream's RunWithReplicaClient.
//
// Guarantees: a gateway is built in one place (open), so every test runs
// the node the way the binary does; waits are bounded by Patience and
// fail with what was awaited, never sleep a fixed time; nothing here
// mocks our own HTTP layer. It is for tests only: it imports testing.
//
// The sync package is imported as gsync everywhere (its name is the
// standard library's).
package goattest

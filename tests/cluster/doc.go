// Package cluster holds the multi-process cluster test: the topology of
// docker-compose.yml on loopback, with a real nats-server, Debian's nginx
// running deploy/nginx.conf, and three goat-gateway processes built from
// this module. It is behind the build tag "cluster" (make test-cluster):
//
//	go test -tags cluster -count=1 -v ./tests/cluster/
//
// Flags: -cluster.race builds the gateway with the race detector (and fails
// on any race it reports); -cluster.writes sets the number of writes timed
// for the cross-node latency. GOAT_NATS_SERVER names a nats-server binary
// to use instead of building the one go.mod pins.
//
// The in-memory replica the roaming client syncs into runs goattest's
// conformance suite of gsync.Local without the tag, with the module's
// other tests.
package cluster

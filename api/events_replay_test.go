package api_test

import (
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/goat-gateway/goat-gateway/core"
	"github.com/goat-gateway/goat-gateway/internal/goattest"
	"github.com/goat-gateway/goat-gateway/node"
)

// A subscriber that replays a large repository and never reads is cut at
// the write deadline while the replay runs, not after it (issue 17, item
// 3): it costs what a live subscriber costs.
func TestEvents_ReplayToAClientThatDoesNotRead(t *testing.T) {
	g := startGateway(t, goattest.Config{WriteTimeout: 300 * time.Millisecond})
	alice := setupRepo(t, g)
	// 12 MiB of events: more than the loopback socket buffers hold
	// (the client's receive buffer is made small below).
	const records, batch = 1500, 250
	pad := strings.Repeat("x", 8<<10)
	for i := 0; i < records; i += batch {
		var cs []*core.Commit
		for j := i; j < i+batch; j++ {
			cs = append(cs, alice.CommitAt(1, "r", "k"+strconv.Itoa(j), map[string]any{"pad": pad}))
		}
		alice.Push(t, cs...)
	}

	conn, err := net.Dial("tcp", g.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := conn.(*net.TCPConn).SetReadBuffer(16 << 10); err != nil {
		t.Fatal(err)
	}
	_, err = io.WriteString(conn, "GET /v1/events?repo=r HTTP/1.1\r\nHost: gateway\r\n"+
		"Authorization: Bearer "+alice.Token+"\r\nLast-Event-ID: "+node.EventID(g.Node().ID(), 0)+"\r\n\r\n")
	if err != nil {
		t.Fatal(err)
	}
	goattest.WaitFor(t, "the subscriber to be replaying", func() bool { return g.Node().Subscribers() == 1 })
	// The client never reads: the handler must give up on its own.
	goattest.WaitFor(t, "the handler to give up on a client that does not read", func() bool { return g.Node().Subscribers() == 0 })
}

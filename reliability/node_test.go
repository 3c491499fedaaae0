package reliability

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/goat-gateway/goat-gateway/internal/goattest"
)

// node is a gateway served in this process on a loopback port, with an
// HTTP client sized for load.
type node struct {
	*goattest.Gateway
	url    string
	client *http.Client
}

func startNode(tb testing.TB, cfg goattest.Config) *node {
	tb.Helper()
	g := goattest.StartGateway(tb, cfg)
	n := &node{Gateway: g, url: g.URL(),
		client: &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 256}}}
	tb.Cleanup(n.client.CloseIdleConnections)
	return n
}

// do sends a request and returns status and body; it fails the test only
// if no answer comes.
func (n *node) do(tb testing.TB, method, path, token string, body []byte, headers ...string) (int, []byte) {
	tb.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, n.url+path, rd)
	if err != nil {
		tb.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := n.client.Do(req)
	if err != nil {
		tb.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatalf("%s %s: reading the body: %v", method, path, err)
	}
	return resp.StatusCode, b
}

// must is do that expects one of the statuses.
func (n *node) must(tb testing.TB, method, path, token string, body []byte, want ...int) []byte {
	tb.Helper()
	st, b := n.do(tb, method, path, token, body)
	if !slices.Contains(want, st) {
		tb.Fatalf("%s %s: status %d, want %v: %s", method, path, st, want, b)
	}
	return b
}

// stateDigest summarizes everything the node holds: every repository's
// name, commit count, id digest and log length, and the data directory's
// file names. Equal digests mean nothing was written.
func (n *node) stateDigest(tb testing.TB) string {
	tb.Helper()
	names, err := n.Node().Repos()
	if err != nil {
		tb.Fatal(err)
	}
	var b strings.Builder
	for _, name := range names {
		ri, err := n.Node().State(name)
		if err != nil {
			tb.Fatalf("repo %s: %v", name, err)
		}
		fmt.Fprintf(&b, "%s count=%d digest=%s len=%d\n", name, ri.Count, hex.EncodeToString(ri.Digest[:]), ri.LogLen)
	}
	entries, err := os.ReadDir(n.DataDir())
	if err != nil {
		tb.Fatal(err)
	}
	for _, e := range entries {
		if e.Name() != "NODE" { // the sequence lease may advance on its own
			fmt.Fprintf(&b, "file %s\n", e.Name())
		}
	}
	return b.String()
}

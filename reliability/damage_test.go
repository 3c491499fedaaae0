package reliability

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/goat-gateway/goat-gateway/internal/goattest"
)

// logFrames returns the byte offsets of the records of a log image, by
// walking the framing documented in storage/doc.go: a 32-byte header, then
// frames of length u32 | crc32c u32 | payload.
func logFrames(tb testing.TB, img []byte) []int {
	tb.Helper()
	const headerSize, frameHeaderSize = 32, 8
	var out []int
	for pos := headerSize; pos < len(img); {
		if pos+frameHeaderSize > len(img) {
			tb.Fatalf("log ends inside a frame header at %d", pos)
		}
		out = append(out, pos)
		pos += frameHeaderSize + int(binary.LittleEndian.Uint32(img[pos:]))
	}
	return out
}

// A byte flipped in the middle of a log: the repository's requests say it
// is damaged (not a bare 500), /readyz answers 503 naming it, other
// repositories are served, and `goat-gateway fsck --repair` keeps every
// intact record, those after the damage included.
func TestDamage_FlippedByteMidLog(t *testing.T) {
	bin := gatewayBinary(t)
	n := startNode(t, goattest.Config{})
	tok := n.Token("alice")
	n.must(t, "PUT", "/v1/repos/notes", tok, nil, 201)
	n.must(t, "PUT", "/v1/repos/other", tok, nil, 201)
	const items = 300
	for i := range items {
		n.must(t, "PUT", fmt.Sprintf("/v1/repos/notes/items/k%03d", i), tok, []byte(fmt.Sprintf(`{"schema":"any/1","data":{"v":%d}}`, i)), 201)
	}
	n.must(t, "PUT", "/v1/repos/other/items/x", tok, []byte(`{"schema":"any/1","data":{"v":1}}`), 201)
	n.Stop()

	path := filepath.Join(n.DataDir(), "notes.log")
	img, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	frames := logFrames(t, img)
	if len(frames) < items {
		t.Fatalf("%d records in the log, want at least %d", len(frames), items)
	}
	img[frames[items/2]+40] ^= 0x20 // inside the payload of the middle record
	if err := os.WriteFile(path, img, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := n.Start(); err != nil {
		t.Fatal(err)
	}

	st, body := n.do(t, "GET", "/v1/repos/notes/items/k000", tok, nil)
	var p struct{ Type, Title, Detail string }
	if err := json.Unmarshal(body, &p); err != nil || st != 500 || p.Title != "Repository damaged" ||
		!strings.Contains(p.Detail, `"notes"`) || !strings.Contains(p.Detail, "fsck --repair") || strings.Contains(p.Detail, ".log") {
		t.Fatalf("request to the damaged repository: %d %s; want 500 Repository damaged naming it and the repair, no file", st, body)
	}
	st, body = n.do(t, "GET", "/readyz", "", nil)
	if st != 503 || !strings.Contains(string(body), `"repo:notes":"damaged"`) {
		t.Fatalf("/readyz with a damaged repository: %d %s; want 503 naming it", st, body)
	}
	n.must(t, "GET", "/v1/repos/other/items/x", tok, nil, 200)
	n.Stop()

	out, err := exec.Command(bin, "fsck", "--data-dir", n.DataDir()).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "corrupt") {
		t.Fatalf("fsck without repair: %v\n%s; want a failure reporting the corrupt log", err, out)
	}
	out, err = exec.Command(bin, "fsck", "--data-dir", n.DataDir(), "--repair").CombinedOutput()
	if err != nil {
		t.Fatalf("fsck --repair: %v\n%s", err, out)
	}
	// Every record but the damaged one: the 150 before it and the rest
	// after it (items are independent, so none lost a parent).
	after := frames[items/2+1:]
	if want := fmt.Sprintf("%d intact records after the damage salvaged, 0 dropped", len(after)-closeMarkers(img, after)); !strings.Contains(string(out), want) {
		t.Fatalf("fsck --repair output lacks %q:\n%s", want, out)
	}
	if kept, _ := filepath.Glob(filepath.Join(n.DataDir(), "notes.log.damaged-*")); len(kept) != 1 {
		t.Fatalf("originals kept aside: %v, want one", kept)
	}

	if err := n.Start(); err != nil {
		t.Fatal(err)
	}
	n.must(t, "GET", "/readyz", "", nil, 200)
	got := n.Items(t, "notes")
	if len(got) != items-1 {
		t.Fatalf("%d items after repair, want %d (all but the damaged record's)", len(got), items-1)
	}
	if _, ok := got[fmt.Sprintf("k%03d", items/2)]; ok {
		t.Fatalf("the damaged record's item survived")
	}
	if _, ok := got[fmt.Sprintf("k%03d", items-1)]; !ok {
		t.Fatalf("the last item, written after the damage, was not salvaged")
	}
	n.must(t, "PUT", "/v1/repos/notes/items/after", tok, []byte(`{"schema":"any/1","data":{"v":1}}`), 201)
}

// closeMarkers counts the close markers (kind 2, written at clean closes)
// among frames: fsck skips them.
func closeMarkers(img []byte, frames []int) int {
	const frameHeaderSize, kindOffset = 8, 16
	n := 0
	for _, pos := range frames {
		if img[pos+frameHeaderSize+kindOffset] == 2 {
			n++
		}
	}
	return n
}

// The real binary names a damaged repository in /readyz at start, before
// any request opens it: a scan reads every log's framing and checksums in
// the background (issue 17, item 10). Another repository is served.
func TestDamage_ReadyzNamesDamageAtStart(t *testing.T) {
	bin := gatewayBinary(t)
	n := startNode(t, goattest.Config{})
	tok := n.Token("alice")
	n.must(t, "PUT", "/v1/repos/notes", tok, nil, 201)
	n.must(t, "PUT", "/v1/repos/other", tok, nil, 201)
	for i := range 20 {
		n.must(t, "PUT", fmt.Sprintf("/v1/repos/notes/items/k%02d", i), tok, []byte(fmt.Sprintf(`{"schema":"any/1","data":{"v":%d}}`, i)), 201)
	}
	n.must(t, "PUT", "/v1/repos/other/items/x", tok, []byte(`{"schema":"any/1","data":{"v":1}}`), 201)
	n.Stop()
	path := filepath.Join(n.DataDir(), "notes.log")
	img, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	frames := logFrames(t, img)
	img[frames[len(frames)/2]+40] ^= 0x20
	if err := os.WriteFile(path, img, 0o644); err != nil {
		t.Fatal(err)
	}

	logs, err := os.Create(filepath.Join(t.TempDir(), "gateway.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer logs.Close()
	p, err := spawnGateway(bin, logs, "serve", "--listen", "127.0.0.1:0", "--data-dir", n.DataDir(), "--dev", "--log-level", "warn")
	if err != nil {
		t.Fatal(err)
	}
	defer p.kill()
	select {
	case p.url = <-p.ready:
	case <-p.exited:
		t.Fatalf("the gateway exited while starting: %v", p.err)
	case <-time.After(goattest.Patience):
		t.Fatal("the gateway did not listen")
	}
	var st int
	var body []byte
	goattest.WaitFor(t, "/readyz naming the damaged repository", func() bool {
		resp, err := p.client.Get(p.url + "/readyz")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		st = resp.StatusCode
		body, _ = io.ReadAll(resp.Body)
		return st == 503 && strings.Contains(string(body), `"repo:notes":"damaged"`)
	})
	if strings.Contains(string(body), "repo:other") {
		t.Fatalf("/readyz names a healthy repository: %s", body)
	}
	req, _ := http.NewRequest("GET", p.url+"/v1/repos/other/items/x", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := p.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET a healthy repository's item while another is damaged: %d", resp.StatusCode)
	}
}

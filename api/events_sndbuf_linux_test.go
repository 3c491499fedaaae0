//go:build linux

package api_test

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"syscall"
	"testing"
	"time"

	"github.com/goat-gateway/goat-gateway/internal/goattest"
)

// recordingListener hands each accepted connection to conns.
type recordingListener struct {
	net.Listener
	conns chan net.Conn
}

func (l recordingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.conns <- c
	}
	return c, err
}

// An event stream's socket has a fixed send buffer, so a subscriber that
// does not read holds at most that much kernel memory and encoded events,
// not the 4 MiB the kernel would grow it to.
func TestEvents_StreamSendBuffer(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	rl := recordingListener{Listener: ln, conns: make(chan net.Conn, 64)}
	g := startGateway(t, goattest.Config{Listener: rl})
	tok := g.Token("alice")
	req, _ := http.NewRequest("PUT", g.URL()+"/v1/repos/notes", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("PUT /v1/repos/notes: %d", resp.StatusCode)
	}

	conn, err := net.Dial("tcp", g.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, "GET /v1/events?repo=notes HTTP/1.1\r\nHost: gateway\r\nAuthorization: Bearer "+tok+"\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(goattest.Patience))
	resp, err = http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /v1/events: %v %v", resp, err)
	}
	var server net.Conn
	for server == nil {
		c := goattest.Recv(t, rl.conns, "the stream's connection on the server")
		if c.RemoteAddr().String() == conn.LocalAddr().String() {
			server = c
		}
	}
	raw, err := server.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var size int
	var serr error
	if err := raw.Control(func(fd uintptr) { size, serr = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_SNDBUF) }); err != nil || serr != nil {
		t.Fatalf("getsockopt: %v %v", err, serr)
	}
	// api's streamSendBuffer (256 KiB), which Linux doubles for its
	// bookkeeping.
	if got, want := size, 2*(256<<10); got != want {
		t.Fatalf("SO_SNDBUF of the stream's socket = %d, want %d", got, want)
	}
}

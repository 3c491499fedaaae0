package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"
)

// sseEvent is one dispatched Server-Sent Event. Data aliases the parser's
// buffer: it is valid until the parser is fed again (for sseReader and
// sseStream, until the next call to Next).
type sseEvent struct {
	ID   string
	Name string
	Data []byte
}

// errStreamEnd is what a parser of a chunked body returns once the last
// chunk is in: the response is over.
var errStreamEnd = errors.New("event stream: last chunk")

// sseParser parses a text/event-stream as it arrives, in pieces of any
// size, optionally inside HTTP/1.1 chunked framing (what a raw connection
// carries: the gateway's streams are chunked). Lines end in LF or CRLF (a
// lone CR, which the spec also allows, is not supported: the gateway never
// sends one); a line starting with ':' is a comment; "field: value" with
// one optional space; data lines join with LF; a blank line dispatches; a
// last line without a terminator is never dispatched. It keeps no
// goroutine and, per event, copies the data once and allocates only the
// id, because one benchmark process reads tens of thousands of streams at
// once.
type sseParser struct {
	chunked bool
	// Chunked framing: the state, the size being read, and what is left
	// of the current chunk.
	cstate  int
	csize   int
	cdigits int
	cleft   int

	line    []byte // a line cut by the end of a piece
	data    []byte
	name    string
	id      string
	hasData bool
}

// Chunked framing states.
const (
	chunkSize      = iota // hex digits of the size
	chunkExt              // after the size, up to LF
	chunkData             // cleft bytes of data
	chunkDataEnd          // the CRLF after the data
	chunkTrailer          // after the last chunk
	chunkTrailerLn        // inside a trailer line
)

// feed parses p, the next bytes of the stream, and calls emit with every
// event it completes; it stops at emit's first error and returns it. The
// event's Data is valid during the call to emit only.
func (p *sseParser) feed(b []byte, emit func(sseEvent) error) error {
	if !p.chunked {
		return p.body(b, emit)
	}
	for len(b) > 0 {
		switch p.cstate {
		case chunkData:
			n := min(p.cleft, len(b))
			p.cleft -= n
			if p.cleft == 0 {
				p.cstate = chunkDataEnd
			}
			seg := b[:n]
			b = b[n:]
			if err := p.body(seg, emit); err != nil {
				return err
			}
		case chunkDataEnd:
			c := b[0]
			b = b[1:]
			switch c {
			case '\r':
			case '\n':
				p.cstate, p.csize, p.cdigits = chunkSize, 0, 0
			default:
				return fmt.Errorf("event stream: %q after a chunk's data", c)
			}
		case chunkSize:
			c := b[0]
			b = b[1:]
			switch {
			case '0' <= c && c <= '9', 'a' <= c && c <= 'f', 'A' <= c && c <= 'F':
				if p.csize > 1<<26 {
					return errors.New("event stream: chunk too large")
				}
				p.csize = p.csize<<4 | int(unhex(c))
				p.cdigits++
			case p.cdigits == 0:
				return fmt.Errorf("event stream: chunk size starts with %q", c)
			case c == '\n':
				p.chunkStart()
			case c == '\r' || c == ';' || c == ' ' || c == '\t':
				p.cstate = chunkExt
			default:
				return fmt.Errorf("event stream: %q in a chunk size", c)
			}
		case chunkExt:
			i := bytes.IndexByte(b, '\n')
			if i < 0 {
				b = nil
				break
			}
			b = b[i+1:]
			p.chunkStart()
		case chunkTrailer:
			c := b[0]
			b = b[1:]
			switch c {
			case '\r':
			case '\n':
				return errStreamEnd
			default:
				p.cstate = chunkTrailerLn
			}
		case chunkTrailerLn:
			i := bytes.IndexByte(b, '\n')
			if i < 0 {
				b = nil
				break
			}
			b = b[i+1:]
			p.cstate = chunkTrailer
		}
	}
	return nil
}

// chunkStart begins the chunk whose size line was just read.
func (p *sseParser) chunkStart() {
	if p.csize == 0 {
		p.cstate = chunkTrailer
		return
	}
	p.cstate, p.cleft = chunkData, p.csize
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c >= 'a':
		return c - 'a' + 10
	default:
		return c - 'A' + 10
	}
}

// body parses bytes of the event stream itself.
func (p *sseParser) body(b []byte, emit func(sseEvent) error) error {
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			p.line = append(p.line, b...)
			return nil
		}
		line := b[:i]
		if len(p.line) > 0 {
			p.line = append(p.line, line...)
			line = p.line
		}
		b = b[i+1:]
		err := p.lineDone(bytes.TrimSuffix(line, []byte{'\r'}), emit)
		p.line = p.line[:0]
		if err != nil {
			return err
		}
	}
	return nil
}

func (p *sseParser) lineDone(line []byte, emit func(sseEvent) error) error {
	if len(line) == 0 {
		if !p.hasData && p.name == "" {
			return nil // nothing to dispatch; the id waits for the event
		}
		ev := sseEvent{ID: p.id, Name: p.name, Data: p.data}
		if ev.Name == "" {
			ev.Name = "message"
		}
		p.data, p.name, p.id, p.hasData = p.data[:0], "", "", false
		return emit(ev)
	}
	if line[0] == ':' {
		return nil
	}
	field, value := line, []byte(nil)
	if i := bytes.IndexByte(line, ':'); i >= 0 {
		field, value = line[:i], line[i+1:]
		if len(value) > 0 && value[0] == ' ' {
			value = value[1:]
		}
	}
	switch string(field) {
	case "data":
		if p.hasData {
			p.data = append(p.data, '\n')
		}
		p.data = append(p.data, value...)
		p.hasData = true
	case "event":
		p.name = eventName(value)
	case "id":
		p.id = string(value)
	}
	return nil
}

// eventName returns name as a string, without allocating for the names
// the benchmark's servers send.
func eventName(name []byte) string {
	switch string(name) {
	case "commit":
		return "commit"
	case "commits":
		return "commits"
	case "ready":
		return "ready"
	case "reset":
		return "reset"
	case "message":
		return "message"
	}
	return string(name)
}

// sseReader reads the events of an event stream from an io.Reader, one at
// a time, with an sseParser.
type sseReader struct {
	r      io.Reader
	buf    []byte
	p      sseParser
	queue  []sseEvent // parsed and not yet returned
	arena  []byte     // their data
	err    error      // what ends the stream, once the queue is empty
	readAt time.Time  // when the last bytes were read
}

func newSSEReader(r io.Reader, size int) *sseReader {
	return &sseReader{r: r, buf: make([]byte, size)}
}

// Next returns the next event, skipping comments. It returns io.EOF (or
// the transport's error) when the stream ends.
func (r *sseReader) Next() (sseEvent, error) {
	for len(r.queue) == 0 {
		if r.err != nil {
			return sseEvent{}, r.err
		}
		r.arena = r.arena[:0]
		n, err := r.r.Read(r.buf)
		r.readAt = time.Now()
		if n > 0 {
			if ferr := r.p.feed(r.buf[:n], r.enqueue); ferr != nil {
				err = ferr
			}
		}
		if err != nil {
			if errors.Is(err, errStreamEnd) {
				err = io.EOF
			}
			r.err = err
		}
	}
	ev := r.queue[0]
	r.queue = r.queue[1:]
	return ev, nil
}

// enqueue keeps a parsed event, its data copied into the arena (which
// stays until the queue is empty).
func (r *sseReader) enqueue(ev sseEvent) error {
	start := len(r.arena)
	r.arena = append(r.arena, ev.Data...)
	ev.Data = r.arena[start:len(r.arena):len(r.arena)]
	if len(r.queue) == 0 {
		r.queue = r.queue[:0:0]
	}
	r.queue = append(r.queue, ev)
	return nil
}

// take hands over the reader's parser and the events it has parsed but
// not returned, with the time their bytes were read: a stream that leaves
// Next for a poller must lose nothing.
func (r *sseReader) take() (p sseParser, queued []sseEvent, readAt time.Time) {
	p, queued = r.p, r.queue
	r.p, r.queue = sseParser{}, nil
	return p, queued, r.readAt
}

// sseStream is one raw subscriber connection to an event stream: HTTP/1.1
// read by hand, so that a poller can take the socket over once the
// stream is live (pollSSE).
type sseStream struct {
	conn *net.TCPConn
	*sseReader
}

// dialSSE sends req, the request that opens an event stream (made by
// client.NewEventsRequest), to addr over a connection of its own from
// source address src (nil: any), so that tens of thousands of streams can
// spread over several loopback addresses instead of exhausting one
// address's ephemeral ports, and read without a goroutine each. It
// returns once the response headers are in.
func dialSSE(ctx context.Context, addr string, src net.IP, req *http.Request) (*sseStream, error) {
	d := net.Dialer{Timeout: 30 * time.Second}
	if src != nil {
		d.LocalAddr = &net.TCPAddr{IP: src}
	}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	conn := c.(*net.TCPConn)
	_ = conn.SetDeadline(time.Now().Add(60 * time.Second))
	if err := req.Write(conn); err != nil {
		conn.Close()
		return nil, err
	}
	br := bufio.NewReaderSize(conn, 4096)
	resp, err := http.ReadResponse(br, req)
	if err != nil {
		conn.Close()
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		conn.Close()
		return nil, fmt.Errorf("events: status %d: %s", resp.StatusCode, b)
	}
	// The body is read off the connection by hand from here on: first
	// what the header's reader holds beyond the header, then the socket.
	chunked := len(resp.TransferEncoding) > 0
	if chunked && (len(resp.TransferEncoding) != 1 || !strings.EqualFold(resp.TransferEncoding[0], "chunked")) {
		conn.Close()
		return nil, fmt.Errorf("events: transfer encoding %v", resp.TransferEncoding)
	}
	rest, _ := br.Peek(br.Buffered())
	r := newSSEReader(io.MultiReader(bytes.NewReader(bytes.Clone(rest)), conn), 4096)
	r.p.chunked = chunked
	_ = conn.SetDeadline(time.Time{})
	return &sseStream{conn: conn, sseReader: r}, nil
}

// Close ends the stream.
func (s *sseStream) Close() error { return s.conn.Close() }

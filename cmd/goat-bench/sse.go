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
	"time"
)

// sseEvent is one dispatched Server-Sent Event. Data aliases the reader's
// buffer: it is valid until the next call to Next.
type sseEvent struct {
	ID   string
	Name string
	Data []byte
}

// sseReader parses a text/event-stream: lines end in LF or CRLF (a lone
// CR, which the spec also allows, is not supported: the gateway never
// sends one); a line starting with ':' is a comment; "field: value" with one
// optional space; data lines join with LF; a blank line dispatches. It
// keeps allocations per event low, because one benchmark process reads
// tens of thousands of streams at once.
type sseReader struct {
	br   *bufio.Reader
	data []byte
	long []byte
	ev   sseEvent
}

func newSSEReader(r io.Reader, size int) *sseReader {
	return &sseReader{br: bufio.NewReaderSize(r, size)}
}

// line returns the next line without its terminator. The slice aliases
// the reader's buffer, or r.long for lines longer than the buffer.
func (r *sseReader) line() ([]byte, error) {
	r.long = r.long[:0]
	for {
		chunk, err := r.br.ReadSlice('\n')
		switch {
		case err == nil:
			line := chunk[:len(chunk)-1]
			if len(r.long) > 0 {
				line = append(r.long, line...)
				r.long = line
			}
			return bytes.TrimSuffix(line, []byte{'\r'}), nil
		case errors.Is(err, bufio.ErrBufferFull):
			r.long = append(r.long, chunk...)
		default:
			// A last line without a terminator is never dispatched.
			return nil, err
		}
	}
}

// Next returns the next event, skipping comments. It returns io.EOF (or
// the transport's error) when the stream ends.
func (r *sseReader) Next() (sseEvent, error) {
	r.data = r.data[:0]
	r.ev = sseEvent{}
	hasData := false
	for {
		line, err := r.line()
		if err != nil {
			return sseEvent{}, err
		}
		if len(line) == 0 {
			if !hasData && r.ev.Name == "" {
				continue
			}
			r.ev.Data = r.data
			if r.ev.Name == "" {
				r.ev.Name = "message"
			}
			return r.ev, nil
		}
		if line[0] == ':' {
			continue
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
			if hasData {
				r.data = append(r.data, '\n')
			}
			r.data = append(r.data, value...)
			hasData = true
		case "event":
			r.ev.Name = string(value)
		case "id":
			r.ev.ID = string(value)
		}
	}
}

// sseStream is one raw subscriber connection to GET /v1/events.
type sseStream struct {
	conn net.Conn
	body io.ReadCloser
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
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
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
	_ = conn.SetDeadline(time.Time{})
	return &sseStream{conn: conn, body: resp.Body, sseReader: newSSEReader(resp.Body, 4096)}, nil
}

// Close ends the stream.
func (s *sseStream) Close() error { return s.conn.Close() }

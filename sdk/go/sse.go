package goat

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/goat-gateway/goat-gateway/core"
)

// sseEvent is one dispatched Server-Sent Event.
type sseEvent struct {
	ID    string // the last event id as of this event (sticky, as in the spec)
	Name  string // "message" when the stream named none
	Data  string
	Retry int // the reconnect delay in ms the stream asked for so far; 0 if none
}

// sseReader parses a text/event-stream (the WHATWG HTML "event stream
// interpretation"): lines end in CRLF, LF or CR; "field: value" lines
// build an event; a blank line dispatches it; lines starting with ":" are
// comments. Unlike a browser it bounds memory: a line or an event's data
// longer than max bytes is an error (the stream is then dropped and
// replayed from Last-Event-ID), so a broken or hostile server cannot make
// it buffer without limit.
type sseReader struct {
	sc     *bufio.Scanner
	max    int
	lastID string
	retry  int
	// onLine is called for every line read, comments and blank lines
	// included: the caller's idle watchdog counts heartbeats with it.
	onLine func()
}

var errSSETooLong = fmt.Errorf("%w: event stream line or event longer than the limit", core.ErrTooLarge)

func newSSEReader(r io.Reader, max int) *sseReader {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, min(max, 64<<10)), max)
	sc.Split(splitSSELine)
	return &sseReader{sc: sc, max: max}
}

// splitSSELine splits at CRLF, LF or a lone CR. A CR at the end of the
// buffered data waits for the next byte, which may be its LF.
func splitSSELine(data []byte, atEOF bool) (int, []byte, error) {
	if atEOF && len(data) == 0 {
		return 0, nil, nil
	}
	if i := indexEOL(data); i >= 0 {
		if data[i] == '\n' {
			return i + 1, data[:i], nil
		}
		if i+1 < len(data) {
			if data[i+1] == '\n' {
				return i + 2, data[:i], nil
			}
			return i + 1, data[:i], nil
		}
		if atEOF {
			return i + 1, data[:i], nil
		}
		return 0, nil, nil
	}
	if atEOF {
		// An unterminated last line; the event it belongs to is never
		// dispatched (no blank line follows), as the spec says.
		return len(data), data, nil
	}
	return 0, nil, nil
}

// indexEOL returns the index of the first CR or LF in data, or -1. Two
// IndexByte scans are vectorized where IndexAny tests byte by byte, and
// an event's data line is hundreds of bytes.
func indexEOL(data []byte) int {
	lf := bytes.IndexByte(data, '\n')
	head := data
	if lf >= 0 {
		head = data[:lf]
	}
	if cr := bytes.IndexByte(head, '\r'); cr >= 0 {
		return cr
	}
	return lf
}

// eventName returns name as a string, without allocating for the names
// the gateway sends.
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
	case "expired":
		return "expired"
	}
	return string(name)
}

// Next returns the next event. At the end of the stream it returns io.EOF
// (an event cut off by the end is discarded).
func (p *sseReader) Next() (sseEvent, error) {
	var name string
	var data strings.Builder
	hasData := false
	for p.sc.Scan() {
		if p.onLine != nil {
			p.onLine()
		}
		line := p.sc.Bytes()
		if len(line) == 0 {
			if !hasData {
				name = ""
				continue
			}
			ev := sseEvent{ID: p.lastID, Name: name, Data: data.String(), Retry: p.retry}
			if ev.Name == "" {
				ev.Name = "message"
			}
			return ev, nil
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
		case "event":
			name = eventName(value)
		case "data":
			if data.Len()+len(value)+1 > p.max {
				return sseEvent{}, errSSETooLong
			}
			if hasData {
				data.WriteByte('\n')
			}
			data.Write(value)
			hasData = true
		case "id":
			if bytes.IndexByte(value, 0) < 0 {
				p.lastID = string(value)
			}
		case "retry":
			if n, err := strconv.Atoi(string(value)); err == nil && n >= 0 && isDigits(value) {
				p.retry = n
			}
		}
	}
	if err := p.sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return sseEvent{}, errSSETooLong
		}
		return sseEvent{}, err
	}
	return sseEvent{}, io.EOF
}

func isDigits(b []byte) bool {
	for _, c := range b {
		if c < '0' || c > '9' {
			return false
		}
	}
	return len(b) > 0
}

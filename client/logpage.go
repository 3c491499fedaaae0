package client

import (
	"encoding/json"

	"github.com/goat-gateway/goat-gateway/core"
	gsync "github.com/goat-gateway/goat-gateway/sync"
)

// decodeLogPage reads a log page (openapi.yaml LogPage). A clone reads
// every commit of a repository through here, so the page the gateway
// writes (api's log handler: {"commits":[...],"next":"...","tail":b},
// no whitespace) is split by splitLogPage, which finds each commit's bytes
// without building values; any other spelling of a page goes through
// encoding/json, which also words the error for a malformed one. Either
// way the commits are the bytes received, so core.DecodeCommit checks
// their ids over exactly those bytes.
func decodeLogPage(op string, r reply) (*gsync.LogPage, error) {
	if commits, next, tail, ok := splitLogPage(r.body); ok {
		return &gsync.LogPage{Commits: commits, Next: next, More: !tail}, nil
	}
	var page struct {
		Commits []json.RawMessage `json:"commits"`
		Next    string            `json:"next"`
		Tail    bool              `json:"tail"`
	}
	if err := decode(op, r, &page); err != nil {
		return nil, err
	}
	return &gsync.LogPage{Commits: page.Commits, Next: page.Next, More: !page.Tail}, nil
}

// splitLogPage splits a log page spelled exactly as the gateway writes it
// into its commits (subslices of b, each a valid JSON value), next and
// tail. It reports false for anything else, valid or not: a caller then
// decodes b with encoding/json, and whatever splitLogPage accepts,
// encoding/json reads as the same page (FuzzSplitLogPage holds it to
// that). It validates each commit's JSON as encoding/json does (invalid
// UTF-8 and lone surrogate escapes included: core.DecodeCommit refuses
// those) but does not build it.
func splitLogPage(b []byte) (commits []json.RawMessage, next string, tail bool, ok bool) {
	const head, mid = `{"commits":[`, `,"next":"`
	if len(b) < len(head) || string(b[:len(head)]) != head {
		return nil, "", false, false
	}
	s := pageScanner{b: b, i: len(head)}
	commits = []json.RawMessage{}
	if s.peek() == ']' {
		s.i++
	} else {
		// Each commit is about 600 bytes: one allocation for the page.
		commits = make([]json.RawMessage, 0, len(b)/512+1)
		for {
			start := s.i
			if !s.value(0) {
				return nil, "", false, false
			}
			commits = append(commits, b[start:s.i:s.i])
			c := s.peek()
			s.i++
			if c == ']' {
				break
			}
			if c != ',' {
				return nil, "", false, false
			}
		}
	}
	if !s.lit(mid) {
		return nil, "", false, false
	}
	// A cursor is base64url: printable ASCII without escapes, so the bytes
	// are the string encoding/json would make of them.
	start := s.i
	for s.i < len(b) && b[s.i] >= 0x20 && b[s.i] < 0x80 && b[s.i] != '"' && b[s.i] != '\\' {
		s.i++
	}
	next = string(b[start:s.i])
	switch {
	case s.lit(`","tail":true}`):
		tail = true
	case s.lit(`","tail":false}`):
	default:
		return nil, "", false, false
	}
	if s.i != len(b) {
		return nil, "", false, false
	}
	return commits, next, tail, true
}

// maxSplitDepth bounds the nesting splitLogPage follows; deeper input is
// left to encoding/json (core refuses commits nested deeper than
// core.MaxJSONDepth anyway).
const maxSplitDepth = core.MaxJSONDepth + 2

// pageScanner validates JSON values (RFC 8259, as encoding/json reads
// them) without building them.
type pageScanner struct {
	b []byte
	i int
}

// peek returns the byte at the cursor, 0 at the end.
func (s *pageScanner) peek() byte {
	if s.i < len(s.b) {
		return s.b[s.i]
	}
	return 0
}

// lit consumes lit if the input continues with it.
func (s *pageScanner) lit(lit string) bool {
	if len(s.b)-s.i < len(lit) || string(s.b[s.i:s.i+len(lit)]) != lit {
		return false
	}
	s.i += len(lit)
	return true
}

func (s *pageScanner) space() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// value consumes one JSON value, not the whitespace around it.
func (s *pageScanner) value(depth int) bool {
	ok := false
	switch c := s.peek(); {
	case c == '"':
		ok = s.str()
	case c == '{':
		ok = depth < maxSplitDepth && s.object(depth+1)
	case c == '[':
		ok = depth < maxSplitDepth && s.array(depth+1)
	case c == 't':
		ok = s.lit("true")
	case c == 'f':
		ok = s.lit("false")
	case c == 'n':
		ok = s.lit("null")
	case c == '-' || (c >= '0' && c <= '9'):
		ok = s.number()
	}
	return ok
}

func (s *pageScanner) object(depth int) bool {
	s.i++ // {
	s.space()
	if s.peek() == '}' {
		s.i++
		return true
	}
	for {
		s.space()
		if s.peek() != '"' || !s.str() {
			return false
		}
		s.space()
		if s.peek() != ':' {
			return false
		}
		s.i++
		s.space()
		if !s.value(depth) {
			return false
		}
		s.space()
		c := s.peek()
		s.i++
		switch c {
		case ',':
		case '}':
			return true
		default:
			return false
		}
	}
}

func (s *pageScanner) array(depth int) bool {
	s.i++ // [
	s.space()
	if s.peek() == ']' {
		s.i++
		return true
	}
	for {
		s.space()
		if !s.value(depth) {
			return false
		}
		s.space()
		c := s.peek()
		s.i++
		switch c {
		case ',':
		case ']':
			return true
		default:
			return false
		}
	}
}

// plainByte marks the bytes a string holds as they are: not the quote,
// the backslash or a control character.
var plainByte = func() (t [256]bool) {
	for c := 0x20; c < 256; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

func (s *pageScanner) str() bool {
	s.i++ // opening quote
	for {
		for s.i < len(s.b) && plainByte[s.b[s.i]] {
			s.i++
		}
		if s.i >= len(s.b) {
			return false
		}
		switch s.b[s.i] {
		case '"':
			s.i++
			return true
		case '\\':
			if s.i+1 >= len(s.b) {
				return false
			}
			switch s.b[s.i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				s.i += 2
			case 'u':
				if len(s.b)-s.i < 6 {
					return false
				}
				for _, h := range s.b[s.i+2 : s.i+6] {
					if !('0' <= h && h <= '9' || 'a' <= h && h <= 'f' || 'A' <= h && h <= 'F') {
						return false
					}
				}
				s.i += 6
			default:
				return false
			}
		default: // a control character
			return false
		}
	}
}

func (s *pageScanner) number() bool {
	digits := func() int {
		n := 0
		for s.i < len(s.b) && s.b[s.i] >= '0' && s.b[s.i] <= '9' {
			s.i++
			n++
		}
		return n
	}
	if s.peek() == '-' {
		s.i++
	}
	if s.peek() == '0' {
		s.i++
	} else if digits() == 0 {
		return false
	}
	if s.peek() == '.' {
		s.i++
		if digits() == 0 {
			return false
		}
	}
	if c := s.peek(); c == 'e' || c == 'E' {
		s.i++
		if c := s.peek(); c == '+' || c == '-' {
			s.i++
		}
		if digits() == 0 {
			return false
		}
	}
	return true
}

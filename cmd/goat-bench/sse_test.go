package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
)

func readAll(tb testing.TB, stream string, size int) []sseEvent {
	tb.Helper()
	r := newSSEReader(strings.NewReader(stream), size)
	var out []sseEvent
	for {
		ev, err := r.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			tb.Fatalf("Next: %v", err)
		}
		ev.Data = append([]byte(nil), ev.Data...)
		out = append(out, ev)
	}
}

func TestSSEReader_Next(t *testing.T) {
	long := strings.Repeat("x", 5000)
	for _, tc := range []struct {
		name   string
		stream string
		want   []sseEvent
	}{
		{"Gateway", "retry: 2000\n\nid: n.1\nevent: ready\ndata: {}\n\n: ping\n\nid: n.2\nevent: commit\ndata: {\"a\":1}\n\n",
			[]sseEvent{{ID: "n.1", Name: "ready", Data: []byte("{}")}, {ID: "n.2", Name: "commit", Data: []byte(`{"a":1}`)}}},
		{"CRLF", "event: x\r\ndata: 1\r\n\r\n", []sseEvent{{Name: "x", Data: []byte("1")}}},
		{"MultiLineData", "data: a\ndata: b\n\n", []sseEvent{{Name: "message", Data: []byte("a\nb")}}},
		{"NoSpace", "event:x\ndata:y\n\n", []sseEvent{{Name: "x", Data: []byte("y")}}},
		{"LongLine", "event: big\ndata: " + long + "\n\n", []sseEvent{{Name: "big", Data: []byte(long)}}},
		{"UnterminatedLast", "event: x\ndata: 1", nil},
		{"OnlyComments", ": a\n: b\n\n\n", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := readAll(t, tc.stream, 16)
			if len(got) != len(tc.want) {
				t.Fatalf("got %d events %+v, want %d", len(got), got, len(tc.want))
			}
			for i := range got {
				if got[i].ID != tc.want[i].ID || got[i].Name != tc.want[i].Name || string(got[i].Data) != string(tc.want[i].Data) {
					t.Fatalf("event %d = %+v, want %+v", i, got[i], tc.want[i])
				}
			}
		})
	}
}

// The buffer size must not change what is parsed.
func FuzzSSEReader(f *testing.F) {
	f.Add("id: n.1\nevent: commit\ndata: {}\n\n: ping\n\n", uint8(16))
	f.Add("data: a\r\ndata: b\r\n\r\nevent:x\n\n", uint8(3))
	f.Add(":\n\n\n\ndata\n\n", uint8(1))
	f.Fuzz(func(t *testing.T, stream string, size uint8) {
		a := readAll(t, stream, 16+int(size))
		b := readAll(t, stream, 4096)
		if len(a) != len(b) {
			t.Fatalf("%d events with a small buffer, %d with a large one", len(a), len(b))
		}
		for i := range a {
			if a[i].ID != b[i].ID || a[i].Name != b[i].Name || string(a[i].Data) != string(b[i].Data) {
				t.Fatalf("event %d differs: %+v vs %+v", i, a[i], b[i])
			}
		}
	})
}

// oracleEvents parses stream with the plain line reader that the parser
// replaced (bufio lines, one event at a time): what any way of feeding
// the parser must give.
func oracleEvents(stream string) []sseEvent {
	br := bufio.NewReader(strings.NewReader(stream))
	var out []sseEvent
	var ev sseEvent
	var data []byte
	hasData := false
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return out // a last line without a terminator is never dispatched
		}
		line = strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r")
		switch {
		case line == "":
			if !hasData && ev.Name == "" {
				continue
			}
			ev.Data = data
			if ev.Name == "" {
				ev.Name = "message"
			}
			out = append(out, ev)
			ev, data, hasData = sseEvent{}, nil, false
		case line[0] == ':':
		default:
			field, value, _ := strings.Cut(line, ":")
			value = strings.TrimPrefix(value, " ")
			switch field {
			case "data":
				if hasData {
					data = append(data, '\n')
				}
				data = append(data, value...)
				hasData = true
			case "event":
				ev.Name = value
			case "id":
				ev.ID = value
			}
		}
	}
}

// chunk frames stream as an HTTP/1.1 chunked body, cutting it after the
// given lengths (the rest in one chunk), and ends it.
func chunk(stream string, cuts []int) string {
	var b strings.Builder
	for _, n := range cuts {
		if n <= 0 || len(stream) == 0 {
			continue
		}
		n = min(n, len(stream))
		fmt.Fprintf(&b, "%x\r\n%s\r\n", n, stream[:n])
		stream = stream[n:]
	}
	if len(stream) > 0 {
		fmt.Fprintf(&b, "%x;ext=1\r\n%s\r\n", len(stream), stream)
	}
	b.WriteString("0\r\nTrailer: x\r\n\r\n")
	return b.String()
}

// feedAll feeds raw to a parser in the pieces cut after the given
// lengths and returns the events (data copied) and the error that ended
// the feeding.
func feedAll(chunked bool, raw string, cuts []int) ([]sseEvent, error) {
	p := sseParser{chunked: chunked}
	var out []sseEvent
	emit := func(ev sseEvent) error {
		ev.Data = append([]byte(nil), ev.Data...)
		out = append(out, ev)
		return nil
	}
	for _, n := range append(cuts, len(raw)) {
		n = min(max(n, 0), len(raw))
		if err := p.feed([]byte(raw[:n]), emit); err != nil {
			return out, err
		}
		raw = raw[n:]
	}
	return out, nil
}

func sameEvents(tb testing.TB, got, want []sseEvent) {
	tb.Helper()
	if len(got) != len(want) {
		tb.Fatalf("got %d events %+v, want %d %+v", len(got), got, len(want), want)
	}
	for i := range got {
		if got[i].ID != want[i].ID || got[i].Name != want[i].Name || string(got[i].Data) != string(want[i].Data) {
			tb.Fatalf("event %d = %+v, want %+v", i, got[i], want[i])
		}
	}
}

func TestSSEParser_Feed(t *testing.T) {
	stream := "retry: 2000\n\nid: n.1\nevent: ready\ndata: {}\n\n: ping\n\nid: n.2\nevent: commit\ndata: {\"a\":1}\r\ndata: 2\r\n\r\n"
	want := oracleEvents(stream)
	if len(want) != 2 {
		t.Fatalf("oracle: %d events, want 2", len(want))
	}
	t.Run("SplitAnywhere", func(t *testing.T) {
		for i := 0; i <= len(stream); i++ {
			got, err := feedAll(false, stream, []int{i})
			if err != nil {
				t.Fatal(err)
			}
			sameEvents(t, got, want)
		}
	})
	t.Run("ChunkedSplitAnywhere", func(t *testing.T) {
		for c := 1; c < len(stream); c += 7 {
			raw := chunk(stream, []int{c, 3, 1})
			for i := 0; i <= len(raw); i++ {
				got, err := feedAll(true, raw, []int{i, 2})
				if !errors.Is(err, errStreamEnd) {
					t.Fatalf("chunk %d, split %d: err %v, want the stream's end", c, i, err)
				}
				sameEvents(t, got, want)
			}
		}
	})
	t.Run("BadChunkFraming", func(t *testing.T) {
		for _, raw := range []string{"5\r\ndata:x\r\n", "zz\r\n", "3\r\nabcXY"} {
			if _, err := feedAll(true, raw, nil); err == nil || errors.Is(err, errStreamEnd) {
				t.Fatalf("%q: err %v, want a framing error", raw, err)
			}
		}
	})
	t.Run("ChunkedThroughReader", func(t *testing.T) {
		r := newSSEReader(strings.NewReader(chunk(stream, []int{5, 40})), 16)
		r.p.chunked = true
		var got []sseEvent
		for {
			ev, err := r.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			ev.Data = append([]byte(nil), ev.Data...)
			got = append(got, ev)
		}
		sameEvents(t, got, want)
	})
}

// Any stream, framed in any chunks and fed in any pieces, parses as the
// plain line reader parses it.
func FuzzSSEParser(f *testing.F) {
	f.Add("id: n.1\nevent: commit\ndata: {}\n\n: ping\n\n", uint8(3), uint8(5), uint8(1))
	f.Add("data: a\r\ndata: b\r\n\r\nevent:x\n\nid: 7\n\ndata\n\n", uint8(1), uint8(0), uint8(9))
	f.Fuzz(func(t *testing.T, stream string, c1, c2, split uint8) {
		want := oracleEvents(stream)
		got, err := feedAll(false, stream, []int{int(split), int(c1)})
		if err != nil {
			t.Fatal(err)
		}
		sameEvents(t, got, want)
		got, err = feedAll(true, chunk(stream, []int{int(c1), int(c2)}), []int{int(split), int(c2)})
		if !errors.Is(err, errStreamEnd) {
			t.Fatalf("err %v, want the stream's end", err)
		}
		sameEvents(t, got, want)
	})
}

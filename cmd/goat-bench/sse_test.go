package main

import (
	"errors"
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

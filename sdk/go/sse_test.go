package goat

import (
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/goat-gateway/goat-gateway/core"
)

func readAll(t testing.TB, r io.Reader, max int) ([]sseEvent, error) {
	t.Helper()
	p := newSSEReader(r, max)
	var out []sseEvent
	for {
		ev, err := p.Next()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return out, nil
			}
			return out, err
		}
		out = append(out, ev)
	}
}

func TestSSEReader_Next(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     []sseEvent
	}{
		{"Empty", "", nil},
		{"OneEvent", "id: n.1\nevent: commit\ndata: {}\n\n", []sseEvent{{ID: "n.1", Name: "commit", Data: "{}"}}},
		{"DefaultName", "data: x\n\n", []sseEvent{{Name: "message", Data: "x"}}},
		{"MultiLineData", "data: a\ndata: b\ndata\n\n", []sseEvent{{Name: "message", Data: "a\nb\n"}}},
		{"CRLF", "event: e\r\ndata: 1\r\n\r\n", []sseEvent{{Name: "e", Data: "1"}}},
		{"LoneCR", "event: e\rdata: 1\r\r", []sseEvent{{Name: "e", Data: "1"}}},
		{"CommentsAndRetry", ": ping\nretry: 2000\n\n: ping\ndata: x\n\n", []sseEvent{{Name: "message", Data: "x", Retry: 2000}}},
		{"BadRetryIgnored", "retry: 2s\ndata: x\n\n", []sseEvent{{Name: "message", Data: "x"}}},
		{"IDIsSticky", "id: a\ndata: 1\n\ndata: 2\n\n", []sseEvent{{ID: "a", Name: "message", Data: "1"}, {ID: "a", Name: "message", Data: "2"}}},
		{"IDWithNULIgnored", "id: a\x00b\ndata: 1\n\n", []sseEvent{{Name: "message", Data: "1"}}},
		{"NoSpaceAfterColon", "data:x\n\n", []sseEvent{{Name: "message", Data: "x"}}},
		{"OnlyFirstSpaceStripped", "data:  x\n\n", []sseEvent{{Name: "message", Data: " x"}}},
		{"EventWithoutDataNotDispatched", "event: ready\n\ndata: 1\n\n", []sseEvent{{Name: "message", Data: "1"}}},
		{"UnknownFieldIgnored", "foo: bar\ndata: 1\n\n", []sseEvent{{Name: "message", Data: "1"}}},
		{"UnterminatedEventDropped", "data: 1\n\ndata: 2\n", []sseEvent{{Name: "message", Data: "1"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// One byte at a time as well: a CR at the end of a read must
			// wait for its LF.
			for _, r := range []io.Reader{strings.NewReader(tc.in), iotest.OneByteReader(strings.NewReader(tc.in))} {
				got, err := readAll(t, r, 1<<10)
				if err != nil {
					t.Fatal(err)
				}
				if len(got) != len(tc.want) {
					t.Fatalf("got %d events %+v, want %+v", len(got), got, tc.want)
				}
				for i := range got {
					if got[i] != tc.want[i] {
						t.Fatalf("event %d = %+v, want %+v", i, got[i], tc.want[i])
					}
				}
			}
		})
	}
}

func TestSSEReader_Bounded(t *testing.T) {
	for _, tc := range []struct{ name, in string }{
		{"LongLine", "data: " + strings.Repeat("x", 200) + "\n\n"},
		{"LongComment", ":" + strings.Repeat("x", 200) + "\n"},
		{"ManyDataLines", strings.Repeat("data: "+strings.Repeat("x", 50)+"\n", 10) + "\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := readAll(t, strings.NewReader(tc.in), 128)
			if !errors.Is(err, core.ErrTooLarge) {
				t.Fatalf("err %v, want ErrTooLarge", err)
			}
		})
	}
}

func FuzzSSEReader(f *testing.F) {
	f.Add("id: n.1\nevent: commit\ndata: {}\n\n", 64)
	f.Add("event: e\rdata: 1\r\r: ping\r\n", 16)
	f.Add("retry: 10\ndata\n\ndata: a\ndata: b\n\n", 8)
	f.Fuzz(func(t *testing.T, in string, max int) {
		if max < 1 || max > 1<<16 {
			return
		}
		evs, err := readAll(t, strings.NewReader(in), max)
		if err != nil && !errors.Is(err, core.ErrTooLarge) {
			t.Fatalf("unexpected error %v", err)
		}
		for _, ev := range evs {
			if len(ev.Data) > max || strings.ContainsRune(ev.ID, 0) || ev.Name == "" {
				t.Fatalf("bad event %+v (max %d)", ev, max)
			}
		}
	})
}

// BenchmarkSSEReader_Next is the reader's cost per event of the size the
// gateway sends for a small commit, with the idle watchdog's hook set as
// the stream sets it.
func BenchmarkSSEReader_Next(b *testing.B) {
	data := `{"commit":{"author":"s_4kq","data":{"n":1,"title":"` + strings.Repeat("x", 200) + `"},"id":"` + strings.Repeat("9f", 32) +
		`","key":"live-1","parents":[],"repo":"live","schema":"any/1","sig":"` + strings.Repeat("A", 86) + `","ts":1763800000000},"repo":"live"}`
	const perStream = 1000
	var sb strings.Builder
	for i := range perStream {
		sb.WriteString("id: n1.")
		sb.WriteString(strings.Repeat("7", 1+i%6))
		sb.WriteString("\nevent: commit\ndata: ")
		sb.WriteString(data)
		sb.WriteString("\n\n")
	}
	stream := sb.String()
	b.SetBytes(int64(len(stream)))
	b.ReportAllocs()
	idle := time.AfterFunc(time.Hour, func() {})
	defer idle.Stop()
	for b.Loop() {
		rd := newSSEReader(strings.NewReader(stream), 1<<20)
		rd.onLine = func() { idle.Reset(time.Hour) }
		for range perStream {
			if _, err := rd.Next(); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*perStream), "ns/event")
}

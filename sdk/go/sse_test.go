package goat

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/goat-gateway/goat-gateway/api"
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

func TestProblemFromResponse(t *testing.T) {
	for _, tc := range []struct {
		name        string
		status      int
		contentType string
		body        string
		want        error
	}{
		{"NotFound", 404, "application/problem+json", `{"type":"https://goat-gateway.dev/problems/not-found","title":"Not found","status":404,"detail":"x"}`, core.ErrNotFound},
		{"MustReconcile", 409, "application/problem+json", `{"type":"https://goat-gateway.dev/problems/must-reconcile","status":409}`, core.ErrMustReconcile},
		{"Conflict", 409, "application/problem+json", `{"type":"https://goat-gateway.dev/problems/conflict","status":409}`, core.ErrConflict},
		{"Schema", 422, "application/problem+json", `{"type":"https://goat-gateway.dev/problems/schema-violation"}`, core.ErrSchema},
		{"MissingParents", 422, "application/problem+json", `{"type":"https://goat-gateway.dev/problems/missing-parents"}`, core.ErrMissingParents},
		{"BadSignature", 422, "application/problem+json", `{"type":"https://goat-gateway.dev/problems/bad-signature"}`, core.ErrBadSignature},
		{"Unauthenticated", 401, "application/problem+json", `{"type":"https://goat-gateway.dev/problems/unauthenticated"}`, core.ErrUnauthenticated},
		{"Forbidden", 403, "application/problem+json", `{"type":"https://goat-gateway.dev/problems/forbidden"}`, core.ErrForbidden},
		{"TooLarge", 413, "application/problem+json", `{"type":"https://goat-gateway.dev/problems/too-large"}`, core.ErrTooLarge},
		{"Invalid", 400, "application/problem+json", `{"type":"https://goat-gateway.dev/problems/invalid-request"}`, core.ErrInvalid},
		{"Unavailable", 503, "application/problem+json", `{"type":"https://goat-gateway.dev/problems/unavailable"}`, core.ErrClosed},
		{"RateLimited", 429, "application/problem+json", `{"type":"https://goat-gateway.dev/problems/rate-limited"}`, ErrRateLimited},
		{"ProxyPage", 404, "text/html", `<html>nope</html>`, core.ErrNotFound},
		{"Internal", 500, "application/problem+json", `{"type":"https://goat-gateway.dev/problems/internal"}`, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := problemFromResponse(tc.status, tc.contentType, []byte(tc.body))
			if got := p.Unwrap(); got != tc.want {
				t.Fatalf("sentinel %v, want %v", got, tc.want)
			}
			if tc.want != nil && !errors.Is(error(p), tc.want) {
				t.Fatalf("errors.Is(%v, %v) is false", p, tc.want)
			}
			if p.Error() == "" {
				t.Fatal("empty message")
			}
		})
	}
}

// The table mirrors the gateway's: every sentinel the gateway maps to a
// problem type comes back as itself.
func TestProblemSentinels_MirrorGateway(t *testing.T) {
	for _, s := range []error{
		core.ErrNotFound, core.ErrInvalid, core.ErrTooLarge, core.ErrConflict, core.ErrBadSignature,
		core.ErrMissingParents, core.ErrSchema, core.ErrUnauthenticated, core.ErrForbidden,
		core.ErrMustReconcile, core.ErrClosed,
	} {
		t.Run(s.Error(), func(t *testing.T) {
			p := api.ProblemFor(fmt.Errorf("context: %w", s))
			if got := sentinelForType(p.Type); got != s {
				t.Fatalf("problem type %s maps back to %v, want %v", p.Type, got, s)
			}
		})
	}
}

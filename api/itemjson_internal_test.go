package api

import (
	"bytes"
	"encoding/json"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/goat-gateway/goat-gateway/gen/apiserver"
	"github.com/goat-gateway/goat-gateway/gen/models"
)

// encodeStd is what the generated PutItem responses write: encoding/json's
// Encoder, HTML escaping on, one trailing newline.
func encodeStd(tb testing.TB, it models.Item) []byte {
	tb.Helper()
	var buf bytes.Buffer
	if err := json.NewEncoder(&buf).Encode(it); err != nil {
		tb.Fatalf("encoding/json: %v", err)
	}
	return buf.Bytes()
}

// itemJSONStrings need every escape encoding/json makes: quotes,
// backslashes, control bytes (\b and \f short, others \u00XX), HTML's
// <, > and &, U+2028/U+2029, invalid UTF-8, and multi-byte runes left
// as they are.
var itemJSONStrings = []string{
	"", "plain", `say "hi"`, `back\slash`, "line\nbreak\r\ttab", "\b\f\x00\x01\x1f\x7f",
	"<script>&amp;</script>", "sep\u2028para\u2029", "bad\xffutf8\xc3", "trunc\xe2\x82",
	"héllo wörld ✓ 😀", "\ufffd", "/slash/", "'single'",
}

var itemJSONNumbers = []float64{
	0, math.Copysign(0, -1), 1, -1, 0.1, 1.5, 1e-6, 9.99e-7, 1e-7, 1e20, 1e21, 1.2345e21,
	-1e-9, 123456789012345678, 1 << 53, math.MaxFloat64, math.SmallestNonzeroFloat64, 3.14159265358979,
}

func TestAppendItemJSON_MatchesEncodingJSON(t *testing.T) {
	tru, fal := true, false
	var nested []any
	for _, s := range itemJSONStrings {
		nested = append(nested, s, map[string]any{s: s})
	}
	for _, f := range itemJSONNumbers {
		nested = append(nested, f)
	}
	cases := map[string]models.Item{
		"empty":       {},
		"nil data":    {Data: nil, Head: "0e13", Key: "k", Schema: "any/1", Ts: 1},
		"empty data":  {Data: map[string]any{}, Key: "k", Ts: -5},
		"deleted":     {Data: map[string]any{"isDeleted": true}, Deleted: &tru, Key: "k", Ts: 1 << 53},
		"not deleted": {Data: map[string]any{"a": nil}, Deleted: &fal},
		"nested": {
			Data: map[string]any{
				"list": nested, "empty": []any{}, "nilList": []any(nil), "nilMap": map[string]any(nil),
				"obj": map[string]any{"z": 1.0, "a": false, "m": []any{nil, true, map[string]any{}}},
				"b":   true, "n": 42.0,
			},
			Head: "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", Key: "task-1", Schema: "task/2", Ts: 1763800000000,
		},
		// Not what a parsed body holds: these go through encoding/json.
		"other types": {Data: map[string]any{"int": 7, "num": json.Number("1.50"), "strs": []string{"<a>"}, "raw": json.RawMessage(`{"x" : "<"}`)}},
	}
	for i, s := range itemJSONStrings {
		cases["string "+string(rune('a'+i))] = models.Item{Data: map[string]any{s: s, "k" + s: []any{s}}, Head: s, Key: s, Schema: s}
	}
	for name, it := range cases {
		t.Run(name, func(t *testing.T) {
			got, err := appendItemJSON(nil, it)
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, '\n')
			if want := encodeStd(t, it); !bytes.Equal(got, want) {
				t.Errorf("appendItemJSON:\n got %s\nwant %s", got, want)
			}
		})
	}
	t.Run("numbers", func(t *testing.T) {
		for _, f := range itemJSONNumbers {
			for _, f := range []float64{f, -f} {
				it := models.Item{Data: map[string]any{"n": f}}
				got, err := appendItemJSON(nil, it)
				if err != nil {
					t.Fatal(err)
				}
				if want := encodeStd(t, it); !bytes.Equal(append(got, '\n'), want) {
					t.Errorf("%v: got %s, want %s", f, got, want)
				}
			}
		}
	})
	t.Run("NaN is an error, as with encoding/json", func(t *testing.T) {
		for _, f := range []float64{math.NaN(), math.Inf(1), math.Inf(-1)} {
			if _, err := appendItemJSON(nil, models.Item{Data: map[string]any{"x": []any{f}}}); err == nil {
				t.Errorf("%v: no error", f)
			}
		}
	})
}

// FuzzAppendItemJSON compares the two encoders on arbitrary strings (as
// keys and values) and numbers.
func FuzzAppendItemJSON(f *testing.F) {
	for i, s := range itemJSONStrings {
		f.Add(s, itemJSONNumbers[i%len(itemJSONNumbers)], int64(i))
	}
	f.Fuzz(func(t *testing.T, s string, n float64, ts int64) {
		if math.IsNaN(n) || math.IsInf(n, 0) {
			return
		}
		it := models.Item{Data: map[string]any{s: []any{s, n}, "n": n}, Head: s, Key: s, Schema: s, Ts: ts}
		got, err := appendItemJSON(nil, it)
		if err != nil {
			t.Fatal(err)
		}
		if want := encodeStd(t, it); !bytes.Equal(append(got, '\n'), want) {
			t.Errorf("appendItemJSON:\n got %q\nwant %q", got, want)
		}
	})
}

// A PUT's answer is the generated response's, byte for byte: status,
// headers and body.
func TestItemResponse_VisitPutItemResponse(t *testing.T) {
	it := models.Item{Data: map[string]any{"title": "<b>\u2028", "n": 1.0}, Head: "0e13fee3", Key: "task-1", Schema: "task/1", Ts: 1763800000000}
	for _, tc := range []struct {
		status int
		std    apiserver.PutItemResponseObject
	}{
		{http.StatusCreated, apiserver.PutItem201JSONResponse{Body: it, Headers: apiserver.PutItem201ResponseHeaders{ETag: etag(it)}}},
		{http.StatusOK, apiserver.PutItem200JSONResponse{Body: it, Headers: apiserver.PutItem200ResponseHeaders{ETag: etag(it)}}},
	} {
		t.Run(http.StatusText(tc.status), func(t *testing.T) {
			want, got := httptest.NewRecorder(), httptest.NewRecorder()
			if err := tc.std.VisitPutItemResponse(want); err != nil {
				t.Fatal(err)
			}
			if err := (itemResponse{status: tc.status, it: it}).VisitPutItemResponse(got); err != nil {
				t.Fatal(err)
			}
			if got.Code != want.Code {
				t.Errorf("status %d, want %d", got.Code, want.Code)
			}
			for _, h := range []http.Header{want.Header(), got.Header()} {
				if len(got.Header()) != len(want.Header()) {
					t.Errorf("headers %v, want %v", got.Header(), want.Header())
				}
				for k := range h {
					if got.Header().Get(k) != want.Header().Get(k) {
						t.Errorf("%s: %q, want %q", k, got.Header().Get(k), want.Header().Get(k))
					}
				}
			}
			if !bytes.Equal(got.Body.Bytes(), want.Body.Bytes()) {
				t.Errorf("body %s, want %s", got.Body.Bytes(), want.Body.Bytes())
			}
		})
	}
}

// BenchmarkItemResponse is one PUT answer of BenchmarkPutItem's item (a
// 400-byte title), written by the generated response and by itemResponse.
func BenchmarkItemResponse(b *testing.B) {
	it := models.Item{Data: map[string]any{"title": strings.Repeat("x", 400), "n": 1.0},
		Head: "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", Key: "k1", Schema: "any/1", Ts: 1763800000000}
	for _, bc := range []struct {
		name string
		resp apiserver.PutItemResponseObject
	}{
		{"encoding-json", apiserver.PutItem201JSONResponse{Body: it, Headers: apiserver.PutItem201ResponseHeaders{ETag: etag(it)}}},
		{"direct", itemResponse{status: http.StatusCreated, it: it}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			w := discardWriter{h: http.Header{}}
			for b.Loop() {
				clear(w.h)
				if err := bc.resp.VisitPutItemResponse(w); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// discardWriter is a ResponseWriter that keeps only its headers, so that
// BenchmarkItemResponse measures the encoding and not a recorder.
type discardWriter struct{ h http.Header }

func (w discardWriter) Header() http.Header         { return w.h }
func (w discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w discardWriter) WriteHeader(int)             {}

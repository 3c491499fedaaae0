package api

import (
	"encoding/json"
	"math"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"unicode/utf8"

	"github.com/goat-gateway/goat-gateway/gen/models"
)

// itemResponse answers a PUT of an item with the bytes the generated
// PutItem200/201JSONResponse would write (json.Encoder's output and
// headers), built without encoding/json's reflection: the response was a
// tenth of the gateway's request handling per PUT (issue 19). A value of
// a type the fast path does not know is encoded by encoding/json itself.
type itemResponse struct {
	status int
	it     models.Item
}

func (r itemResponse) VisitPutItemResponse(w http.ResponseWriter) error {
	bp := itemBufs.Get().(*[]byte)
	defer func() {
		if cap(*bp) <= maxPooledItemBuf {
			itemBufs.Put(bp)
		}
	}()
	b, err := appendItemJSON((*bp)[:0], r.it)
	if err != nil {
		return err
	}
	b = append(b, '\n') // json.Encoder.Encode ends each value with one
	*bp = b
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("ETag", etag(r.it))
	w.WriteHeader(r.status)
	_, err = w.Write(b) // copies: the buffer is reused once Write returns
	return err
}

// itemBufs are the response buffers, reused as json.Encoder reuses its
// own; one grown past maxPooledItemBuf (a big item) is left to the GC.
var itemBufs = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

const maxPooledItemBuf = 64 << 10

// appendItemJSON appends it as json.Marshal would (fields in struct
// order, deleted omitted when nil, HTML-escaped strings).
func appendItemJSON(b []byte, it models.Item) ([]byte, error) {
	b = append(b, `{"data":`...)
	var err error
	if it.Data == nil {
		b = append(b, "null"...)
	} else if b, err = appendJSONValue(b, it.Data); err != nil {
		return nil, err
	}
	if it.Deleted != nil {
		b = append(b, `,"deleted":`...)
		b = strconv.AppendBool(b, *it.Deleted)
	}
	b = append(b, `,"head":`...)
	b = appendJSONString(b, it.Head)
	b = append(b, `,"key":`...)
	b = appendJSONString(b, it.Key)
	b = append(b, `,"schema":`...)
	b = appendJSONString(b, it.Schema)
	b = append(b, `,"ts":`...)
	b = strconv.AppendInt(b, it.Ts, 10)
	return append(b, '}'), nil
}

// appendJSONValue appends v as json.Marshal would: the types a parsed
// JSON value has directly, any other through json.Marshal.
func appendJSONValue(b []byte, v any) ([]byte, error) {
	switch v := v.(type) {
	case nil:
		return append(b, "null"...), nil
	case string:
		return appendJSONString(b, v), nil
	case bool:
		return strconv.AppendBool(b, v), nil
	case float64:
		if math.IsNaN(v) || math.IsInf(v, 0) {
			break // json.Marshal's error
		}
		return appendJSONFloat(b, v), nil
	case map[string]any:
		if v == nil {
			return append(b, "null"...), nil
		}
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		b = append(b, '{')
		var err error
		for i, k := range keys {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSONString(b, k)
			b = append(b, ':')
			if b, err = appendJSONValue(b, v[k]); err != nil {
				return nil, err
			}
		}
		return append(b, '}'), nil
	case []any:
		if v == nil {
			return append(b, "null"...), nil
		}
		b = append(b, '[')
		var err error
		for i, e := range v {
			if i > 0 {
				b = append(b, ',')
			}
			if b, err = appendJSONValue(b, e); err != nil {
				return nil, err
			}
		}
		return append(b, ']'), nil
	}
	m, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return append(b, m...), nil
}

// appendJSONFloat is encoding/json's float64 format: ES6 number to
// string, exponent form below 1e-6 and from 1e21, without a leading zero
// in a two-digit negative exponent.
func appendJSONFloat(b []byte, f float64) []byte {
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' {
		if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b
}

const jsonHex = "0123456789abcdef"

// appendJSONString is encoding/json's string encoding with HTML escaping
// (its default): <, > and & as \u escapes, U+2028 and U+2029 escaped,
// invalid UTF-8 as U+FFFD.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '\\', '"':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', jsonHex[c>>4], jsonHex[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', jsonHex[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

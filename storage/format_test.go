package storage

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"

	"github.com/goat-gateway/goat-gateway/core"
)

func TestHeader_RoundTrip(t *testing.T) {
	id := newLogID()
	b := encodeHeader(id)
	if got, want := len(b), headerSize; got != want {
		t.Fatalf("len=%d, want %d", got, want)
	}
	got, err := decodeHeader(b)
	if err != nil {
		t.Fatalf("decodeHeader: %v", err)
	}
	if got != id {
		t.Fatalf("id=%s, want %s", got, id)
	}
}

func TestHeader_Decode(t *testing.T) {
	good := encodeHeader(newLogID())
	mutate := func(f func(b []byte)) []byte {
		b := bytes.Clone(good)
		f(b)
		return b
	}
	badVersion := mutate(func(b []byte) {
		binary.LittleEndian.PutUint32(b[8:], 2)
		binary.LittleEndian.PutUint32(b[28:], crc(b[:28]))
	})
	tests := []struct {
		name string
		in   []byte
	}{
		{"Empty", nil},
		{"Short", good[:20]},
		{"Magic", mutate(func(b []byte) { b[0] = 'X' })},
		{"LogIDBitFlip", mutate(func(b []byte) { b[15] ^= 1 })},
		{"CRC", mutate(func(b []byte) { b[31] ^= 0x80 })},
		{"NewerVersion", badVersion},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := decodeHeader(tt.in); !errors.Is(err, core.ErrCorrupt) {
				t.Fatalf("err=%v, want ErrCorrupt", err)
			}
		})
	}
}

func TestLogID_Parse(t *testing.T) {
	id := newLogID()
	got, err := ParseLogID(id.String())
	if err != nil || got != id {
		t.Fatalf("ParseLogID(%s)=%s, %v", id, got, err)
	}
	for _, bad := range []string{"", "abc", "0123456789ABCDEF0123456789ABCDEF", "0123456789abcdef0123456789abcdeg"} {
		if _, err := ParseLogID(bad); !errors.Is(err, core.ErrInvalid) {
			t.Errorf("ParseLogID(%q) err=%v, want ErrInvalid", bad, err)
		}
	}
}

func TestFrame_Check(t *testing.T) {
	body := []byte("hello, body")
	frame := appendFrame(nil, payloadHeader{seq: 7, group: headerSize, kind: kindCommit}, body)
	if got, want := len(frame), frameHeaderSize+payloadHeaderSize+len(body); got != want {
		t.Fatalf("len=%d, want %d", got, want)
	}
	n, st := frameLen(frame, int64(len(frame)))
	if st != frameOK || n != payloadHeaderSize+len(body) {
		t.Fatalf("frameLen=%d %v", n, st)
	}
	h, st := checkFrame(frame, headerSize)
	if st != frameOK || h.seq != 7 || h.group != headerSize || h.kind != kindCommit {
		t.Fatalf("checkFrame=%+v %v", h, st)
	}
	setLen := func(n uint32) []byte {
		b := bytes.Clone(frame)
		binary.LittleEndian.PutUint32(b, n)
		return b
	}
	tests := []struct {
		name  string
		frame []byte
		avail int64
		pos   int64
		want  frameStatus
	}{
		{"Short", frame[:5], 5, headerSize, frameShort},
		{"ZeroLength", make([]byte, 8), 100, headerSize, frameBadLength},
		{"BelowPayloadHeader", setLen(payloadHeaderSize - 1), 1000, headerSize, frameBadLength},
		{"AboveMax", setLen(maxPayload + 1), 1 << 30, headerSize, frameBadLength},
		{"PastEOF", frame, int64(len(frame) - 1), headerSize, framePastEOF},
		{"BadCRC", func() []byte { b := bytes.Clone(frame); b[len(b)-1] ^= 1; return b }(), int64(len(frame)), headerSize, frameBadCRC},
		{"GroupAfterRecord", frame, int64(len(frame)), headerSize - 1, frameBadHeader},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, st := frameLen(tt.frame, tt.avail)
			if st == frameOK {
				_, st = checkFrame(tt.frame, tt.pos)
			}
			if st != tt.want {
				t.Fatalf("status=%v, want %v", st, tt.want)
			}
		})
	}
}

func TestCommitBody_RoundTrip(t *testing.T) {
	p1, p2 := core.CommitID{1}, core.CommitID{2}
	tests := []struct {
		name string
		m    commitMeta
	}{
		{"Root", commitMeta{id: core.CommitID{9}, ts: 5, key: "k"}},
		{"Parents", commitMeta{id: core.CommitID{9}, ts: 1 << 40, parents: []core.CommitID{p1, p2}, key: "task-1"}},
		{"DeltaDeleted", commitMeta{id: core.CommitID{9}, ts: 3, flags: flagDelta | flagDeleted, parents: []core.CommitID{p1}, base: p1, key: "x"}},
		{"Merge", commitMeta{id: core.CommitID{9}, flags: flagMerge, parents: []core.CommitID{p1, p2}, key: "m"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			js := []byte(`{"a":1}`)
			b := appendCommitBody(nil, &tt.m, js)
			v, err := parseCommitBody(b)
			if err != nil {
				t.Fatalf("parse: %v", err)
			}
			if v.id != tt.m.id || v.ts != tt.m.ts || v.flags != tt.m.flags || v.base != tt.m.base || string(v.key) != tt.m.key || !bytes.Equal(v.json, js) {
				t.Fatalf("got %+v, want %+v", v, tt.m)
			}
			if got, want := v.nparents(), len(tt.m.parents); got != want {
				t.Fatalf("nparents=%d, want %d", got, want)
			}
			for i, p := range tt.m.parents {
				if v.parent(i) != p {
					t.Fatalf("parent %d=%s, want %s", i, v.parent(i), p)
				}
			}
		})
	}
}

// FuzzParseCommitBody: a body either fails with ErrCorrupt or parses into
// fields that re-encode to the same bytes.
func FuzzParseCommitBody(f *testing.F) {
	f.Add(appendCommitBody(nil, &commitMeta{id: core.CommitID{1}, ts: 2, key: "k"}, []byte(`{}`)))
	f.Add(appendCommitBody(nil, &commitMeta{id: core.CommitID{1}, flags: flagDelta, parents: []core.CommitID{{2}}, base: core.CommitID{2}, key: "kk"}, []byte(`{"x":1}`)))
	f.Add([]byte{})
	f.Add(make([]byte, 43))
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := parseCommitBody(b)
		if err != nil {
			if !errors.Is(err, core.ErrCorrupt) {
				t.Fatalf("err=%v, want ErrCorrupt", err)
			}
			return
		}
		m := commitMeta{id: v.id, ts: v.ts, flags: v.flags, base: v.base, key: string(v.key)}
		for i := range v.nparents() {
			m.parents = append(m.parents, v.parent(i))
		}
		if got := appendCommitBody(nil, &m, v.json); !bytes.Equal(got, b) {
			t.Fatalf("re-encoded body differs:\n got %x\nwant %x", got, b)
		}
	})
}

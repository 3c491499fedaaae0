package sync

import (
	"math/rand/v2"
	"slices"
	"testing"
)

func TestTable_Decode(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	ids := randomIDs(r, 200)
	short := func(i int) ShortID { return ShortOf(ids[i]) }
	t.Run("HashMatchesMurmur3", func(t *testing.T) {
		for i := range 20 {
			s := short(i)
			h1, h2 := murmur3x64Short(s)
			w1, w2 := murmur3x64(s[:])
			if h1 != w1 || h2 != w2 {
				t.Fatalf("murmur3x64Short(%x)=%x,%x, reference %x,%x", s, h1, h2, w1, w2)
			}
		}
	})
	t.Run("PeelsBothSides", func(t *testing.T) {
		// Client holds 0..109, server 0..99 and 110..112: the client's own
		// are 100..109, the server's 110..112.
		tab := NewTable(tableSize(10, 3, false))
		for i := range 110 {
			tab.Add(short(i), 1)
		}
		for i := range 100 {
			tab.Add(short(i), -1)
		}
		for i := 110; i < 113; i++ {
			tab.Add(short(i), -1)
		}
		plus, minus, ok := tab.Decode()
		if !ok {
			t.Fatal("did not peel")
		}
		if got, want := len(plus), 10; got != want {
			t.Fatalf("plus=%d, want %d", got, want)
		}
		if got, want := len(minus), 3; got != want {
			t.Fatalf("minus=%d, want %d", got, want)
		}
		for _, s := range plus {
			if !slices.Contains([]ShortID{short(100), short(101), short(102), short(103), short(104), short(105), short(106), short(107), short(108), short(109)}, s) {
				t.Fatalf("plus has %x, not one of the client's own", s)
			}
		}
	})
	t.Run("TooSmallFailsCleanly", func(t *testing.T) {
		tab := NewTable(2)
		for i := range 40 {
			tab.Add(short(i), 1)
		}
		if _, _, ok := tab.Decode(); ok {
			t.Fatal("40 ids in 6 cells peeled")
		}
	})
	t.Run("WireRoundTrip", func(t *testing.T) {
		tab := NewTable(3)
		tab.Only = true
		tab.Add(short(1), 1)
		tab.Add(short(2), 1)
		raw := appendTables(nil, []*Table{nil, tab}, false)
		if got, want := len(raw), tablesLen([]*Table{nil, tab}, false); got != want {
			t.Fatalf("encoded %d bytes, tablesLen %d", got, want)
		}
		back, err := parseTables(raw, 2, false)
		if err != nil {
			t.Fatal(err)
		}
		if back[0] != nil || !slices.Equal(back[1].Cells, tab.Cells) || !back[1].Only {
			t.Fatalf("round trip changed the tables")
		}
		if _, err := parseTables(raw[:len(raw)-1], 2, false); err == nil {
			t.Fatal("truncated cells accepted")
		}
	})
	t.Run("NarrowOverTheWire", func(t *testing.T) {
		// Version 3: the client holds 0..8009, the server 0..7999
		// and 8010..8012, in a table so small that cells count past 256 (the wire
		// keeps counts modulo 256 and 32-bit checks). The server decodes
		// the client's table from the wire, takes its own ids out and
		// peels.
		ids := randomIDs(r, 8013)
		short := func(i int) ShortID { return ShortOf(ids[i]) }
		tab := NewTable(tableSize(13, 0, false))
		tab.Narrow = true
		for i := range 8010 {
			tab.Add(short(i), 1)
		}
		if slices.IndexFunc(tab.Cells, func(c Cell) bool { return c.Count > 255 }) < 0 {
			t.Fatal("no cell counts past 255: the test does not exercise the modulo")
		}
		raw := appendTables(nil, []*Table{tab}, true)
		if got, want := len(raw), 2+13*3*tab.M; got != want {
			t.Fatalf("encoded %d bytes, want %d (13 per cell)", got, want)
		}
		back, err := parseTables(raw, 1, true)
		if err != nil {
			t.Fatal(err)
		}
		srv := back[0]
		if !srv.Narrow {
			t.Fatal("parsed table is not narrow")
		}
		for i := range 8000 {
			srv.Add(short(i), -1)
		}
		for i := 8010; i < 8013; i++ {
			srv.Add(short(i), -1)
		}
		plus, minus, ok := srv.Decode()
		if !ok {
			t.Fatal("did not peel")
		}
		slices.SortFunc(plus, func(a, b ShortID) int { return slices.Compare(a[:], b[:]) })
		want := make([]ShortID, 0, 10)
		for i := 8000; i < 8010; i++ {
			want = append(want, short(i))
		}
		slices.SortFunc(want, func(a, b ShortID) int { return slices.Compare(a[:], b[:]) })
		if !slices.Equal(plus, want) || len(minus) != 3 {
			t.Fatalf("plus=%d minus=%d, want the client's 10 and the server's 3", len(plus), len(minus))
		}
	})
}

package sync

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"math"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"

	"github.com/goat-gateway/goat-gateway/core"
)

// TestRound_InSyncIsTiny: whatever the repository size, an in-sync check is
// one round whose request and response stay under 300 bytes of JSON, and
// the server does not even walk its set.
func TestRound_InSyncIsTiny(t *testing.T) {
	huge := Digest{Count: math.MaxInt64}
	for i := range huge.XOR {
		huge.XOR[i] = 0xff
	}
	set := &fakeSet{
		digest: func() Digest { return huge },
		walk:   func(func(core.CommitID) bool) { t.Fatal("walked the set for an in-sync check") },
		get:    func(core.CommitID) (*core.Commit, bool) { t.Fatal("Get for an in-sync check"); return nil, false },
	}
	c := &Client{Rand: seededRand(1), Limit: MaxCommits}
	req := c.Start(set)
	srv := &Server{Rand: seededRand(2)}
	resp, err := srv.Answer(set, req)
	if err != nil {
		t.Fatal(err)
	}
	if !resp.InSync {
		t.Fatal("not in sync with itself")
	}
	reqJSON, _ := json.Marshal(req)
	respJSON, _ := json.Marshal(resp)
	if got := len(reqJSON) + len(respJSON); got >= 300 {
		t.Fatalf("in-sync round is %d bytes:\n%s\n%s", got, reqJSON, respJSON)
	}
	if _, done, err := c.Next(set, resp); err != nil || !done {
		t.Fatalf("Next=(done %v, %v), want done", done, err)
	}
	t.Logf("in-sync round: %d + %d bytes", len(reqJSON), len(respJSON))
}

// healPure runs rounds with the pure functions only, through JSON, and
// returns the trace.
func healPure(t testing.TB, client, server *memSet, srv *Server, c *Client) []roundTrace {
	t.Helper()
	mt := &memTransport{tb: t, srv: srv, server: server, client: client}
	ctx := context.Background()
	req := c.Start(client)
	for range 20 {
		resp, err := mt.Sync(ctx, "r", req)
		if err != nil {
			t.Fatal(err)
		}
		cs, _, err := decodeCommits(resp.Commits)
		if err != nil {
			t.Fatal(err)
		}
		if err := client.Ingest(ctx, cs); err != nil && !errors.Is(err, core.ErrMissingParents) {
			t.Fatal(err)
		}
		var done bool
		if req, done, err = c.Next(client, resp); err != nil {
			t.Fatal(err)
		} else if done {
			return mt.trace
		}
	}
	t.Fatal("no convergence in 20 rounds")
	return nil
}

func TestRound_Scenarios(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	ghosts := randomIDs(r, 500)
	cPool := makeCommits(t, "c", 1, 40, 4)
	sPool := makeCommits(t, "s", 1, 40, 4)
	shared := makeCommits(t, "shared", 1, 30, 3)
	type shape struct {
		pushes, answers int  // commits in the request / response
		reqFilter       bool // request carries a filter
		respFilter      bool
		more, inSync    bool
	}
	tests := []struct {
		name           string
		ghosts         []core.CommitID
		clientOwn      []*core.Commit
		serverOwn      []*core.Commit
		limit          int
		want           []shape
		wantClientSent int
	}{
		{
			name: "InSync", ghosts: ghosts,
			want: []shape{{inSync: true}},
		},
		{
			name: "EmptyClient", serverOwn: shared,
			want: []shape{{answers: 30}},
		},
		{
			name: "EmptyServer", clientOwn: cPool,
			want: []shape{{respFilter: true}, {pushes: 40, inSync: true}},
		},
		{
			name: "ClientExtras", ghosts: ghosts, clientOwn: cPool[:10],
			want: []shape{{respFilter: true}, {pushes: 10, inSync: true}},
		},
		{
			name: "ServerExtras", ghosts: ghosts, serverOwn: sPool[:10],
			want: []shape{{respFilter: true}, {reqFilter: true, answers: 10}},
		},
		{
			name: "BothExtras", ghosts: ghosts, clientOwn: cPool[:7], serverOwn: sPool[:12],
			want: []shape{{respFilter: true}, {pushes: 7, reqFilter: true, answers: 12}},
		},
		{
			name: "CutByLimit", ghosts: ghosts, clientOwn: cPool[:3], serverOwn: sPool[:25], limit: 10,
			want: []shape{
				{respFilter: true},
				{pushes: 3, reqFilter: true, answers: 10, more: true},
				{reqFilter: true, answers: 10, more: true},
				{reqFilter: true, answers: 5},
			},
		},
		{
			name: "PushCutByLimit", ghosts: ghosts, clientOwn: cPool[:25], limit: 10,
			want: []shape{
				{respFilter: true},
				{pushes: 10, reqFilter: true, respFilter: true},
				{pushes: 10, reqFilter: true, respFilter: true},
				{pushes: 5, inSync: true},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client := newMemSet(tt.ghosts, tt.clientOwn)
			server := newMemSet(tt.ghosts, tt.serverOwn)
			srv := &Server{Rand: seededRand(3), Limit: tt.limit}
			c := &Client{Rand: seededRand(4), PushLimit: tt.limit, V1: true}
			trace := healPure(t, client, server, srv, c)
			checkConverged(t, client, server, len(tt.ghosts), unionOf(tt.clientOwn, tt.serverOwn))
			var got []shape
			for _, rt := range trace {
				got = append(got, shape{
					pushes: len(rt.req.Commits), answers: len(rt.resp.Commits),
					reqFilter: rt.req.Filter != nil, respFilter: rt.resp.Filter != nil,
					more: rt.resp.More, inSync: rt.resp.InSync,
				})
			}
			if len(got) != len(tt.want) {
				t.Fatalf("rounds=%+v, want %+v", got, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Fatalf("round %d=%+v, want %+v", i+1, got[i], tt.want[i])
				}
			}
		})
	}
}

// TestRound_FalsePositivesHeal forces false positives with filters of one
// bit per id and checks that fresh salts still find everything.
func TestRound_FalsePositivesHeal(t *testing.T) {
	r := rand.New(rand.NewPCG(13, 14))
	ghosts := randomIDs(r, 200)
	cOwn := makeCommits(t, "c", 2, 60, 5)
	sOwn := makeCommits(t, "s", 2, 60, 5)
	client, server := newMemSet(ghosts, cOwn), newMemSet(ghosts, sOwn)
	loose := FilterPolicy{Misses: 1e6} // p clamps at 0.5
	srv := &Server{Rand: seededRand(5), Policy: loose}
	c := &Client{Rand: seededRand(6), Policy: loose, V1: true}
	trace := healPure(t, client, server, srv, c)
	checkConverged(t, client, server, len(ghosts), unionOf(cOwn, sOwn))
	if len(trace) < 4 {
		t.Fatalf("%d rounds with p=0.5 filters: the filters did not hide anything?", len(trace))
	}
}

func TestRequest_EncodedLenMatchesJSON(t *testing.T) {
	cs := makeCommits(t, "c", 3, 3, 1)
	raws := make([]json.RawMessage, len(cs))
	for i, c := range cs {
		raws[i], _ = c.MarshalJSON()
	}
	f, err := NewFilter(640, 5, [SaltSize]byte{1})
	if err != nil {
		t.Fatal(err)
	}
	d := DigestOf(cs[0].ID, cs[1].ID)
	reqs := []*Request{
		{},
		{Count: d.Count, Digest: d.XOR, Limit: 77},
		{Count: d.Count, Digest: d.XOR, Filter: f, Commits: raws},
	}
	for _, r := range reqs {
		b, _ := json.Marshal(r)
		if got, want := r.EncodedLen(), len(b); got != want {
			t.Fatalf("EncodedLen=%d, json %d: %s", got, want, b)
		}
	}
	resps := []*Response{
		{InSync: true},
		{Count: d.Count, Digest: d.XOR, Commits: raws, More: true, Filter: f},
		{Count: 1 << 40, Digest: d.XOR, Filter: f},
	}
	for _, r := range resps {
		b, _ := json.Marshal(r)
		if got, want := r.EncodedLen(), len(b); got != want {
			t.Fatalf("EncodedLen=%d, json %d: %s", got, want, b)
		}
		if !strings.Contains(string(b), `"commits":[`) {
			t.Fatalf("commits not an array: %s", b)
		}
	}
}

func TestDecodeRequest(t *testing.T) {
	zero := strings.Repeat("0", 64)
	one := "01" + strings.Repeat("0", 62)
	f, _ := NewFilter(64, 1, [SaltSize]byte{})
	fj, _ := f.MarshalJSON()
	// Version 2 and 3 parts: one diff record (partition 1, empty), and a
	// table of m = 1 whose cells are 13 (version 3) or 20 bytes wide.
	v3 := `{"count":0,"digest":"` + zero + `","v":3,`
	diff := base64.StdEncoding.EncodeToString([]byte{0, 0, 0, 1, 39: 0})
	cells := func(size int) string {
		return base64.StdEncoding.EncodeToString(append([]byte{0, 1}, make([]byte, 3*size)...))
	}
	tests := []struct {
		name string
		in   string
		ok   bool
	}{
		{"DigestOnly", `{"count":1,"digest":"` + one + `"}`, true},
		{"Full", `{"count":1,"digest":"` + one + `","filter":` + string(fj) + `,"commits":[{"a":1}],"limit":10}`, true},
		{"NullFilter", `{"count":0,"digest":"` + zero + `","filter":null}`, true},
		{"MissingDigest", `{"count":1}`, false},
		{"MissingCount", `{"digest":"` + zero + `"}`, false},
		{"NegativeCount", `{"count":-1,"digest":"` + zero + `"}`, false},
		{"EmptyWithSum", `{"count":0,"digest":"` + one + `"}`, false},
		{"UpperDigest", `{"count":1,"digest":"` + strings.ToUpper("0a"+zero[2:]) + `"}`, false},
		{"ZeroLimit", `{"count":0,"digest":"` + zero + `","limit":0}`, false},
		{"NegativeLimit", `{"count":0,"digest":"` + zero + `","limit":-5}`, false},
		{"MaxLimit", `{"count":0,"digest":"` + zero + `","limit":1000}`, true},
		{"LimitAboveMax", `{"count":0,"digest":"` + zero + `","limit":1001}`, false},
		{"CommitNotObject", `{"count":0,"digest":"` + zero + `","commits":[1]}`, false},
		{"CommitNull", `{"count":0,"digest":"` + zero + `","commits":[null]}`, false},
		{"BadFilter", `{"count":0,"digest":"` + zero + `","filter":{"m":0,"k":1,"salt":"0000000000000000","bits":""}}`, false},
		{"UnknownField", `{"count":0,"digest":"` + zero + `","since":1}`, false},
		{"Trailing", `{"count":0,"digest":"` + zero + `"} {}`, false},
		{"NotObject", `[]`, false},
		{"V3Gaps", v3 + `"parts":{"gaps":[1763800000000,3],"bits":[0,1,0],"diff":"` + diff + `"}}`, true},
		{"V3NegativeFirstGap", v3 + `"parts":{"gaps":[-5,3],"bits":[0,1,0],"diff":"` + diff + `"}}`, true},
		{"V3ZeroGap", v3 + `"parts":{"gaps":[5,0],"bits":[0,1,0],"diff":"` + diff + `"}}`, false},
		{"V3GapOverflow", v3 + `"parts":{"gaps":[9223372036854775000,1000],"bits":[0,1,0],"diff":"` + diff + `"}}`, false},
		{"V3Cuts", v3 + `"parts":{"cuts":[5,8],"bits":[0,1,0],"diff":"` + diff + `"}}`, false},
		{"V3CutsAndGaps", v3 + `"parts":{"cuts":[5,8],"gaps":[5,3],"bits":[0,1,0],"diff":"` + diff + `"}}`, false},
		{"V2Gaps", strings.Replace(v3, `"v":3`, `"v":2`, 1) + `"parts":{"gaps":[5,3],"bits":[0,1,0],"diff":"` + diff + `"}}`, false},
		{"V2Cuts", strings.Replace(v3, `"v":3`, `"v":2`, 1) + `"parts":{"cuts":[5,8],"bits":[0,1,0],"diff":"` + diff + `"}}`, true},
		{"V3NarrowCells", v3 + `"parts":{"gaps":[5,3],"bits":[0,1,0],"diff":"` + diff + `","cells":"` + cells(13) + `"}}`, true},
		{"V3WideCells", v3 + `"parts":{"gaps":[5,3],"bits":[0,1,0],"diff":"` + diff + `","cells":"` + cells(20) + `"}}`, false},
		{"V2WideCells", strings.Replace(v3, `"v":3`, `"v":2`, 1) + `"parts":{"cuts":[5,8],"bits":[0,1,0],"diff":"` + diff + `","cells":"` + cells(20) + `"}}`, true},
		{"V4", `{"count":0,"digest":"` + zero + `","v":4}`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := DecodeRequest([]byte(tt.in))
			if got, want := err == nil, tt.ok; got != want {
				t.Fatalf("DecodeRequest=%v, want ok=%v", err, want)
			}
			if err != nil && !errors.Is(err, core.ErrInvalid) {
				t.Fatalf("err=%v, want ErrInvalid", err)
			}
		})
	}
}

func TestDecodeRequest_TooManyCommits(t *testing.T) {
	body := `{"count":0,"digest":"` + strings.Repeat("0", 64) + `","commits":[` +
		strings.TrimSuffix(strings.Repeat(`{},`, MaxCommits+1), ",") + `]}`
	if _, err := DecodeRequest([]byte(body)); !errors.Is(err, core.ErrTooLarge) {
		t.Fatalf("err=%v, want ErrTooLarge", err)
	}
}

func TestDecodeResponse(t *testing.T) {
	zero := strings.Repeat("0", 64)
	head := `{"count":0,"digest":"` + zero + `",`
	tests := []struct {
		name string
		in   string
		ok   bool
	}{
		{"InSync", head + `"inSync":true,"commits":[],"more":false}`, true},
		{"Commits", head + `"inSync":false,"commits":[{"a":1}],"more":true}`, true},
		{"UnknownFieldIgnored", head + `"inSync":true,"commits":[],"more":false,"next":"x"}`, true},
		{"InSyncWithCommits", head + `"inSync":true,"commits":[{"a":1}],"more":false}`, false},
		{"MoreWithoutCommits", head + `"inSync":false,"commits":[],"more":true}`, false},
		{"MissingCommits", head + `"inSync":false,"more":false}`, false},
		{"NullCommits", head + `"inSync":false,"commits":null,"more":false}`, false},
		{"MissingMore", head + `"inSync":false,"commits":[]}`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := DecodeResponse([]byte(tt.in))
			if got, want := err == nil, tt.ok; got != want {
				t.Fatalf("DecodeResponse=%v, want ok=%v", err, want)
			}
			if err != nil && !errors.Is(err, core.ErrInvalid) {
				t.Fatalf("err=%v, want ErrInvalid", err)
			}
		})
	}
}

func TestServer_AnswerMissingCommit(t *testing.T) {
	id := core.CommitID{7}
	set := &fakeSet{
		digest: func() Digest { return DigestOf(id) },
		walk:   func(fn func(core.CommitID) bool) { fn(id) },
		get:    func(core.CommitID) (*core.Commit, bool) { return nil, false },
	}
	_, err := (&Server{Rand: seededRand(1)}).Answer(set, &Request{})
	if !errors.Is(err, core.ErrNotFound) {
		t.Fatalf("err=%v, want ErrNotFound", err)
	}
}

func TestResponse_Results(t *testing.T) {
	resp := Response{Count: 1, Commits: []json.RawMessage{}, Results: []PushResult{
		{ID: strings.Repeat("a", 64), Status: StatusAccepted},
		{ID: strings.Repeat("b", 64), Status: StatusRejected, Reason: "no", ProblemType: "https://goat-gateway.dev/problems/bad-signature"},
	}}
	b, err := resp.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	if got, want := resp.EncodedLen(), len(b); got != want {
		t.Fatalf("EncodedLen=%d, want %d", got, want)
	}
	got, err := DecodeResponse(b)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got.Results, resp.Results) {
		t.Fatalf("results=%+v, want %+v", got.Results, resp.Results)
	}
	t.Run("BadStatus", func(t *testing.T) {
		bad := strings.Replace(string(b), `"accepted"`, `"maybe"`, 1)
		if _, err := DecodeResponse([]byte(bad)); !errors.Is(err, core.ErrInvalid) {
			t.Fatalf("err=%v, want ErrInvalid", err)
		}
	})
}

package sync

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"

	"github.com/goat-gateway/goat-gateway/core"
)

// Set is the read-only view of one peer's commits of one repository that a
// round needs. The server's repository index and the client's replica both
// implement it.
type Set interface {
	// Digest returns the count and XOR of all ids in the set.
	Digest() Digest
	// Walk calls fn for every id in a topological order (parents before
	// children; a log order is one) until fn returns false.
	Walk(fn func(id core.CommitID) bool)
	// Get returns the commit with the given id.
	Get(id core.CommitID) (*core.Commit, bool)
}

// Per-round caps. MaxCommits is part of the wire contract (openapi.yaml:
// SyncRequest.commits maxItems, SyncRequest.limit maximum, Info
// maxCommitsPerRequest).
const (
	// MaxCommits is the most commits one request may push, and the largest
	// limit it may ask for.
	MaxCommits = 1000
	// DefaultLimit is the number of commits per response when the request
	// names no limit.
	DefaultLimit = 500
	// DefaultMaxBytes caps the commit bytes of one response or push; one
	// commit is always allowed even if it alone is larger. With the largest
	// filter (11.2 MB of base64) a request stays under the API's 16 MiB
	// body limit.
	DefaultMaxBytes = 4 << 20
)

// Request is one reconciliation round from client to server:
//
//	{"count": 1234, "digest": "64 hex", "filter": {...}, "commits": [...], "limit": 500}
//
// count and digest describe the client's set, including the commits pushed
// in this request. filter (optional) is a Filter over all the client's ids;
// commits (optional, at most MaxCommits) are commits the client believes
// the server lacks, in topological order; limit (optional, 1..MaxCommits,
// DefaultLimit when absent) caps the commits of the response.
//
// Commits travel as raw JSON: the receiver decodes each with
// core.DecodeCommit (strict, id recomputed) before ingesting it, and
// Request decoding only checks that each one is a JSON object.
type Request struct {
	Count   int64
	Digest  Sum
	Filter  *Filter
	Commits []json.RawMessage
	Limit   int

	// Version 2 (docs/sync.md): V is 2 ("v": 2); Parts, in the second
	// round, echoes the server's layout and carries the client's digests
	// of the partitions that differ (the filter then covers the client's
	// ids of those partitions only); Need names commits the client lacks
	// by short id. Version 1 requests leave them zero.
	V     int
	Parts *PartDiff
	Need  []ShortID

	// Sessions (either version, optional, at most MaxSessions) are session
	// records (core.SessionRecord's JSON) of the authors of commits the
	// server may lack; the server accepts those that verify against its
	// root keys before it verifies the commits. Like commits, they travel
	// raw and are only checked to be JSON objects here.
	Sessions []json.RawMessage
}

// MaxSessions is the most session records one request may carry.
const MaxSessions = 1000

// Response is the server's answer:
//
//	{"count": 1240, "digest": "64 hex", "inSync": false, "commits": [...], "more": false, "filter": {...}}
//
// count and digest describe the server's set after ingesting the request's
// commits. inSync is true when they equal the request's; then commits is
// empty, more is false and there is no filter. Otherwise commits are the
// server's commits absent from the request's filter (all of them if the
// request had no filter and count 0), in topological order, and more is true
// if that list was cut by a limit. filter, present when the server cannot
// tell that the client will hold nothing the server lacks, is the server's
// own Filter so the client can push those. results, present when the
// request pushed commits, has one PushResult per pushed commit, in the
// request's order.
type Response struct {
	Count   int64
	Digest  Sum
	InSync  bool
	Commits []json.RawMessage
	More    bool
	Filter  *Filter
	Results []PushResult

	// Version 2 (docs/sync.md): Parts is the server's partition summary
	// (answer to a differing digest round); Rest names, by short id, the
	// commits the client lacks that a limit cut from Commits; Lists are the
	// server's exact ids of the partitions that still differ after the
	// client's filter.
	Parts *Summary
	Rest  []ShortID
	Lists []PartList
	// Want (version 2) names, by short id, commits the client holds and
	// the server lacks, found by decoding the client's tables.
	Want []ShortID
}

// PushResult is the server's verdict on one pushed commit:
//
//	{"id": "64 hex", "status": "accepted" | "duplicate" | "rejected", "reason": "...", "problemType": "https://..."}
//
// reason and problemType are present exactly when status is rejected. The
// same object answers POST /v1/repos/{repo}/commits.
type PushResult struct {
	ID          string `json:"id"`
	Status      string `json:"status"`
	Reason      string `json:"reason,omitempty"`
	ProblemType string `json:"problemType,omitempty"`
}

// Push result statuses.
const (
	StatusAccepted  = "accepted"
	StatusDuplicate = "duplicate"
	StatusRejected  = "rejected"
)

// digest returns the request's count and digest as a Digest.
func (r *Request) digest() Digest { return Digest{Count: r.Count, XOR: r.Digest} }

func (r *Response) digest() Digest { return Digest{Count: r.Count, XOR: r.Digest} }

// Validate checks the invariants DecodeRequest enforces, for requests built
// in Go.
func (r *Request) Validate() error {
	if err := r.digest().Validate(); err != nil {
		return err
	}
	maxLimit := MaxCommits
	switch r.V {
	case 0, 1:
		if r.Parts != nil || r.Need != nil {
			return fmt.Errorf("%w: parts and need need \"v\": 2", core.ErrInvalid)
		}
	case Version2, Version3:
		maxLimit = MaxStream
		if len(r.Need) > MaxStream {
			return fmt.Errorf("%w: %d needed ids, more than %d", core.ErrTooLarge, len(r.Need), MaxStream)
		}
		if r.Parts != nil {
			if err := r.Parts.Layout.Validate(); err != nil {
				return err
			}
			if r.Parts.Tables != nil && len(r.Parts.Tables) != len(r.Parts.Diff) {
				return fmt.Errorf("%w: parts: %d tables for %d differing partitions", core.ErrInvalid, len(r.Parts.Tables), len(r.Parts.Diff))
			}
			if pv := max(r.Parts.V, Version2); pv != r.V {
				return fmt.Errorf("%w: parts in the version %d form (cuts: 2, gaps: 3) in a version %d request", core.ErrInvalid, pv, r.V)
			}
			for _, t := range r.Parts.Tables {
				if t != nil && t.Narrow != (r.V == Version3) {
					return fmt.Errorf("%w: parts: a version %d request's tables must be narrow exactly in version 3", core.ErrInvalid, r.V)
				}
			}
		}
	default:
		return fmt.Errorf("%w: protocol version %d", core.ErrInvalid, r.V)
	}
	if r.Limit < 0 || r.Limit > maxLimit {
		return fmt.Errorf("%w: limit %d outside 1..%d", core.ErrInvalid, r.Limit, maxLimit)
	}
	if maxPush := min(maxLimit, MaxStream); len(r.Commits) > maxPush {
		return fmt.Errorf("%w: %d commits, more than %d", core.ErrTooLarge, len(r.Commits), maxPush)
	}
	if len(r.Sessions) > MaxSessions {
		return fmt.Errorf("%w: %d session records, more than %d", core.ErrTooLarge, len(r.Sessions), MaxSessions)
	}
	for i, s := range r.Sessions {
		if len(s) == 0 || s[0] != '{' {
			return fmt.Errorf("%w: sessions[%d]: not a JSON object", core.ErrInvalid, i)
		}
	}
	return checkCommitsRaw(r.Commits)
}

// Validate checks the invariants DecodeResponse enforces.
func (r *Response) Validate() error {
	if err := r.digest().Validate(); err != nil {
		return err
	}
	if r.InSync && (len(r.Commits) > 0 || r.More || r.Filter != nil || r.Parts != nil || len(r.Rest) > 0 || len(r.Lists) > 0 || len(r.Want) > 0) {
		return fmt.Errorf("%w: an inSync response carries no commits, more or filter", core.ErrInvalid)
	}
	if r.More && len(r.Commits) == 0 && len(r.Rest) == 0 {
		return fmt.Errorf("%w: more without commits", core.ErrInvalid)
	}
	if r.Parts != nil {
		if err := r.Parts.Layout.Validate(); err != nil {
			return err
		}
		if len(r.Parts.Sums) != r.Parts.Parts() {
			return fmt.Errorf("%w: parts: %d sums for %d partitions", core.ErrInvalid, len(r.Parts.Sums), r.Parts.Parts())
		}
	}
	if len(r.Lists) > MaxParts {
		return fmt.Errorf("%w: %d lists, more than %d", core.ErrInvalid, len(r.Lists), MaxParts)
	}
	if len(r.Results) > MaxStream {
		return fmt.Errorf("%w: %d results, more than %d", core.ErrInvalid, len(r.Results), MaxStream)
	}
	for i, x := range r.Results {
		switch x.Status {
		case StatusAccepted, StatusDuplicate, StatusRejected:
		default:
			return fmt.Errorf("%w: results[%d]: status %q", core.ErrInvalid, i, x.Status)
		}
	}
	return checkCommitsRaw(r.Commits)
}

func checkCommitsRaw(cs []json.RawMessage) error {
	for i, c := range cs {
		if len(c) == 0 || c[0] != '{' {
			return fmt.Errorf("%w: commits[%d]: not a JSON object", core.ErrInvalid, i)
		}
	}
	return nil
}

// MarshalJSON writes the compact wire form (commits as given, so canonical
// commits stay byte-identical).
func (r Request) MarshalJSON() ([]byte, error) {
	b := make([]byte, 0, r.EncodedLen())
	b = appendHead(b, r.Count, r.Digest)
	if r.Filter != nil {
		b = append(b, `,"filter":`...)
		fb, _ := r.Filter.MarshalJSON()
		b = append(b, fb...)
	}
	if len(r.Commits) > 0 {
		b = append(b, `,"commits":`...)
		b = appendCommits(b, r.Commits)
	}
	if r.Limit != 0 {
		b = append(b, `,"limit":`...)
		b = strconv.AppendInt(b, int64(r.Limit), 10)
	}
	if r.V != 0 {
		b = append(b, `,"v":`...)
		b = strconv.AppendInt(b, int64(r.V), 10)
	}
	if r.Parts != nil {
		b = append(b, `,"parts":`...)
		pb, _ := r.Parts.MarshalJSON()
		b = append(b, pb...)
	}
	if len(r.Need) > 0 {
		b = append(b, `,"need":`...)
		b = appendIDs(b, r.Need)
	}
	if len(r.Sessions) > 0 {
		b = append(b, `,"sessions":`...)
		b = appendCommits(b, r.Sessions)
	}
	return append(b, '}'), nil
}

// EncodedLen returns len of MarshalJSON's output without building it, so the
// driver can count bytes for free.
func (r *Request) EncodedLen() int {
	n := headLen(r.Count) + 1
	if r.Filter != nil {
		n += len(`,"filter":`) + r.Filter.EncodedLen()
	}
	if len(r.Commits) > 0 {
		n += len(`,"commits":`) + commitsLen(r.Commits)
	}
	if r.Limit != 0 {
		n += len(`,"limit":`) + len(strconv.Itoa(r.Limit))
	}
	if r.V != 0 {
		n += len(`,"v":`) + len(strconv.Itoa(r.V))
	}
	if r.Parts != nil {
		n += len(`,"parts":`) + r.Parts.encodedLen()
	}
	if len(r.Need) > 0 {
		n += len(`,"need":`) + idsLen(r.Need)
	}
	if len(r.Sessions) > 0 {
		n += len(`,"sessions":`) + commitsLen(r.Sessions)
	}
	return n
}

// MarshalJSON writes the compact wire form; commits is [] when empty.
func (r Response) MarshalJSON() ([]byte, error) {
	b := make([]byte, 0, r.EncodedLen())
	b = appendHead(b, r.Count, r.Digest)
	b = append(b, `,"inSync":`...)
	b = strconv.AppendBool(b, r.InSync)
	b = append(b, `,"commits":`...)
	b = appendCommits(b, r.Commits)
	b = append(b, `,"more":`...)
	b = strconv.AppendBool(b, r.More)
	if r.Filter != nil {
		b = append(b, `,"filter":`...)
		fb, _ := r.Filter.MarshalJSON()
		b = append(b, fb...)
	}
	if len(r.Results) > 0 {
		b = append(b, `,"results":`...)
		rb, err := json.Marshal(r.Results)
		if err != nil {
			return nil, err
		}
		b = append(b, rb...)
	}
	if r.Parts != nil {
		b = append(b, `,"parts":`...)
		pb, _ := r.Parts.MarshalJSON()
		b = append(b, pb...)
	}
	if len(r.Rest) > 0 {
		b = append(b, `,"rest":`...)
		b = appendIDs(b, r.Rest)
	}
	if len(r.Want) > 0 {
		b = append(b, `,"want":`...)
		b = appendIDs(b, r.Want)
	}
	if len(r.Lists) > 0 {
		b = append(b, `,"lists":[`...)
		for i, l := range r.Lists {
			if i > 0 {
				b = append(b, ',')
			}
			lb, _ := l.MarshalJSON()
			b = append(b, lb...)
		}
		b = append(b, ']')
	}
	return append(b, '}'), nil
}

// EncodedLen returns len of MarshalJSON's output without building it.
func (r *Response) EncodedLen() int {
	n := headLen(r.Count) + len(`,"inSync":`) + len(strconv.FormatBool(r.InSync)) +
		len(`,"commits":`) + commitsLen(r.Commits) + len(`,"more":`) + len(strconv.FormatBool(r.More)) + 1
	if r.Filter != nil {
		n += len(`,"filter":`) + r.Filter.EncodedLen()
	}
	if len(r.Results) > 0 {
		rb, _ := json.Marshal(r.Results)
		n += len(`,"results":`) + len(rb)
	}
	if r.Parts != nil {
		n += len(`,"parts":`) + r.Parts.encodedLen()
	}
	if len(r.Rest) > 0 {
		n += len(`,"rest":`) + idsLen(r.Rest)
	}
	if len(r.Want) > 0 {
		n += len(`,"want":`) + idsLen(r.Want)
	}
	if len(r.Lists) > 0 {
		n += len(`,"lists":[]`) + len(r.Lists) - 1
		for i := range r.Lists {
			n += r.Lists[i].encodedLen()
		}
	}
	return n
}

func appendHead(b []byte, count int64, d Sum) []byte {
	b = append(b, `{"count":`...)
	b = strconv.AppendInt(b, count, 10)
	b = append(b, `,"digest":"`...)
	b = append(b, d.String()...)
	return append(b, '"')
}

func headLen(count int64) int {
	return len(`{"count":,"digest":""`) + len(strconv.FormatInt(count, 10)) + 64
}

func appendCommits(b []byte, cs []json.RawMessage) []byte {
	b = append(b, '[')
	for i, c := range cs {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, c...)
	}
	return append(b, ']')
}

func commitsLen(cs []json.RawMessage) int {
	n := 2 + max(len(cs)-1, 0)
	for _, c := range cs {
		n += len(c)
	}
	return n
}

type requestWire struct {
	Count   *int64            `json:"count"`
	Digest  *Sum              `json:"digest"`
	Filter  *Filter           `json:"filter"`
	Commits []json.RawMessage `json:"commits"`
	Limit   *int              `json:"limit"`
	V       *int              `json:"v"`
	Parts   *PartDiff         `json:"parts"`
	Need    *idList           `json:"need"`
	// Sessions is decoded as raw objects; its length is checked before
	// anything else reads them (Validate).
	Sessions []json.RawMessage `json:"sessions"`
}

type responseWire struct {
	Count   *int64            `json:"count"`
	Digest  *Sum              `json:"digest"`
	InSync  *bool             `json:"inSync"`
	Commits []json.RawMessage `json:"commits"`
	More    *bool             `json:"more"`
	Filter  *Filter           `json:"filter"`
	Results []PushResult      `json:"results"`
	Parts   *Summary          `json:"parts"`
	Rest    *idList           `json:"rest"`
	Want    *idList           `json:"want"`
	Lists   []PartList        `json:"lists"`
}

// UnmarshalJSON decodes and validates a request. Unknown fields are errors:
// a misspelt field must not silently turn a round into a different one.
func (r *Request) UnmarshalJSON(b []byte) error {
	var w requestWire
	if err := decodeStrict(b, &w, true); err != nil {
		return fmt.Errorf("request: %w", err)
	}
	if w.Count == nil || w.Digest == nil {
		return fmt.Errorf("%w: request: count and digest are required", core.ErrInvalid)
	}
	v := Request{Count: *w.Count, Digest: *w.Digest, Filter: w.Filter, Commits: w.Commits, Sessions: w.Sessions}
	if w.Limit != nil {
		if *w.Limit <= 0 {
			return fmt.Errorf("%w: request: limit must be positive", core.ErrInvalid)
		}
		v.Limit = *w.Limit
	}
	if w.V != nil {
		if *w.V != 1 && *w.V != Version2 && *w.V != Version3 {
			return fmt.Errorf("%w: request: protocol version %d", core.ErrInvalid, *w.V)
		}
		v.V = *w.V
	}
	v.Parts = w.Parts
	if w.Need != nil {
		v.Need = *w.Need
	}
	if err := v.Validate(); err != nil {
		return fmt.Errorf("request: %w", err)
	}
	*r = v
	return nil
}

// UnmarshalJSON decodes and validates a response. Unknown fields are
// ignored, so that servers can add fields without breaking older clients.
func (r *Response) UnmarshalJSON(b []byte) error {
	var w responseWire
	if err := decodeStrict(b, &w, false); err != nil {
		return fmt.Errorf("response: %w", err)
	}
	if w.Count == nil || w.Digest == nil || w.InSync == nil || w.Commits == nil || w.More == nil {
		return fmt.Errorf("%w: response: count, digest, inSync, commits and more are required", core.ErrInvalid)
	}
	v := Response{Count: *w.Count, Digest: *w.Digest, InSync: *w.InSync, Commits: w.Commits, More: *w.More, Filter: w.Filter, Results: w.Results, Parts: w.Parts, Lists: w.Lists}
	if w.Rest != nil {
		v.Rest = *w.Rest
	}
	if w.Want != nil {
		v.Want = *w.Want
	}
	if err := v.Validate(); err != nil {
		return fmt.Errorf("response: %w", err)
	}
	*r = v
	return nil
}

// DecodeRequest parses a request body.
func DecodeRequest(b []byte) (*Request, error) {
	var r Request
	if err := decodeStrict(b, &r, true); err != nil {
		return nil, err
	}
	return &r, nil
}

// DecodeResponse parses a response body.
func DecodeResponse(b []byte) (*Response, error) {
	var r Response
	if err := decodeStrict(b, &r, false); err != nil {
		return nil, err
	}
	return &r, nil
}

// decodeStrict decodes exactly one JSON value from b into v; every error is
// core.ErrInvalid or, for a value over a limit, core.ErrTooLarge.
func decodeStrict(b []byte, v any, disallowUnknown bool) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	if disallowUnknown {
		dec.DisallowUnknownFields()
	}
	err := dec.Decode(v)
	if err == nil {
		if _, terr := dec.Token(); terr != io.EOF {
			err = errors.New("data after the JSON value")
		}
	}
	if err == nil || errors.Is(err, core.ErrInvalid) || errors.Is(err, core.ErrTooLarge) {
		return err
	}
	return fmt.Errorf("%w: %v", core.ErrInvalid, err)
}

// Server answers rounds. It is stateless between rounds; its fields are
// configuration. The zero value needs only Rand.
type Server struct {
	// Rand supplies filter salts. Required.
	Rand io.Reader
	// Policy sizes the server's filters.
	Policy FilterPolicy
	// Limit caps the commits of one response (a request's limit is
	// lowered to it). Zero means MaxCommits.
	Limit int
	// MaxBytes caps the bytes of the commits of one response. Zero means
	// DefaultMaxBytes (version 1) or StreamMaxBytes (version 2).
	MaxBytes int
	// Layout chooses the partitions of version 2 summaries.
	Layout LayoutPolicy
	// StreamLimit caps the commits of one version 2 response (a request's
	// limit is lowered to it). Zero means MaxStream.
	StreamLimit int
}

// Answer computes the response to req over set, which must already include
// req.Commits (the caller ingests them first, so that the comparison and the
// filter reflect them). It reads set only.
//
// A request without a filter, from a client that has commits, cannot say
// what the client lacks: unless in sync, the answer is the server's filter
// alone, sized for the client's extras that the counts suggest. With a
// filter, the answer is the server's commits absent from it; the server's
// filter is added unless the client, once it holds everything absent from
// its filter, will equal the server (checked by digest, so it is exact).
func (s *Server) Answer(set Set, req *Request) (*Response, error) {
	if err := req.Validate(); err != nil {
		return nil, err
	}
	if req.V == Version2 || req.V == Version3 {
		return s.answer2(set, req)
	}
	sd, cd := set.Digest(), req.digest()
	resp := &Response{Count: sd.Count, Digest: sd.XOR, Commits: []json.RawMessage{}}
	if sd == cd {
		resp.InSync = true
		return resp, nil
	}
	if req.Filter == nil && cd.Count > 0 {
		d := max(cd.Count-sd.Count, 0) + s.Policy.prior()
		f, err := BuildFilter(set.Walk, sd.Count, s.Policy.Rate(d, MaxCommits), s.Rand)
		if err != nil {
			return nil, err
		}
		resp.Filter = f
		return resp, nil
	}
	limit := min(orDefault(s.Limit, MaxCommits), orDefault(req.Limit, DefaultLimit))
	maxBytes := orDefault(s.MaxBytes, DefaultMaxBytes)

	// absent: what the client lacks (certain, Bloom filters have no false
	// negatives), in set order.
	var (
		absent   Digest
		size     int
		fetchErr error
	)
	set.Walk(func(id core.CommitID) bool {
		if req.Filter != nil && req.Filter.Test(id) {
			return true
		}
		absent.Add(id)
		if len(resp.Commits) == limit || size > maxBytes {
			return true
		}
		c, ok := set.Get(id)
		if !ok {
			fetchErr = fmt.Errorf("sync: answer: %w: walked commit %s is not in the set", core.ErrNotFound, id)
			return false
		}
		b, err := c.MarshalJSON()
		if err != nil {
			fetchErr = fmt.Errorf("sync: answer: commit %s: %w", id, err)
			return false
		}
		if len(resp.Commits) > 0 && size+len(b) > maxBytes {
			size = maxBytes + 1 // full: stop fetching, keep counting
			return true
		}
		resp.Commits = append(resp.Commits, b)
		size += len(b)
		return true
	})
	if fetchErr != nil {
		return nil, fetchErr
	}
	resp.More = int64(len(resp.Commits)) < absent.Count
	after := Digest{Count: cd.Count + absent.Count, XOR: cd.XOR}
	xorSum(&after.XOR, absent.XOR)
	if after != sd {
		// The client holds ids the server lacks (or the filter hid some of
		// the server's, which the client's next filter will reveal).
		// Shared ids number at most sd.Count-absent.Count, so the client
		// has at least cd.Count minus that of its own; it pushes at most
		// MaxCommits per round.
		d := cd.Count - (sd.Count - absent.Count)
		f, err := BuildFilter(set.Walk, sd.Count, s.Policy.Rate(d, MaxCommits), s.Rand)
		if err != nil {
			return nil, err
		}
		resp.Filter = f
	}
	return resp, nil
}

func orDefault(v, d int) int {
	if v > 0 {
		return v
	}
	return d
}

func xorSum(dst *Sum, s Sum) {
	for i := range dst {
		dst[i] ^= s[i]
	}
}

// Client runs the client half of a heal: Start builds the first request,
// and Next folds in each response (after the caller ingested its commits)
// and builds the next request, until it reports done. It remembers, between
// rounds, which of its ids the server's last filter showed missing and were
// not pushed yet. It does no I/O; the local Set is read only.
type Client struct {
	// Rand supplies filter salts. Required.
	Rand io.Reader
	// Policy sizes the client's filters.
	Policy FilterPolicy
	// Limit, if positive, is sent as the request's limit (at most
	// MaxCommits).
	Limit int
	// PushLimit caps the commits pushed in one request. Zero means
	// MaxCommits, which is also the most it can be.
	PushLimit int
	// PushBytes caps the bytes of the commits pushed in one request. Zero
	// means DefaultMaxBytes.
	PushBytes int
	// V1 makes the client speak protocol version 1 (whole-set filters), for
	// servers that do not advertise "sync-v2". V2 makes it speak version 2
	// (partitioned rounds in their first encoding), for servers that
	// advertise "sync-v2" and not "sync-v3". Version 3 is the default.
	V1 bool
	V2 bool

	pending []core.CommitID
	v2      client2
}

// Start returns the first request: the digest alone, which is all an
// in-sync check needs (well under 300 bytes of JSON with its response).
func (c *Client) Start(local Set) *Request {
	c.pending = nil
	d := local.Digest()
	if !c.V1 {
		c.v2 = client2{count: d.Count}
		return &Request{Count: d.Count, Digest: d.XOR, Limit: c.limit(), V: c.version()}
	}
	return &Request{Count: d.Count, Digest: d.XOR, Limit: c.limit()}
}

// version returns the partitioned version the client speaks (2 or 3).
func (c *Client) version() int {
	if c.V2 {
		return Version2
	}
	return Version3
}

func (c *Client) limit() int {
	if !c.V1 {
		return min(max(c.Limit, 0), MaxStream)
	}
	return min(max(c.Limit, 0), MaxCommits)
}

// Next takes the server's response to the previous request, once the caller
// has ingested resp.Commits into local, and returns the next request, or
// done when local equals the server's set as of that response. Commits the
// caller could not ingest (for example because a parent was hidden by a
// false positive) simply stay absent and are asked for again.
//
// The next request pushes the local commits the server's latest filter
// shows missing (up to the push caps, the rest in later rounds), and carries
// a fresh filter over the local ids unless the server, once it ingests the
// pushed commits, will equal local (by digest).
func (c *Client) Next(local Set, resp *Response) (req *Request, done bool, err error) {
	if err := resp.Validate(); err != nil {
		return nil, false, err
	}
	if !c.V1 {
		return c.next2(local, resp)
	}
	ld, sd := local.Digest(), resp.digest()
	if resp.InSync || (!resp.More && ld == sd) {
		c.pending = nil
		return nil, true, nil
	}
	if resp.Filter != nil {
		c.pending = c.pending[:0]
		local.Walk(func(id core.CommitID) bool {
			if !resp.Filter.Test(id) {
				c.pending = append(c.pending, id)
			}
			return true
		})
	}
	known := int64(len(c.pending)) // local ids the server lacks, as far as we know
	req = &Request{Count: ld.Count, Digest: ld.XOR, Limit: c.limit()}
	pushLimit := min(orDefault(c.PushLimit, MaxCommits), MaxCommits)
	pushBytes := orDefault(c.PushBytes, DefaultMaxBytes)
	after, size, n := sd, 0, 0
	for ; n < len(c.pending) && len(req.Commits) < pushLimit; n++ {
		id := c.pending[n]
		cm, ok := local.Get(id)
		if !ok {
			continue // gone from local since the walk; nothing to push
		}
		b, err := cm.MarshalJSON()
		if err != nil {
			return nil, false, fmt.Errorf("sync: push commit %s: %w", id, err)
		}
		if len(req.Commits) > 0 && size+len(b) > pushBytes {
			break
		}
		req.Commits = append(req.Commits, b)
		size += len(b)
		after.Add(id)
	}
	c.pending = c.pending[n:]
	if after != ld {
		// The server has ids local lacks. Local shares at most
		// ld.Count-known ids with it, so the server has at least
		// sd.Count minus that of its own, of which one response brings at
		// most the limit.
		d := sd.Count - (ld.Count - known)
		window := int64(orDefault(c.limit(), DefaultLimit))
		f, err := BuildFilter(local.Walk, ld.Count, c.Policy.Rate(d, window), c.Rand)
		if err != nil {
			return nil, false, err
		}
		req.Filter = f
	}
	return req, false, nil
}

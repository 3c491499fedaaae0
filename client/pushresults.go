package client

import (
	gsync "github.com/goat-gateway/goat-gateway/sync"
)

// splitPushResults reads a push response spelled exactly as the gateway
// writes one in which every commit was accepted or a duplicate:
// {"results":[{"id":"…","status":"accepted"},…]} with ids of printable
// ASCII without escapes. It reports false for anything else, valid or
// not (a rejection's reason, white space, escapes): a caller then decodes
// b with encoding/json, and whatever splitPushResults accepts,
// encoding/json reads as the same results (FuzzSplitPushResults holds it
// to that). A push of 100 commits answers 100 results, and reading them
// by reflection was a third of the client's CPU per push. n is the
// expected count, a capacity hint.
func splitPushResults(b []byte, n int) ([]gsync.PushResult, bool) {
	const head, idKey, end = `{"results":[`, `{"id":"`, `]}`
	s := pageScanner{b: b}
	if !s.lit(head) {
		return nil, false
	}
	results := make([]gsync.PushResult, 0, n)
	if !s.lit(end) {
		for {
			if !s.lit(idKey) {
				return nil, false
			}
			start := s.i
			for s.i < len(b) && b[s.i] >= 0x20 && b[s.i] < 0x80 && b[s.i] != '"' && b[s.i] != '\\' {
				s.i++
			}
			id := string(b[start:s.i])
			var status string
			switch {
			case s.lit(`","status":"accepted"}`):
				status = gsync.StatusAccepted
			case s.lit(`","status":"duplicate"}`):
				status = gsync.StatusDuplicate
			default:
				return nil, false
			}
			results = append(results, gsync.PushResult{ID: id, Status: status})
			if s.lit(end) {
				break
			}
			if !s.lit(",") {
				return nil, false
			}
		}
	}
	if s.i != len(b) {
		return nil, false
	}
	return results, true
}

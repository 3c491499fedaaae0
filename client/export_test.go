package client

import gsync "github.com/goat-gateway/goat-gateway/sync"

// SplitLogPage is splitLogPage, for tests holding it to encoding/json.
var SplitLogPage = splitLogPage

// DecodeLogPage is how Log reads a 2xx log page body.
func DecodeLogPage(b []byte) (*gsync.LogPage, error) {
	return decodeLogPage("log", reply{status: 200, body: b})
}

// SplitPushResults is splitPushResults, for tests holding it to
// encoding/json.
var SplitPushResults = splitPushResults

package client_test

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/goat-gateway/goat-gateway/client"
	gsync "github.com/goat-gateway/goat-gateway/sync"
)

// gatewayResults is a push response as the gateway writes it (api's
// pushResponse: encoding/json over the same struct).
func gatewayResults(tb testing.TB, results ...gsync.PushResult) []byte {
	tb.Helper()
	if results == nil {
		results = []gsync.PushResult{}
	}
	b, err := json.Marshal(struct {
		Results []gsync.PushResult `json:"results"`
	}{results})
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// sameResultsAsJSON fails tb if the splitter takes b and encoding/json
// refuses it or reads other results; it reports whether the splitter took
// b.
func sameResultsAsJSON(tb testing.TB, b []byte) bool {
	tb.Helper()
	var want struct {
		Results []gsync.PushResult `json:"results"`
	}
	jerr := json.Unmarshal(b, &want)
	got, ok := client.SplitPushResults(b, 4)
	if !ok {
		return false
	}
	if jerr != nil {
		tb.Fatalf("splitter took a body encoding/json refuses (%v):\n%q", jerr, b)
	}
	if want.Results == nil {
		want.Results = []gsync.PushResult{}
	}
	if !reflect.DeepEqual(got, want.Results) {
		tb.Fatalf("splitter %+v, encoding/json %+v\n%q", got, want.Results, b)
	}
	return true
}

func TestSplitPushResults(t *testing.T) {
	id := strings.Repeat("ab", 32)
	accepted := gsync.PushResult{ID: id, Status: gsync.StatusAccepted}
	duplicate := gsync.PushResult{ID: strings.Repeat("0f", 32), Status: gsync.StatusDuplicate}
	rejected := gsync.PushResult{ID: id, Status: gsync.StatusRejected, Reason: "bad signature", ProblemType: "https://goat-gateway.dev/problems/bad-signature"}
	many := make([]gsync.PushResult, 100)
	for i := range many {
		many[i] = gsync.PushResult{ID: fmt.Sprintf("%064x", i), Status: gsync.StatusAccepted}
	}
	for _, tc := range []struct {
		name  string
		body  []byte
		split bool
	}{
		{"Empty", gatewayResults(t), true},
		{"OneAccepted", gatewayResults(t, accepted), true},
		{"AcceptedAndDuplicate", gatewayResults(t, accepted, duplicate, accepted), true},
		{"AHundred", gatewayResults(t, many...), true},
		{"ClaimedIDNotHex", gatewayResults(t, gsync.PushResult{ID: "not an id", Status: gsync.StatusAccepted}), true},
		{"Rejected", gatewayResults(t, accepted, rejected), false},
		{"EscapedID", gatewayResults(t, gsync.PushResult{ID: "a<b", Status: gsync.StatusAccepted}), false},
		{"NonASCIIID", gatewayResults(t, gsync.PushResult{ID: "é", Status: gsync.StatusAccepted}), false},
		{"WhiteSpace", []byte(`{"results": [{"id":"x","status":"accepted"}]}`), false},
		{"OtherStatus", []byte(`{"results":[{"id":"x","status":"pending"}]}`), false},
		{"MembersSwapped", []byte(`{"results":[{"status":"accepted","id":"x"}]}`), false},
		{"TrailingData", append(gatewayResults(t, accepted), ' '), false},
		{"TrailingComma", []byte(`{"results":[{"id":"x","status":"accepted"},]}`), false},
		{"Truncated", gatewayResults(t, accepted)[:40], false},
		{"NotResults", []byte(`{"result":[]}`), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := sameResultsAsJSON(t, tc.body); got != tc.split {
				t.Fatalf("split=%v, want %v:\n%s", got, tc.split, tc.body)
			}
		})
	}
}

func FuzzSplitPushResults(f *testing.F) {
	f.Add(gatewayResults(f))
	f.Add(gatewayResults(f, gsync.PushResult{ID: strings.Repeat("ab", 32), Status: gsync.StatusAccepted}, gsync.PushResult{ID: "x", Status: gsync.StatusDuplicate}))
	f.Add(gatewayResults(f, gsync.PushResult{ID: "x", Status: gsync.StatusRejected, Reason: "r"}))
	f.Fuzz(func(t *testing.T, b []byte) { sameResultsAsJSON(t, b) })
}

// BenchmarkSplitPushResults: the response to a push of 100 accepted
// commits, read by the splitter against encoding/json.
func BenchmarkSplitPushResults(b *testing.B) {
	many := make([]gsync.PushResult, 100)
	for i := range many {
		many[i] = gsync.PushResult{ID: fmt.Sprintf("%064x", i), Status: gsync.StatusAccepted}
	}
	body := gatewayResults(b, many...)
	b.Run("split", func(b *testing.B) {
		for b.Loop() {
			if _, ok := client.SplitPushResults(body, 100); !ok {
				b.Fatal("not split")
			}
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		for b.Loop() {
			var v struct {
				Results []gsync.PushResult `json:"results"`
			}
			if err := json.Unmarshal(body, &v); err != nil {
				b.Fatal(err)
			}
		}
	})
}

package api_test

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/goat-gateway/goat-gateway/internal/goattest"
)

// TestMetrics_ClosedLabels floods the gateway anonymously with invented
// methods and paths: the number of series /metrics exposes must not move.
func TestMetrics_ClosedLabels(t *testing.T) {
	g := goattest.StartGateway(t, goattest.Config{})
	flood := func(round int) {
		t.Helper()
		for i := range 50 {
			method := fmt.Sprintf("X%dM%d", round, i)
			for _, path := range []string{"/v1/info", "/v1/repos/public.x", fmt.Sprintf("/nowhere/%d/%d", round, i)} {
				rawRequest(t, method, g.URL()+path)
			}
		}
	}
	flood(0)
	httpSeries(t, g.URL()) // the scrape's own series exist from here on
	before := httpSeries(t, g.URL())
	flood(1)
	after := httpSeries(t, g.URL())
	if len(after) != len(before) {
		t.Fatalf("series grew from %d to %d under a flood of invented methods:\n%s", len(before), len(after), strings.Join(after, "\n"))
	}
	t.Run("OtherMethod", func(t *testing.T) {
		want := `goat_http_requests_total{method="other",route="/v1/info",status="405"} 100`
		if !slices.Contains(after, want) {
			t.Fatalf("no %s in\n%s", want, strings.Join(after, "\n"))
		}
	})
	t.Run("UnmatchedRoute", func(t *testing.T) {
		want := `goat_http_requests_total{method="other",route="unmatched",status="404"} 100`
		if !slices.Contains(after, want) {
			t.Fatalf("no %s in\n%s", want, strings.Join(after, "\n"))
		}
	})
}

func rawRequest(tb testing.TB, method, url string) {
	tb.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		tb.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
}

// httpSeries returns the series of the goat_http_ metrics /metrics
// exposes, without their values.
func httpSeries(tb testing.TB, base string) []string {
	tb.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	var series []string
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if line := sc.Text(); strings.HasPrefix(line, "goat_http_") {
			series = append(series, line)
		}
	}
	if err := sc.Err(); err != nil {
		tb.Fatal(err)
	}
	return series
}

package api

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestWithRemote(t *testing.T) {
	for _, c := range []struct {
		name       string
		remoteAddr string
		xff        []string
		trust      bool
		want       string
	}{
		{"Connection", "192.0.2.1:5000", nil, false, "192.0.2.1"},
		{"HeaderIgnoredByDefault", "192.0.2.1:5000", []string{"198.51.100.7"}, false, "192.0.2.1"},
		{"IPv6Connection", "[2001:db8::1]:5000", nil, false, "2001:db8::1"},
		{"TrustedLastHop", "10.0.0.2:5000", []string{"198.51.100.7"}, true, "198.51.100.7"},
		// A client writes the first hops itself; the proxy appends what it saw.
		{"ClientWrittenHopsIgnored", "10.0.0.2:5000", []string{"203.0.113.9, 198.51.100.7"}, true, "198.51.100.7"},
		{"LastHeaderLine", "10.0.0.2:5000", []string{"203.0.113.9", "198.51.100.7"}, true, "198.51.100.7"},
		{"GarbageHopFallsBack", "10.0.0.2:5000", []string{"not-an-ip"}, true, "10.0.0.2"},
		{"NoHeaderFallsBack", "10.0.0.2:5000", nil, true, "10.0.0.2"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var got string
			h := withRemote(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) { got = remoteFrom(r.Context()) }), c.trust)
			req := httptest.NewRequest("GET", "/", nil)
			req.RemoteAddr = c.remoteAddr
			for _, v := range c.xff {
				req.Header.Add("X-Forwarded-For", v)
			}
			h.ServeHTTP(httptest.NewRecorder(), req)
			if got != c.want {
				t.Fatalf("remote=%q, want %q", got, c.want)
			}
		})
	}
}

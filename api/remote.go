package api

import (
	"context"
	"net"
	"net/http"
	"strings"
)

// remoteKey carries the caller's address in a request's context, as a
// remote.
type remoteKey struct{}

// remote is what withRemote records of a request.
type remote struct {
	ip string
	// http11 is set for an HTTP/1.x request of version 1.1 or later: its
	// response without a length is chunked, which an event stream taken
	// over from net/http keeps writing (events_linux.go).
	http11 bool
	// req is what the middleware chain learns of the request after this.
	req reqState
}

// withRemote records the caller's IP, the address anonymous callers are
// counted under (node.AcquireStream). By default it is the connection's
// far end, never a header a client can set, so a caller cannot pick whose
// quota it spends; behind a proxy every anonymous caller is then the
// proxy. With trustProxy (the operator says a proxy fronts every
// connection) it is the last X-Forwarded-For hop: the address the proxy
// itself saw, which is what a proxy appending to the header (nginx's
// $proxy_add_x_forwarded_for) puts last. Earlier hops are the client's
// to write, so they are never used.
func withRemote(next http.Handler, trustProxy bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ip := remoteIP(r.RemoteAddr)
		if trustProxy {
			if hop := lastForwardedHop(r.Header.Values("X-Forwarded-For")); hop != "" {
				ip = hop
			}
		}
		rem := &remote{ip: ip, http11: r.ProtoMajor == 1 && r.ProtoMinor >= 1}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), remoteKey{}, rem)))
	})
}

// lastForwardedHop is the last address of X-Forwarded-For (over all its
// header lines), if it parses as an IP.
func lastForwardedHop(values []string) string {
	if len(values) == 0 {
		return ""
	}
	hops := strings.Split(values[len(values)-1], ",")
	ip := net.ParseIP(strings.TrimSpace(hops[len(hops)-1]))
	if ip == nil {
		return ""
	}
	return ip.String()
}

// remoteIP is the host of addr ("ip:port"), or addr itself if it has no
// port.
func remoteIP(addr string) string {
	if host, _, err := net.SplitHostPort(addr); err == nil {
		return host
	}
	return addr
}

// remoteFrom returns the caller's address recorded by withRemote.
func remoteFrom(ctx context.Context) string {
	if r, ok := ctx.Value(remoteKey{}).(*remote); ok {
		return r.ip
	}
	return ""
}

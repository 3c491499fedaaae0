package api

import (
	"context"
	"net"
	"net/http"
)

// remoteKey carries the caller's address in a request's context.
type remoteKey struct{}

// withRemote records the IP of the connection's far end, the address
// anonymous callers are counted under (node.AcquireStream). It is the
// transport's address, never a header a client can set, so a caller
// cannot pick whose quota it spends; behind a proxy every anonymous
// caller is the proxy's address.
func withRemote(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), remoteKey{}, remoteIP(r.RemoteAddr))))
	})
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
	s, _ := ctx.Value(remoteKey{}).(string)
	return s
}

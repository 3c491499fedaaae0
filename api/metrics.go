package api

import (
	"fmt"
	"net/http"
	"strconv"
	stdsync "sync"
	"time"

	"github.com/labstack/echo/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/goat-gateway/goat-gateway/node"
)

// metrics are per server (not the global registry) so that several nodes
// can live in one test process.
type metrics struct {
	reg      *prometheus.Registry
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	rounds   *prometheus.CounterVec
	// sseSlowWrites counts the writes to taken-over event streams that
	// found the client's socket full, so that a goroutine of its own
	// finished them (api/events_linux.go).
	sseSlowWrites prometheus.Counter
	// sseSends counts the sends to taken-over event streams by the way
	// they went to the kernel: on io_uring, or one write(2) each.
	sseSendsRing, sseSendsWrite prometheus.Counter
	handler                     http.Handler

	// routes are the route templates registered with echo, read once at
	// the first request (the router is complete by then).
	routesOnce stdsync.Once
	routes     map[string]bool
}

// Label values come from closed sets, so that no caller can grow /metrics:
// a method outside methodLabels, a route that is not a registered
// template and a status without a standard name are each counted under one
// value.
const (
	otherLabel     = "other"
	unmatchedLabel = "unmatched"
)

// methodLabels are the methods openapi.yaml uses, plus HEAD and OPTIONS,
// which generic clients and browsers send.
var methodLabels = map[string]bool{
	http.MethodGet: true, http.MethodPut: true, http.MethodPost: true, http.MethodPatch: true,
	http.MethodDelete: true, http.MethodHead: true, http.MethodOptions: true,
}

func methodLabel(method string) string {
	if methodLabels[method] {
		return method
	}
	return otherLabel
}

// statusLabel is the code if the standard names it (a closed set of about
// sixty), else "other".
func statusLabel(status int) string {
	if http.StatusText(status) == "" {
		return otherLabel
	}
	return strconv.Itoa(status)
}

// routeLabel is the matched route template, or "unmatched" for anything
// else (unknown paths, and any path echo might report that is not one of
// the registered templates).
func (m *metrics) routeLabel(c *echo.Context) string {
	m.routesOnce.Do(func() {
		m.routes = map[string]bool{}
		for _, r := range c.Echo().Router().Routes() {
			m.routes[r.Path] = true
		}
	})
	if route := c.Path(); m.routes[route] {
		return route
	}
	return unmatchedLabel
}

func newMetrics(n *node.Node, extra []prometheus.Collector) (*metrics, error) {
	m := &metrics{reg: prometheus.NewRegistry()}
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "goat_http_requests_total", Help: "HTTP requests by route, method and status.",
	}, []string{"route", "method", "status"})
	m.latency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "goat_http_request_duration_seconds", Help: "HTTP request latency by route (streams excluded).",
		Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
	}, []string{"route", "method"})
	commitsIngested := prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "goat_commits_ingested_total", Help: "Commits appended durably to this node's logs.",
	}, func() float64 { return float64(n.Ingested()) })
	m.rounds = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "goat_sync_rounds_total", Help: "Reconciliation rounds served, by outcome.",
	}, []string{"in_sync"})
	m.sseSlowWrites = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "goat_sse_slow_writes_total", Help: "Writes to event streams that found the client's socket full and were finished by a goroutine of their own.",
	})
	sends := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "goat_sse_sends_total", Help: "Sends of frames to taken-over event streams, by how they went to the kernel: io_uring (many streams a system call) or write (one write(2) each).",
	}, []string{"via"})
	m.sseSendsRing, m.sseSendsWrite = sends.WithLabelValues("io_uring"), sends.WithLabelValues("write")
	m.reg.MustRegister(m.requests, m.latency, commitsIngested, m.rounds, m.sseSlowWrites, sends,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "goat_sse_subscribers", Help: "Open SSE streams.",
		}, func() float64 { return float64(n.Subscribers()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "goat_open_repositories", Help: "Repositories open in memory.",
		}, func() float64 { return float64(n.OpenRepos()) }),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	for _, c := range extra {
		if err := m.reg.Register(c); err != nil {
			return nil, fmt.Errorf("metrics: %w", err)
		}
	}
	m.handler = promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
	return m, nil
}

// middleware records every request under its route template, method and
// status, each from a closed set, so that the label set stays bounded
// whatever the URLs and methods.
func (m *metrics) middleware(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c *echo.Context) error {
		start := time.Now()
		err := next(c)
		route, method := m.routeLabel(c), methodLabel(c.Request().Method)
		status := 0
		if rw, uerr := echo.UnwrapResponse(c.Response()); uerr == nil {
			status = rw.Status
		}
		if err != nil {
			status = ProblemFor(err).Status
			if he, ok := err.(echo.HTTPStatusCoder); ok {
				status = he.StatusCode()
			}
		}
		m.requests.WithLabelValues(route, method, statusLabel(status)).Inc()
		if route != "/v1/events" {
			m.latency.WithLabelValues(route, method).Observe(time.Since(start).Seconds())
		}
		return err
	}
}

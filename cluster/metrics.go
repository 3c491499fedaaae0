package cluster

import "github.com/prometheus/client_golang/prometheus"

// Collector exposes the cluster's counters (Stats) as Prometheus metrics,
// for the node's /metrics (api.Config.Collectors). They are read at each
// scrape from the same counters Stats reads; no label carries a
// repository or a peer, so the series stay a fixed set.
func (n *Cluster) Collector() prometheus.Collector { return statsCollector{n} }

type statsCollector struct{ n *Cluster }

// clusterCounters names each counter of Stats as a metric.
var clusterCounters = []struct {
	desc *prometheus.Desc
	get  func(Stats) int64
}{
	{prometheus.NewDesc("goat_cluster_published_total", "Commits published on NATS.", nil, nil), func(s Stats) int64 { return s.Published }},
	{prometheus.NewDesc("goat_cluster_publish_dropped_total", "Commits not published on NATS (queue full, NATS refused, too large); reconciliation carries them.", nil, nil), func(s Stats) int64 { return s.PublishDropped }},
	{prometheus.NewDesc("goat_cluster_received_total", "Commits received from NATS.", nil, nil), func(s Stats) int64 { return s.Received }},
	{prometheus.NewDesc("goat_cluster_appended_total", "Commits received from NATS that were new here.", nil, nil), func(s Stats) int64 { return s.Appended }},
	{prometheus.NewDesc("goat_cluster_rejected_total", "Commits received from NATS and rejected (left to reconciliation).", nil, nil), func(s Stats) int64 { return s.Rejected }},
	{prometheus.NewDesc("goat_cluster_ingest_dropped_total", "Commits dropped because the ingest queue was full.", nil, nil), func(s Stats) int64 { return s.IngestDropped }},
	{prometheus.NewDesc("goat_cluster_bad_messages_total", "NATS messages that did not decode.", nil, nil), func(s Stats) int64 { return s.BadMessages }},
	{prometheus.NewDesc("goat_cluster_heal_passes_total", "Node-to-node reconciliation passes done.", nil, nil), func(s Stats) int64 { return s.HealPasses }},
	{prometheus.NewDesc("goat_cluster_heal_pulled_total", "Commits received from peers by reconciliation.", nil, nil), func(s Stats) int64 { return s.HealPulled }},
	{prometheus.NewDesc("goat_cluster_heal_pushed_total", "Commits sent to peers by reconciliation.", nil, nil), func(s Stats) int64 { return s.HealPushed }},
	{prometheus.NewDesc("goat_cluster_heal_errors_total", "Failed repository heals (a peer down included).", nil, nil), func(s Stats) int64 { return s.HealErrors }},
}

func (c statsCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, m := range clusterCounters {
		ch <- m.desc
	}
}

func (c statsCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.n.Stats()
	for _, m := range clusterCounters {
		ch <- prometheus.MustNewConstMetric(m.desc, prometheus.CounterValue, float64(m.get(s)))
	}
}

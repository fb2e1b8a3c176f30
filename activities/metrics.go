package activities

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/assetsup/webhooks/delivery"
)

// Metrics are the delivery measurements the worker exports beside the SDK's own.
type Metrics struct {
	deliveries *prometheus.CounterVec
	attempts   *prometheus.CounterVec
	latency    prometheus.Histogram
	infra      *prometheus.CounterVec
}

// NewMetrics registers the delivery metrics on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "webhooks_deliveries_total",
			Help: "Finished deliveries by kind (event, test, redelivery) and outcome (succeeded, failed).",
		}, []string{"kind", "outcome"}),
		attempts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "webhooks_delivery_attempts_total",
			Help: "HTTP attempts by result: success, or the failure type (HTTPStatus, Network, Timeout, ForbiddenAddress, Gone).",
		}, []string{"result"}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "webhooks_send_duration_seconds",
			Help:    "Time from sending a delivery request to reading its response.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 12),
		}),
		infra: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "webhooks_infrastructure_retries_total",
			Help: "Attempts that sent nothing because of the service itself (Database, ConnectionWait) and will be retried without costing the receiver an attempt.",
		}, []string{"type"}),
	}
	reg.MustRegister(m.deliveries, m.attempts, m.latency, m.infra)
	return m
}

func (m *Metrics) attempt(result string, d time.Duration) {
	if m == nil {
		return
	}
	m.attempts.WithLabelValues(result).Inc()
	m.latency.Observe(d.Seconds())
}

func (m *Metrics) infraRetry(errType string) {
	if m == nil {
		return
	}
	m.infra.WithLabelValues(errType).Inc()
}

func (m *Metrics) finished(kind delivery.Kind, succeeded bool) {
	if m == nil {
		return
	}
	outcome := delivery.OutcomeFailed
	if succeeded {
		outcome = delivery.OutcomeSucceeded
	}
	m.deliveries.WithLabelValues(string(kind), string(outcome)).Inc()
}

package activities

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/assetsup/webhooks/operational"
)

// OpsMetrics measure what keeps nothing silently missed: recoveries, the deliveries
// logged as missed while webhooks were off, and the operational events sent to the
// AssetsUp backend.
type OpsMetrics struct {
	recoveriesStarted  prometheus.Counter
	recoveriesFinished *prometheus.CounterVec
	missed             prometheus.Counter
	operational        *prometheus.CounterVec
}

// NewOpsMetrics registers the metrics on reg.
func NewOpsMetrics(reg prometheus.Registerer) *OpsMetrics {
	m := &OpsMetrics{
		recoveriesStarted: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "webhooks_recoveries_started_total",
			Help: "Recoveries (RecoverDeliveries workflows) that listed their first page.",
		}),
		recoveriesFinished: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "webhooks_recoveries_finished_total",
			Help: "Recoveries by how they ended: completed, canceled or failed.",
		}, []string{"state"}),
		missed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "webhooks_missed_deliveries_total",
			Help: "Deliveries logged as missed: the event came while its subscribed webhook was off.",
		}),
		operational: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "webhooks_operational_event_attempts_total",
			Help: "Attempts to send operational events to the AssetsUp backend, by type and result (sent, failed, error).",
		}, []string{"type", "result"}),
	}
	reg.MustRegister(m.recoveriesStarted, m.recoveriesFinished, m.missed, m.operational)
	return m
}

func (m *OpsMetrics) recoveryStarted() {
	if m != nil {
		m.recoveriesStarted.Inc()
	}
}

func (m *OpsMetrics) recoveryFinished(state string) {
	if m != nil {
		m.recoveriesFinished.WithLabelValues(state).Inc()
	}
}

func (m *OpsMetrics) missedDeliveries(n int) {
	if m != nil {
		m.missed.Add(float64(n))
	}
}

func (m *OpsMetrics) operationalAttempt(t operational.Type, result string) {
	if m != nil {
		m.operational.WithLabelValues(string(t), result).Inc()
	}
}

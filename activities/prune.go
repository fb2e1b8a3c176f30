package activities

import (
	"context"

	"go.temporal.io/sdk/activity"

	"github.com/assetsup/webhooks/models"
)

// pruneBatch bounds each DELETE so pruning a large backlog never holds long locks.
const pruneBatch = 5000

// PruneResult counts the rows removed: delivery log rows (with their attempts), and
// the endpoint-health totals, recoveries and operational events of the same age.
type PruneResult struct {
	Deleted       int `json:"deleted"`
	HealthDeleted int `json:"healthDeleted,omitempty"`
}

// PruneDeliveries removes delivery log rows older than WEBHOOK_DELIVERY_RETENTION, and
// what was derived from them.
func (s *Delivery) PruneDeliveries(ctx context.Context) (PruneResult, error) {
	cutoff := s.now().Add(-s.cfg.DeliveryRetention)
	n, err := models.PruneDeliveries(ctx, s.db, cutoff, pruneBatch)
	if err != nil {
		return PruneResult{Deleted: n}, err
	}
	h, err := models.PruneRecoveryHealth(ctx, s.db, cutoff)
	if err != nil {
		return PruneResult{Deleted: n, HealthDeleted: h}, err
	}
	if n > 0 || h > 0 {
		activity.GetLogger(ctx).Info("pruned delivery log", "deleted", n, "health_deleted", h, "retention", s.cfg.DeliveryRetention.String())
	}
	return PruneResult{Deleted: n, HealthDeleted: h}, nil
}

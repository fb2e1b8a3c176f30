package activities

import (
	"context"

	"go.temporal.io/sdk/activity"

	"github.com/assetsup/webhooks/models"
)

// pruneBatch bounds each DELETE so pruning a large backlog never holds long locks.
const pruneBatch = 5000

// PruneResult counts the delivery log rows removed.
type PruneResult struct {
	Deleted int `json:"deleted"`
}

// PruneDeliveries removes delivery log rows older than WEBHOOK_DELIVERY_RETENTION.
func (s *Delivery) PruneDeliveries(ctx context.Context) (PruneResult, error) {
	n, err := models.PruneDeliveries(ctx, s.db, s.now().Add(-s.cfg.DeliveryRetention), pruneBatch)
	if err != nil {
		return PruneResult{Deleted: n}, err
	}
	if n > 0 {
		activity.GetLogger(ctx).Info("pruned delivery log", "deleted", n, "retention", s.cfg.DeliveryRetention.String())
	}
	return PruneResult{Deleted: n}, nil
}

package api

import (
	"net/http"

	"github.com/gin-gonic/gin"
)

// body answers with the exact bytes a delivery sent (the same on every attempt), for
// the portal's delivery page: the delivery view itself leaves them out of lists.
func (h *DeliveryHandler) body(c *gin.Context) {
	_, d, err := h.loadDelivery(c)
	if err != nil {
		_ = c.Error(err)
		return
	}
	if len(d.RequestBody) == 0 {
		_ = c.Error(&Error{Status: http.StatusNotFound, Code: "body_unavailable",
			Message: "this delivery's body was not recorded: nothing was sent"})
		return
	}
	c.Header("Cache-Control", "private, no-store")
	c.Header("X-Content-Type-Options", "nosniff")
	c.Data(http.StatusOK, "application/json", d.RequestBody)
}

package api

import (
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/assetsup/webhooks/models"
)

// Error is an API error with its status and machine-readable code.
type Error struct {
	Status  int
	Code    string
	Message string
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

func badRequest(code, msg string) *Error {
	return &Error{Status: http.StatusBadRequest, Code: code, Message: msg}
}

// errorBody is the one error shape every route answers with.
type errorBody struct {
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

func writeError(c *gin.Context, status int, code, msg string) {
	c.AbortWithStatusJSON(status, errorBody{Error: errorDetail{Code: code, Message: msg}})
}

// databaseRetryAfter is the Retry-After of a 503 while PostgreSQL is unreachable: about
// what a restart or a failover takes, so clients come back once it is likely over
// rather than hammering a database on its way up.
const databaseRetryAfter = 5 * time.Second

// errorMiddleware maps the error a handler attached with c.Error to a status and a JSON
// body. Unknown errors are 500s that say nothing of their cause; the log keeps it.
func errorMiddleware(logger *slog.Logger) gin.HandlerFunc {
	return func(c *gin.Context) {
		c.Next()
		if len(c.Errors) == 0 || c.Writer.Written() {
			return
		}
		err := c.Errors.Last().Err
		var apiErr *Error
		switch {
		case errors.As(err, &apiErr):
			writeError(c, apiErr.Status, apiErr.Code, apiErr.Message)
		case errors.Is(err, models.ErrNotFound):
			writeError(c, http.StatusNotFound, "not_found", "webhook not found")
		case errors.Is(err, models.ErrLimitReached):
			writeError(c, http.StatusConflict, "limit_reached", "webhook limit reached for this user: delete one first")
		case models.IsUnavailable(err):
			// An outage, not a bug. Each write is one statement or one transaction, so
			// none is left half done.
			logger.WarnContext(c.Request.Context(), "database unavailable", "route", c.FullPath(), "error", err)
			c.Header("Retry-After", strconv.Itoa(int(databaseRetryAfter/time.Second)))
			writeError(c, http.StatusServiceUnavailable, "database_unavailable", "the database is unavailable; try again shortly")
		default:
			logger.ErrorContext(c.Request.Context(), "request failed", "route", c.FullPath(), "error", err)
			writeError(c, http.StatusInternalServerError, "internal", "internal error")
		}
	}
}

// recovery turns a panic into the same JSON 500, never a stack trace to the client.
func recovery(logger *slog.Logger) gin.HandlerFunc {
	return gin.CustomRecoveryWithWriter(nil, func(c *gin.Context, rec any) {
		logger.ErrorContext(c.Request.Context(), "panic in handler", "route", c.FullPath(), "panic", rec)
		writeError(c, http.StatusInternalServerError, "internal", "internal error")
	})
}

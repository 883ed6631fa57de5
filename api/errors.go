package api

import (
	"errors"
	"log/slog"
	"math"
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"

	"github.com/tributary/tributary/models"
)

var (
	errNotFoundRoute = models.Errorf(models.ErrCodeNotFound, "no such endpoint")
	errMethod        = &models.Error{Code: "method_not_allowed", Message: "method not allowed on this endpoint"}
)

// statusOf maps contract error codes to HTTP statuses.
var statusOf = map[string]int{
	models.ErrCodeInvalid:       http.StatusBadRequest,
	models.ErrCodeUnauthorized:  http.StatusUnauthorized,
	models.ErrCodeForbidden:     http.StatusForbidden,
	models.ErrCodeNotFound:      http.StatusNotFound,
	models.ErrCodeConflict:      http.StatusConflict,
	models.ErrCodeTooLarge:      http.StatusRequestEntityTooLarge,
	models.ErrCodeUnprocessable: http.StatusUnprocessableEntity,
	models.ErrCodeRateLimited:   http.StatusTooManyRequests,
	models.ErrCodeUnavailable:   http.StatusServiceUnavailable,
	"method_not_allowed":        http.StatusMethodNotAllowed,
}

func errorBody(code, msg string) gin.H {
	return gin.H{"error": gin.H{"code": code, "message": msg}}
}

// fail renders err as the contract's error body. Errors without a code are
// logged and answered as a generic 500, never leaking internals.
func fail(c *gin.Context, err error) {
	var e *models.Error
	if !errors.As(err, &e) {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			e = models.Errorf(models.ErrCodeTooLarge, "request body exceeds %d bytes", mbe.Limit)
		}
	}
	if e == nil {
		slog.ErrorContext(c.Request.Context(), "request failed", "err", err, "path", c.FullPath(), "requestId", c.GetString(ctxRequestID))
		c.AbortWithStatusJSON(http.StatusInternalServerError, errorBody(models.ErrCodeInternal, "internal error; see the server log for request id "+c.GetString(ctxRequestID)))
		return
	}
	status, ok := statusOf[e.Code]
	if !ok {
		status = http.StatusInternalServerError
	}
	if e.RetryAfter > 0 {
		c.Header("Retry-After", strconv.Itoa(int(math.Ceil(e.RetryAfter.Seconds()))))
	}
	body := gin.H{"code": e.Code, "message": e.Message}
	if e.Field != "" {
		body["field"] = e.Field
	}
	c.AbortWithStatusJSON(status, gin.H{"error": body})
}

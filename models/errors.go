package models

import (
	"errors"
	"fmt"
	"time"
)

// Error codes shared by every package. The API maps each to an HTTP status
// and renders {"error": {"code", "message"}}.
const (
	ErrCodeInvalid       = "invalid_request"   // 400
	ErrCodeUnauthorized  = "unauthorized"      // 401
	ErrCodeForbidden     = "forbidden"         // 403
	ErrCodeNotFound      = "not_found"         // 404
	ErrCodeConflict      = "conflict"          // 409
	ErrCodeTooLarge      = "payload_too_large" // 413
	ErrCodeUnprocessable = "invalid_field"     // 422
	ErrCodeRateLimited   = "rate_limited"      // 429
	ErrCodeInternal      = "internal_error"    // 500
	ErrCodeUnavailable   = "unavailable"       // 503
)

// Error is an error with a contract code and a human message. Domain packages
// return it for anything a caller can act on; everything else is internal.
type Error struct {
	Code    string
	Message string
	// Field names the offending input field, when there is one.
	Field string
	// RetryAfter, on rate_limited errors, is when the caller may retry (the
	// API sends it as Retry-After).
	RetryAfter time.Duration
}

func (e *Error) Error() string { return e.Message }

// Errorf builds an *Error with a formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// FieldError builds a 422 error naming the invalid field.
func FieldError(field, format string, args ...any) *Error {
	return &Error{Code: ErrCodeUnprocessable, Field: field, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of the first *Error in err's chain, or
// ErrCodeInternal when there is none.
func ErrorCode(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ErrCodeInternal
}

// IsNotFound reports whether err carries ErrCodeNotFound.
func IsNotFound(err error) bool { return err != nil && ErrorCode(err) == ErrCodeNotFound }

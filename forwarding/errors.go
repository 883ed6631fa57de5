package forwarding

import (
	"context"
	"errors"
	"fmt"
	"time"
)

func describe(err error, timeout time.Duration) string {
	switch {
	case errors.Is(err, ErrBlockedAddress):
		return "refused: " + errors.Unwrap(err).Error()
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Sprintf("timed out after %s", timeout)
	}
	var ue interface{ Unwrap() error }
	if errors.As(err, &ue) {
		if inner := ue.Unwrap(); inner != nil {
			if errors.Is(inner, ErrBlockedAddress) {
				return "refused: " + inner.Error()
			}
		}
	}
	return err.Error()
}

// Stages of a LocalError.
const (
	StageSecret     = "open_secret"   // the subscription's secret cannot be decrypted
	StageSigningKey = "signing_key"   // the account's signing key cannot be loaded
	StageSign       = "sign"          // computing the signature failed
	StageRequest    = "build_request" // the HTTP request could not be built
)

// LocalError is a failure of this process before any request was sent (a
// secret it cannot decrypt, a signing failure, a request it cannot build).
// The endpoint received nothing: a local error consumes no retry and never
// counts against the endpoint's health.
type LocalError struct {
	Stage string
	Err   error
}

func (e *LocalError) Error() string { return fmt.Sprintf("local error (%s): %v", e.Stage, e.Err) }

// Unwrap returns the cause.
func (e *LocalError) Unwrap() error { return e.Err }

func localErr(stage string, err error) *LocalError { return &LocalError{Stage: stage, Err: err} }

// AttemptError is a failed HTTP attempt: the endpoint answered a non-2xx
// Status, or (Status 0) the request failed with Err (timeout, refused dial,
// reset). It counts against the retry budget and the endpoint's health.
type AttemptError struct {
	Status  int
	Timeout time.Duration
	Err     error
}

func (e *AttemptError) Error() string {
	if e.Status != 0 {
		return fmt.Sprintf("endpoint answered %d", e.Status)
	}
	return describe(e.Err, e.Timeout)
}

// Unwrap returns the transport error, if any.
func (e *AttemptError) Unwrap() error { return e.Err }

package hubspot

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/tributary/tributary/connectors"
)

// maxBody bounds how much of one provider response is read.
const maxBody = 32 << 20

// apiError is HubSpot's error body. Most endpoints answer
// {"status":"error","message","correlationId","category"}; rate limits add
// errorType and policyName; the OAuth endpoints put the code in status.
type apiError struct {
	Status        string `json:"status"`
	Message       string `json:"message"`
	CorrelationID string `json:"correlationId"`
	Category      string `json:"category"`
	SubCategory   string `json:"subCategory"`
	ErrorType     string `json:"errorType"`
	PolicyName    string `json:"policyName"`
}

func (e apiError) code() string {
	switch {
	case e.Category != "":
		return e.Category
	case e.ErrorType != "":
		return e.ErrorType
	default:
		return e.Status
	}
}

// do sends one API request with conn's authenticated client and decodes a
// success answer into out. A 401 triggers one conn.Refresh and one retry.
func (c *Connector) do(ctx context.Context, conn *connectors.Conn, method, path string, query url.Values, body, out any) error {
	if conn == nil || conn.HTTP == nil {
		return errors.New("hubspot: connection has no HTTP client")
	}
	var payload []byte
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return fmt.Errorf("encode request: %w", err)
		}
		payload = b
	}
	u := c.baseURL + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	for attempt := 0; ; attempt++ {
		status, header, data, err := send(ctx, conn.HTTP, method, u, payload)
		if err != nil {
			var rl *connectors.RateLimitedError
			if errors.As(err, &rl) { // not sent: its rate budget is spent
				return rl
			}
			return &connectors.ProviderError{Code: "transport", Message: err.Error(), Temporary: true}
		}
		if status == http.StatusUnauthorized && attempt == 0 && conn.Refresh != nil {
			if rerr := conn.Refresh(ctx); rerr != nil {
				return fmt.Errorf("%w: refresh after 401: %v", connectors.ErrUnauthorized, rerr)
			}
			continue
		}
		if status >= 200 && status < 300 {
			if out == nil || status == http.StatusNoContent {
				return nil
			}
			if err := json.Unmarshal(data, out); err != nil {
				return &connectors.ProviderError{StatusCode: status, Code: "malformed_response",
					Message: fmt.Sprintf("%s %s: %v", method, path, err), Temporary: true}
			}
			return nil
		}
		return statusError(status, header, data, c.now())
	}
}

func send(ctx context.Context, hc *http.Client, method, u string, payload []byte) (int, http.Header, []byte, error) {
	var rd io.Reader
	if payload != nil {
		rd = bytes.NewReader(payload)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return 0, nil, nil, err
	}
	req.Header.Set("Accept", "application/json")
	if payload != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := hc.Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return 0, nil, nil, err
	}
	return resp.StatusCode, resp.Header, data, nil
}

// statusError maps a non-2xx answer to the connectors error it means.
func statusError(status int, header http.Header, data []byte, now time.Time) error {
	var ae apiError
	_ = json.Unmarshal(data, &ae) // a non-JSON error body still maps by status
	msg := ae.Message
	if msg == "" {
		msg = http.StatusText(status)
	}
	switch {
	case status == http.StatusTooManyRequests:
		return &connectors.RateLimitedError{RetryAfter: retryAfter(header, ae.PolicyName, now), Reason: cmpNonEmpty(ae.PolicyName, msg)}
	case status == http.StatusUnauthorized:
		return fmt.Errorf("%w: %s (%s)", connectors.ErrUnauthorized, msg, ae.code())
	case status >= 500:
		return &connectors.ProviderError{StatusCode: status, Code: ae.code(), Message: msg, Temporary: true}
	default:
		return &connectors.ProviderError{StatusCode: status, Code: ae.code(), Message: msg}
	}
}

// retryAfter reads Retry-After (seconds or HTTP date); without it the wait
// follows HubSpot's policy window (SECONDLY, TEN_SECONDLY_ROLLING, DAILY).
func retryAfter(h http.Header, policy string, now time.Time) time.Duration {
	if v := h.Get("Retry-After"); v != "" {
		if s, err := strconv.Atoi(v); err == nil && s >= 0 {
			return time.Duration(s) * time.Second
		}
		if t, err := http.ParseTime(v); err == nil {
			if d := t.Sub(now); d > 0 {
				return d
			}
			return 0
		}
	}
	switch policy {
	case "SECONDLY":
		return time.Second
	case "DAILY":
		return time.Hour
	default:
		return 10 * time.Second
	}
}

func cmpNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

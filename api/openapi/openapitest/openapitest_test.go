package openapitest

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestDocumentIsValidOpenAPI31 checks the document itself against the
// OpenAPI 3.1 schema.
func TestDocumentIsValidOpenAPI31(t *testing.T) {
	v, err := load()
	require.NoError(t, err)
	ok, errs := v.ValidateDocument()
	var msgs []string
	for _, e := range errs {
		msgs = append(msgs, e.Message+": "+e.Reason)
		for _, se := range e.SchemaValidationErrors {
			msgs = append(msgs, "  "+se.FieldPath+": "+se.Reason)
		}
	}
	require.True(t, ok, "%v", msgs)
}

// TestValidateCatchesAWrongAnswer shows the check can fail.
func TestValidateCatchesAWrongAnswer(t *testing.T) {
	for _, tc := range []struct {
		name, path string
		status     int
		body       string
		ok         bool
	}{
		{"conforms", "/healthz", 200, `{"status":"ok"}`, true},
		{"wrong value", "/healthz", 200, `{"status":"nope"}`, false},
		{"missing field", "/v1/webhooks/wh_1/stats", 200, `{"totalDeliveries":1}`, false},
		{"error body", "/v1/webhooks/wh_1", 404, `{"error":{"code":"not_found","message":"no such webhook"}}`, true},
		{"bad error body", "/v1/webhooks/wh_1", 404, `{"message":"gone"}`, false},
		{"unrouted 404", "/nowhere", 404, `{"error":{"code":"not_found","message":"no such endpoint"}}`, true},
		{"unrouted 200", "/nowhere", 200, `{}`, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodGet, "http://x"+tc.path, nil)
			resp := &http.Response{StatusCode: tc.status, Header: http.Header{"Content-Type": {"application/json"}}, Request: req}
			msg := Validate(req, resp, []byte(tc.body))
			require.Equal(t, tc.ok, msg == "", msg)
		})
	}
}

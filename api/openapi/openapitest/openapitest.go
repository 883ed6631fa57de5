// Package openapitest checks HTTP answers against Tributary's OpenAPI
// document in tests, with libopenapi-validator (which understands OpenAPI
// 3.1 and JSON Schema 2020-12).
package openapitest

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/pb33f/libopenapi"
	validator "github.com/pb33f/libopenapi-validator"
	verrors "github.com/pb33f/libopenapi-validator/errors"
	"github.com/pb33f/libopenapi-validator/helpers"

	"github.com/tributary/tributary/api/openapi"
)

var (
	once sync.Once
	val  validator.Validator
	err  error
	// libopenapi-validator's validator is not documented as safe for
	// concurrent use; tests run in parallel.
	mu sync.Mutex
)

func load() (validator.Validator, error) {
	once.Do(func() {
		var raw []byte
		if raw, err = openapi.JSON(); err != nil {
			return
		}
		var doc libopenapi.Document
		if doc, err = libopenapi.NewDocument(raw); err != nil {
			return
		}
		var errs []error
		val, errs = validator.NewValidator(doc)
		if len(errs) > 0 {
			err = errs[0]
		}
	})
	return val, err
}

// Validate checks resp (whose body the caller has read into body) against
// the document's operation for req and returns the problems found ("" when
// it conforms). The HTML pages (console, connect) are not checked.
func Validate(req *http.Request, resp *http.Response, body []byte) string {
	v, err := load()
	if err != nil {
		return "openapi document: " + err.Error()
	}
	if p := req.URL.Path; p == "/console" || strings.HasPrefix(p, "/console/") || strings.HasPrefix(p, "/connect/") {
		return ""
	}
	r2 := resp
	r2.Body = io.NopCloser(bytes.NewReader(body))
	mu.Lock()
	ok, errs := v.ValidateHttpResponse(req, r2)
	mu.Unlock()
	r2.Body = io.NopCloser(bytes.NewReader(body))
	if ok {
		return ""
	}
	// No documented operation: only the contract's 404 / 405 error fits.
	if unrouted(errs) && (resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusMethodNotAllowed) {
		var e struct {
			Error struct{ Code, Message string }
		}
		if json.Unmarshal(body, &e) == nil && e.Error.Code != "" && e.Error.Message != "" {
			return ""
		}
	}
	var b strings.Builder
	for _, e := range errs {
		b.WriteString(e.Message)
		if e.Reason != "" {
			b.WriteString(": " + e.Reason)
		}
		for _, se := range e.SchemaValidationErrors {
			b.WriteString("; " + se.FieldPath + ": " + se.Reason)
		}
		b.WriteString("\n")
	}
	return b.String()
}

func unrouted(errs []*verrors.ValidationError) bool {
	for _, e := range errs {
		if e.ValidationType != helpers.PathValidation {
			return false
		}
	}
	return len(errs) > 0
}

// Check fails t when resp does not conform to the document.
func Check(t testing.TB, req *http.Request, resp *http.Response, body []byte) {
	t.Helper()
	if msg := Validate(req, resp, body); msg != "" {
		t.Errorf("%s %s → %d does not match docs/openapi.json (api/openapi/openapi.yaml):\n%s\nbody: %.500s",
			req.Method, req.URL.Path, resp.StatusCode, msg, body)
	}
}

// Transport wraps base (nil = http.DefaultTransport) so that every answer
// it carries is checked with Check.
func Transport(t testing.TB, base http.RoundTripper) http.RoundTripper {
	if base == nil {
		base = http.DefaultTransport
	}
	return roundTripper{t: t, base: base}
}

type roundTripper struct {
	t    testing.TB
	base http.RoundTripper
}

func (r roundTripper) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := r.base.RoundTrip(req)
	if err != nil {
		return resp, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	Check(r.t, req, resp, body)
	resp.Body = io.NopCloser(bytes.NewReader(body))
	return resp, nil
}

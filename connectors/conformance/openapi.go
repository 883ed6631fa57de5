package conformance

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
)

// Spec is a set of a provider's published OpenAPI documents. Check tells
// whether one request a connector sent is one the provider documents: a
// known method and path, only declared query parameters, and a body that
// validates against the operation's schema with every required property
// and no undeclared top-level property.
type Spec struct {
	routers []routers.Router
}

// LoadSpec reads OpenAPI 3 documents (JSON or YAML files). serverURL, when
// set, replaces each document's servers so requests to a fake route too.
func LoadSpec(serverURL string, files ...string) (*Spec, error) {
	s := &Spec{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		loader := openapi3.NewLoader()
		doc, err := loader.LoadFromData(data)
		if err != nil {
			return nil, fmt.Errorf("load %s: %w", f, err)
		}
		if serverURL != "" {
			doc.Servers = openapi3.Servers{{URL: serverURL}}
		}
		r, err := gorillamux.NewRouter(doc)
		if err != nil {
			return nil, fmt.Errorf("route %s: %w", f, err)
		}
		s.routers = append(s.routers, r)
	}
	return s, nil
}

// Check validates one request (body is its raw body).
func (s *Spec) Check(ctx context.Context, r *http.Request, body []byte) error {
	_, err := s.check(ctx, r, body)
	return err
}

// CheckResponse validates a provider (fake) answer to r against the
// operation's documented response schema.
func (s *Spec) CheckResponse(ctx context.Context, r *http.Request, reqBody []byte, status int, header http.Header, body []byte) error {
	in, err := s.check(ctx, r, reqBody)
	if err != nil {
		return err
	}
	// A success the spec does not document (only "default", which
	// describes errors) has nothing to check against.
	if status < 300 && in.Route.Operation.Responses.Status(status) == nil &&
		in.Route.Operation.Responses.Value(fmt.Sprintf("%dXX", status/100)) == nil {
		return nil
	}
	out := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: in, Status: status, Header: header,
		Options: &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true},
	}
	out.SetBodyBytes(body)
	if err := openapi3filter.ValidateResponse(ctx, out); err != nil {
		return fmt.Errorf("answer to %s %s (%d): %w", r.Method, in.Route.Path, status, err)
	}
	return nil
}

func (s *Spec) check(ctx context.Context, r *http.Request, body []byte) (*openapi3filter.RequestValidationInput, error) {
	var route *routers.Route
	var params map[string]string
	for _, rt := range s.routers {
		if ro, pp, err := rt.FindRoute(r); err == nil {
			route, params = ro, pp
			break
		}
	}
	if route == nil {
		return nil, fmt.Errorf("%s %s: no such operation in the provider's spec", r.Method, r.URL.Path)
	}
	op := route.Operation
	declared := map[string]bool{}
	for _, p := range append(append(openapi3.Parameters{}, route.PathItem.Parameters...), op.Parameters...) {
		if p.Value != nil && p.Value.In == openapi3.ParameterInQuery {
			declared[p.Value.Name] = true
		}
	}
	var unknown []string
	for k := range r.URL.Query() {
		if !declared[k] {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return nil, fmt.Errorf("%s %s: undocumented query parameters %v", r.Method, route.Path, unknown)
	}
	req := r.Clone(ctx)
	req.Body = io.NopCloser(bytes.NewReader(body))
	in := &openapi3filter.RequestValidationInput{
		Request: req, PathParams: params, Route: route,
		Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc, MultiError: true},
	}
	if err := openapi3filter.ValidateRequest(ctx, in); err != nil {
		return nil, fmt.Errorf("%s %s: %w", r.Method, route.Path, err)
	}
	if op.RequestBody != nil && op.RequestBody.Value != nil && len(body) > 0 {
		if err := checkBodyKeys(op.RequestBody.Value, r.Header.Get("Content-Type"), body); err != nil {
			return nil, fmt.Errorf("%s %s: %w", r.Method, route.Path, err)
		}
	}
	in.Request = r.Clone(ctx)
	return in, nil
}

// checkBodyKeys refuses top-level body properties the schema does not
// declare (the documents leave additionalProperties open).
func checkBodyKeys(rb *openapi3.RequestBody, contentType string, body []byte) error {
	for ct, mt := range rb.Content {
		if mt.Schema == nil || mt.Schema.Value == nil || !strings.HasPrefix(contentType, strings.Split(ct, ";")[0]) {
			continue
		}
		props := mt.Schema.Value.Properties
		var keys []string
		if strings.HasPrefix(ct, "application/x-www-form-urlencoded") {
			v, err := url.ParseQuery(string(body))
			if err != nil {
				return err
			}
			for k := range v {
				keys = append(keys, k)
			}
		} else {
			var m map[string]json.RawMessage
			if err := json.Unmarshal(body, &m); err != nil {
				return nil // not an object: ValidateRequest judged it
			}
			for k := range m {
				keys = append(keys, k)
			}
		}
		var extra []string
		for _, k := range keys {
			if _, ok := props[k]; !ok {
				extra = append(extra, k)
			}
		}
		if len(extra) > 0 {
			slices.Sort(extra)
			return fmt.Errorf("undocumented body properties %v", extra)
		}
	}
	return nil
}

// Checker checks one request against a provider's documentation.
type Checker interface {
	Check(r *http.Request, body []byte) error
}

// SpecChecker adapts a Spec to Checker.
type SpecChecker struct{ Spec *Spec }

// Check implements Checker.
func (s SpecChecker) Check(r *http.Request, body []byte) error {
	return s.Spec.Check(r.Context(), r, body)
}

func parseForm(body []byte) (url.Values, error) { return url.ParseQuery(string(body)) }

// SpecRecorder is an http.RoundTripper that checks every request against a
// Spec before sending it on, and keeps what did not conform.
type SpecRecorder struct {
	Spec *Spec
	// Docs, when Spec is nil, checks requests against documented
	// resources instead (providers without an OpenAPI document).
	Docs Checker
	Next http.RoundTripper
	// Skip exempts requests (e.g. endpoints outside the spec set).
	Skip func(*http.Request) bool
	// CheckResponses also validates each answer against the documented
	// response schema (a fake's conformance).
	CheckResponses bool

	mu         sync.Mutex
	violations []string
	seen       map[string]bool
}

// RoundTrip implements http.RoundTripper.
func (s *SpecRecorder) RoundTrip(r *http.Request) (*http.Response, error) {
	var body []byte
	if r.Body != nil {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			return nil, err
		}
		_ = r.Body.Close()
		body = b
		r.Body = io.NopCloser(bytes.NewReader(b))
	}
	if s.Skip == nil || !s.Skip(r) {
		var err error
		if s.Spec != nil {
			err = s.Spec.Check(r.Context(), r, body)
		} else {
			err = s.Docs.Check(r, body)
		}
		s.mu.Lock()
		if s.seen == nil {
			s.seen = map[string]bool{}
		}
		if err != nil {
			s.violations = append(s.violations, err.Error())
		} else {
			s.seen[r.Method+" "+r.URL.Path] = true
		}
		s.mu.Unlock()
	}
	next := s.Next
	if next == nil {
		next = http.DefaultTransport
	}
	resp, err := next.RoundTrip(r)
	if err != nil || !s.CheckResponses || s.Spec == nil || (s.Skip != nil && s.Skip(r)) {
		return resp, err
	}
	data, rerr := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if rerr != nil {
		return nil, rerr
	}
	resp.Body = io.NopCloser(bytes.NewReader(data))
	if verr := s.Spec.CheckResponse(r.Context(), r, body, resp.StatusCode, resp.Header, data); verr != nil {
		s.mu.Lock()
		s.violations = append(s.violations, verr.Error())
		s.mu.Unlock()
	}
	return resp, nil
}

// Violations returns the requests that did not conform, in order.
func (s *SpecRecorder) Violations() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.violations...)
}

// Checked counts the distinct conforming requests seen (method and path).
func (s *SpecRecorder) Checked() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.seen)
}

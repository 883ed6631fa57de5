package conformance

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strings"
)

// Resources is a provider's documented REST resources, for providers that
// publish no machine-readable spec: each entry is a method, a path template
// ({name} matches one segment) and the query parameters the documentation
// lists, with the page it comes from.
type Resources struct {
	Source    string     `json:"_source"`
	Resources []Resource `json:"resources"`
}

// Resource is one documented operation.
type Resource struct {
	Method string   `json:"method"`
	Path   string   `json:"path"`
	Query  []string `json:"query"`
	// Form lists the documented form-body fields (OAuth token endpoints).
	Form   []string `json:"form,omitempty"`
	Source string   `json:"source"`

	re *regexp.Regexp
}

// LoadResources reads a resources fixture.
func LoadResources(file string) (*Resources, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	var r Resources
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	placeholder := regexp.MustCompile(`\{[^}/]+\}`)
	for i := range r.Resources {
		path := strings.TrimSuffix(r.Resources[i].Path, "/")
		var b strings.Builder
		last := 0
		for _, m := range placeholder.FindAllStringIndex(path, -1) {
			b.WriteString(regexp.QuoteMeta(path[last:m[0]]))
			b.WriteString("[^/]+")
			last = m[1]
		}
		b.WriteString(regexp.QuoteMeta(path[last:]))
		r.Resources[i].re = regexp.MustCompile("^" + b.String() + "/?$")
	}
	return &r, nil
}

// Check reports whether r (with its raw body) is a documented operation
// with documented query parameters and form fields.
func (rs *Resources) Check(r *http.Request, body []byte) error {
	for _, res := range rs.Resources {
		if res.Method != r.Method || !res.re.MatchString(r.URL.Path) {
			continue
		}
		for k := range r.URL.Query() {
			if !slices.Contains(res.Query, k) {
				return fmt.Errorf("%s %s: undocumented query parameter %q (%s)", r.Method, res.Path, k, res.Source)
			}
		}
		if len(res.Form) > 0 && strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") {
			form, err := parseForm(body)
			if err != nil {
				return err
			}
			for k := range form {
				if !slices.Contains(res.Form, k) {
					return fmt.Errorf("%s %s: undocumented form field %q (%s)", r.Method, res.Path, k, res.Source)
				}
			}
		}
		return nil
	}
	return fmt.Errorf("%s %s: not a documented resource", r.Method, r.URL.Path)
}

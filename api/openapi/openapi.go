// Package openapi holds Tributary's OpenAPI 3.1 document: written by hand
// in openapi.yaml (embedded), served as JSON at GET /openapi.json and copied
// to docs/openapi.json. It owns the document only; the routes it describes
// live in package api, whose tests check that the two agree.
package openapi

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"sync"

	"gopkg.in/yaml.v3"
)

//go:embed openapi.yaml
var source []byte

var (
	once    sync.Once
	doc     []byte
	docErr  error
	decoded map[string]any
)

// JSON returns the document as indented JSON (what /openapi.json serves).
func JSON() ([]byte, error) {
	once.Do(func() {
		if err := yaml.Unmarshal(source, &decoded); err != nil {
			docErr = fmt.Errorf("openapi.yaml: %w", err)
			return
		}
		doc, docErr = json.MarshalIndent(decoded, "", "  ")
		if docErr != nil {
			docErr = fmt.Errorf("openapi.yaml to JSON: %w", docErr)
		}
		doc = append(doc, '\n')
	})
	return doc, docErr
}

// MustJSON is JSON for callers that start the server: the document is
// embedded at build time and covered by tests, so an error is a build bug.
func MustJSON() []byte {
	b, err := JSON()
	if err != nil {
		panic(err)
	}
	return b
}

// Operations lists the documented operations as method → path templates
// ("GET" → "/v1/webhooks/{id}").
func Operations() (map[string][]string, error) {
	if _, err := JSON(); err != nil {
		return nil, err
	}
	paths, _ := decoded["paths"].(map[string]any)
	out := map[string][]string{}
	for p, item := range paths {
		ops, _ := item.(map[string]any)
		for m := range ops {
			switch m {
			case "get", "put", "post", "delete", "options", "head", "patch", "trace":
				out[upper(m)] = append(out[upper(m)], p)
			}
		}
	}
	return out, nil
}

func upper(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'a' <= c && c <= 'z' {
			b[i] = c - 32
		}
	}
	return string(b)
}

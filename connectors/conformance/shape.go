package conformance

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
)

// ShapeDiff compares a fake's answer with a documented example answer: every
// key the example has must be present with the same JSON type (objects
// compared recursively, arrays by their first element; null in either is
// not compared, and keys starting with "_" — fixture notes — are ignored).
// It returns one line per difference; none means the shapes agree.
func ShapeDiff(documented, got []byte) ([]string, error) {
	return ShapeDiffKeys(documented, got, nil)
}

// ShapeDiffKeys is ShapeDiff limited to the given top-level keys of the
// documented example (all of them when keys is empty).
func ShapeDiffKeys(documented, got []byte, keys []string) ([]string, error) {
	var d, g any
	if err := json.Unmarshal(documented, &d); err != nil {
		return nil, fmt.Errorf("documented example: %w", err)
	}
	if err := json.Unmarshal(got, &g); err != nil {
		return nil, fmt.Errorf("answer: %w", err)
	}
	if m, ok := d.(map[string]any); ok && len(keys) > 0 {
		only := map[string]any{}
		for _, k := range keys {
			if v, ok := m[k]; ok {
				only[k] = v
			} else {
				return nil, fmt.Errorf("documented example has no %q", k)
			}
		}
		d = only
	}
	var out []string
	shapeDiff("$", d, g, &out)
	sort.Strings(out)
	return out, nil
}

func kind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case map[string]any:
		return "object"
	case []any:
		return "array"
	case string:
		return "string"
	case float64:
		return "number"
	case bool:
		return "boolean"
	}
	return fmt.Sprintf("%T", v)
}

func shapeDiff(path string, d, g any, out *[]string) {
	if d == nil || g == nil {
		return
	}
	if kind(d) != kind(g) {
		*out = append(*out, fmt.Sprintf("%s: documented %s, got %s", path, kind(d), kind(g)))
		return
	}
	switch dv := d.(type) {
	case map[string]any:
		gv := g.(map[string]any)
		for k, v := range dv {
			if strings.HasPrefix(k, "_") {
				continue
			}
			x, ok := gv[k]
			if !ok {
				*out = append(*out, fmt.Sprintf("%s.%s: missing", path, k))
				continue
			}
			shapeDiff(path+"."+k, v, x, out)
		}
	case []any:
		gv := g.([]any)
		if len(dv) > 0 && len(gv) > 0 {
			shapeDiff(path+"[0]", dv[0], gv[0], out)
		}
	}
}

// ShapeDiffMask is ShapeDiff over the part of the documented example that
// mask selects: mask mirrors the example's structure with true at the
// fields to compare (an object selects keys, an array's first element
// applies to every element). It lets a fake be checked on the fields a
// connector reads without copying every field of a large example.
func ShapeDiffMask(documented, got, mask []byte) ([]string, error) {
	var d, m any
	if err := json.Unmarshal(documented, &d); err != nil {
		return nil, fmt.Errorf("documented example: %w", err)
	}
	if err := json.Unmarshal(mask, &m); err != nil {
		return nil, fmt.Errorf("mask: %w", err)
	}
	projected, err := project("$", d, m)
	if err != nil {
		return nil, err
	}
	p, err := json.Marshal(projected)
	if err != nil {
		return nil, err
	}
	return ShapeDiff(p, got)
}

func project(path string, d, m any) (any, error) {
	switch mv := m.(type) {
	case bool:
		return d, nil
	case map[string]any:
		dv, ok := d.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("mask %s: the example has no object here", path)
		}
		out := map[string]any{}
		for k, sub := range mv {
			v, ok := dv[k]
			if !ok {
				return nil, fmt.Errorf("mask %s.%s: the example has no such field", path, k)
			}
			pv, err := project(path+"."+k, v, sub)
			if err != nil {
				return nil, err
			}
			out[k] = pv
		}
		return out, nil
	case []any:
		dv, ok := d.([]any)
		if !ok || len(mv) != 1 {
			return nil, fmt.Errorf("mask %s: want one element over an example array", path)
		}
		out := make([]any, 0, len(dv))
		for i, e := range dv {
			pv, err := project(fmt.Sprintf("%s[%d]", path, i), e, mv[0])
			if err != nil {
				return nil, err
			}
			out = append(out, pv)
		}
		return out, nil
	}
	return nil, fmt.Errorf("mask %s: unexpected %T", path, m)
}

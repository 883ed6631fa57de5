package sandbox

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/tributary/tributary/models"
)

// Bookkeeping fields the app sets on every record it serves; a client may
// not write them.
const (
	FieldID        = "id"
	FieldCreatedAt = "created_at"
	FieldUpdatedAt = "updated_at"
	FieldDeleted   = "deleted"
)

var readOnly = []string{FieldID, FieldCreatedAt, FieldUpdatedAt, FieldDeleted}

// ValidObject reports whether object is one of the app's objects.
func ValidObject(object string) bool { return newShape(object) != nil }

// parseObject decodes a JSON object into its members; anything else is an
// invalid_request error.
func parseObject(raw []byte) (map[string]json.RawMessage, error) {
	raw = bytes.TrimSpace(raw)
	var m map[string]json.RawMessage
	if len(raw) == 0 || raw[0] != '{' || json.Unmarshal(raw, &m) != nil {
		return nil, models.Errorf(models.ErrCodeInvalid, "the record must be a JSON object in the sandbox app's own shape")
	}
	return m, nil
}

// ValidateFields checks that fields (a JSON object) only holds known fields
// of object with values of the right type; null values are allowed (they
// clear a field). It answers models errors: not_found for an unknown object,
// invalid_request for a body that is not an object, invalid_field naming the
// first bad field.
func ValidateFields(object string, fields []byte) error {
	if !ValidObject(object) {
		return models.Errorf(models.ErrCodeNotFound, "the sandbox app has no object %q (want one of %s)", object, strings.Join(Objects(), ", "))
	}
	m, err := parseObject(fields)
	if err != nil {
		return err
	}
	for _, k := range slices.Sorted(maps.Keys(m)) {
		if err := validateField(object, k, m[k]); err != nil {
			return err
		}
	}
	return nil
}

func validateField(object, key string, value json.RawMessage) error {
	if slices.Contains(readOnly, key) {
		return models.FieldError(key, "%s is set by the sandbox app and cannot be written", key)
	}
	if !knownField(object, key) {
		return models.FieldError(key, "%s has no field %q (fields are the app's snake_case ones; see docs/connectors/sandbox.md)", object, key)
	}
	if string(bytes.TrimSpace(value)) == "null" {
		return nil
	}
	one, err := json.Marshal(map[string]json.RawMessage{key: value})
	if err != nil {
		return models.FieldError(key, "%s is not valid JSON", key)
	}
	dec := json.NewDecoder(bytes.NewReader(one))
	dec.DisallowUnknownFields()
	if err := dec.Decode(newShape(object)); err != nil {
		return models.FieldError(key, "%s has the wrong type or shape: %s", key, strings.TrimPrefix(err.Error(), "json: "))
	}
	return nil
}

func knownField(object, key string) bool {
	one, _ := json.Marshal(map[string]any{key: nil})
	dec := json.NewDecoder(bytes.NewReader(one))
	dec.DisallowUnknownFields()
	return dec.Decode(newShape(object)) == nil
}

// MergeFields validates patch against object and merges it into old (both
// JSON objects): each member of patch replaces the field, null removes it
// (nested objects and arrays are replaced whole). It returns the merged
// object (members sorted) and whether anything changed. old may be empty.
func MergeFields(object string, old, patch []byte) (json.RawMessage, bool, error) {
	if err := ValidateFields(object, patch); err != nil {
		return nil, false, err
	}
	p, _ := parseObject(patch)
	cur := map[string]json.RawMessage{}
	if len(bytes.TrimSpace(old)) > 0 {
		if err := json.Unmarshal(old, &cur); err != nil {
			return nil, false, fmt.Errorf("stored sandbox record is not a JSON object: %w", err)
		}
		if cur == nil {
			cur = map[string]json.RawMessage{}
		}
	}
	before, _ := json.Marshal(compactAll(cur))
	for k, v := range p {
		if string(bytes.TrimSpace(v)) == "null" {
			delete(cur, k)
			continue
		}
		cur[k] = v
	}
	after, err := json.Marshal(compactAll(cur))
	if err != nil {
		return nil, false, fmt.Errorf("merge sandbox record: %w", err)
	}
	return after, !bytes.Equal(before, after), nil
}

func compactAll(m map[string]json.RawMessage) map[string]json.RawMessage {
	out := make(map[string]json.RawMessage, len(m))
	for k, v := range m {
		var buf bytes.Buffer
		if json.Compact(&buf, v) == nil {
			v = buf.Bytes()
		}
		out[k] = v
	}
	return out
}

// AppRecord is a stored record as the app serves it (in listings and in
// webhook bodies): its fields plus id, created_at, updated_at and, once
// deleted, "deleted": true.
func AppRecord(r StoredRecord) (json.RawMessage, error) {
	m := map[string]json.RawMessage{}
	if len(bytes.TrimSpace(r.Data)) > 0 {
		if err := json.Unmarshal(r.Data, &m); err != nil {
			return nil, fmt.Errorf("sandbox record %s: data is not a JSON object: %w", r.RemoteID, err)
		}
		if m == nil {
			m = map[string]json.RawMessage{}
		}
	}
	m[FieldID], _ = json.Marshal(r.RemoteID)
	m[FieldCreatedAt], _ = json.Marshal(r.CreatedAt.UTC().Format(time.RFC3339Nano))
	m[FieldUpdatedAt], _ = json.Marshal(r.ModifiedAt.UTC().Format(time.RFC3339Nano))
	if r.Deleted {
		m[FieldDeleted] = json.RawMessage("true")
	} else {
		delete(m, FieldDeleted)
	}
	return json.Marshal(m)
}

package forwarding

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"gorm.io/gorm"

	"github.com/tributary/tributary/models"
)

// Bounds of a subscription's scopes.
const (
	// MaxScopeIDs is the most connectionIds, and the most userIds, a
	// subscription may list.
	MaxScopeIDs = 100
	// MaxFilters is the most dataPayload field filters a subscription may have.
	MaxFilters = 10
	// maxFilterDepth is the most path segments after "dataPayload".
	maxFilterDepth = 8
)

// Pause modes as the API shows them.
const (
	PauseDrop  = "drop"
	PauseQueue = models.PauseQueue
)

// scope is what a subscription's scopes decode to.
type scope struct {
	conns, users map[string]bool
	filters      []fieldFilter
}

type fieldFilter struct {
	path []string
	want any // string, float64 or bool
}

func decodeScope(r models.Subscription) (scope, error) {
	var sc scope
	for _, f := range []struct {
		raw string
		dst *map[string]bool
	}{{r.ConnectionIDs, &sc.conns}, {r.UserIDs, &sc.users}} {
		if f.raw == "" {
			continue
		}
		var ids []string
		if err := json.Unmarshal([]byte(f.raw), &ids); err != nil {
			return sc, fmt.Errorf("scope of %s: %w", r.ID, err)
		}
		if len(ids) > 0 {
			*f.dst = make(map[string]bool, len(ids))
			for _, id := range ids {
				(*f.dst)[id] = true
			}
		}
	}
	if r.Filters != "" {
		var m map[string]any
		if err := json.Unmarshal([]byte(r.Filters), &m); err != nil {
			return sc, fmt.Errorf("filters of %s: %w", r.ID, err)
		}
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			sc.filters = append(sc.filters, fieldFilter{path: strings.Split(k, ".")[1:], want: m[k]})
		}
	}
	return sc, nil
}

// payload decodes an event's dataPayload once for every subscription's
// filters.
type payload struct {
	raw  json.RawMessage
	done bool
	v    any
}

func (p *payload) value() any {
	if !p.done {
		p.done = true
		_ = json.Unmarshal(p.raw, &p.v) // a payload that is not JSON matches no filter
	}
	return p.v
}

// accepts reports whether an event of connection conn and user user with
// payload pl is in the scope.
func (sc scope) accepts(conn, user string, pl *payload) bool {
	if sc.conns != nil && !sc.conns[conn] {
		return false
	}
	if sc.users != nil && !sc.users[user] {
		return false
	}
	for _, f := range sc.filters {
		v := pl.value()
		for _, seg := range f.path {
			obj, ok := v.(map[string]any)
			if !ok {
				return false
			}
			if v, ok = obj[seg]; !ok {
				return false
			}
		}
		if v != f.want { // string, float64 or bool on both sides
			return false
		}
	}
	return true
}

// applyScopes validates and writes the scope fields of in onto row;
// connection ids must be connections of the row's account.
func applyScopes(tx *gorm.DB, row *models.Subscription, in SubscriptionInput) error {
	if in.ConnectionIDs != nil {
		ids, err := validateIDs("connectionIds", *in.ConnectionIDs)
		if err != nil {
			return err
		}
		if len(ids) > 0 {
			var found []string
			if err := tx.Model(&models.Connection{}).Where("account_id = ? AND id IN ?", row.AccountID, ids).
				Pluck("id", &found).Error; err != nil {
				return fmt.Errorf("check connectionIds: %w", err)
			}
			have := map[string]bool{}
			for _, id := range found {
				have[id] = true
			}
			for _, id := range ids {
				if !have[id] {
					return models.FieldError("connectionIds", "connectionIds: connection %s is not a connection of this account", id)
				}
			}
		}
		row.ConnectionIDs = encodeIDs(ids)
	}
	if in.UserIDs != nil {
		ids, err := validateIDs("userIds", *in.UserIDs)
		if err != nil {
			return err
		}
		row.UserIDs = encodeIDs(ids)
	}
	if in.Filters != nil {
		if len(*in.Filters) > MaxFilters {
			return models.FieldError("filters", "filters may have at most %d entries", MaxFilters)
		}
		for k, v := range *in.Filters {
			segs := strings.Split(k, ".")
			if len(segs) < 2 || segs[0] != "dataPayload" || len(segs) > maxFilterDepth+1 {
				return models.FieldError("filters", "filters key %q must be \"dataPayload.<field>\" (nested fields joined by dots, at most %d deep)", k, maxFilterDepth)
			}
			for _, s := range segs[1:] {
				if s == "" {
					return models.FieldError("filters", "filters key %q has an empty field name", k)
				}
			}
			switch v.(type) {
			case string, float64, bool:
			default:
				return models.FieldError("filters", "filters[%q] must be a string, number or boolean", k)
			}
		}
		row.Filters = ""
		if len(*in.Filters) > 0 {
			b, err := json.Marshal(*in.Filters)
			if err != nil {
				return models.FieldError("filters", "filters: %v", err)
			}
			row.Filters = string(b)
		}
	}
	if in.PauseMode != nil {
		switch *in.PauseMode {
		case PauseDrop, "":
			row.PauseMode = ""
		case PauseQueue:
			row.PauseMode = PauseQueue
		default:
			return models.FieldError("pauseMode", "pauseMode must be \"drop\" (no deliveries while paused) or \"queue\" (held and sent on resume)")
		}
	}
	return nil
}

func validateIDs(field string, in []string) ([]string, error) {
	if len(in) > MaxScopeIDs {
		return nil, models.FieldError(field, "%s may list at most %d ids", field, MaxScopeIDs)
	}
	seen := map[string]bool{}
	out := []string{}
	for _, id := range in {
		if id == "" || len(id) > 255 {
			return nil, models.FieldError(field, "%s entries must be 1 to 255 characters", field)
		}
		if !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	return out, nil
}

func encodeIDs(ids []string) string {
	if len(ids) == 0 {
		return ""
	}
	b, _ := json.Marshal(ids)
	return string(b)
}

// scopeView renders the scope fields for the API.
func scopeView(r *models.Subscription, v *Subscription) {
	v.ConnectionIDs, v.UserIDs, v.Filters = []string{}, []string{}, map[string]any{}
	if r.ConnectionIDs != "" {
		_ = json.Unmarshal([]byte(r.ConnectionIDs), &v.ConnectionIDs)
	}
	if r.UserIDs != "" {
		_ = json.Unmarshal([]byte(r.UserIDs), &v.UserIDs)
	}
	if r.Filters != "" {
		_ = json.Unmarshal([]byte(r.Filters), &v.Filters)
	}
	v.PauseMode = PauseDrop
	if r.PauseMode == PauseQueue {
		v.PauseMode = PauseQueue
	}
}

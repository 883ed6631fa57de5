package fake

import (
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tributary/tributary/connectors"
)

func (s *Server) routes() {
	m := http.NewServeMux()
	m.HandleFunc("GET /oauth/authorize", s.handleAuthorize)
	m.HandleFunc("POST "+TokenPath, s.handleToken)
	m.HandleFunc("POST "+IntrospectPath, s.handleIntrospect)
	m.HandleFunc("POST "+RevokePath, s.handleRevoke)
	m.HandleFunc("POST /oauth/v1/token", s.handleLegacyToken)
	m.HandleFunc("GET /oauth/v1/access-tokens/{token}", s.handleLegacyTokenInfo)
	m.HandleFunc("GET /oauth/v1/refresh-tokens/{token}", s.handleLegacyRefreshToken)
	m.HandleFunc("DELETE /oauth/v1/refresh-tokens/{token}", s.handleLegacyRefreshToken)
	m.HandleFunc("GET /crm/v3/objects/{type}", s.api(s.handleList))
	m.HandleFunc("POST /crm/v3/objects/{type}", s.api(s.handleCreate))
	m.HandleFunc("POST /crm/v3/objects/{type}/search", s.api(s.handleSearch))
	m.HandleFunc("POST /crm/v3/objects/{type}/batch/read", s.api(s.handleBatchRead))
	m.HandleFunc("GET /crm/v3/objects/{type}/{id}", s.api(s.handleGet))
	m.HandleFunc("PATCH /crm/v3/objects/{type}/{id}", s.api(s.handleUpdate))
	m.HandleFunc("DELETE /crm/v3/objects/{type}/{id}", s.api(s.handleDelete))
	m.HandleFunc("POST /crm/v4/associations/{fromObjectType}/{toObjectType}/batch/read", s.api(s.handleAssocBatchRead))
	m.HandleFunc("GET /crm/v3/pipelines/{type}", s.api(s.handlePipelines))
	m.HandleFunc("GET /crm/v3/owners", s.api(s.handleOwners))
	m.HandleFunc("GET /crm/v3/owners/{$}", s.api(s.handleOwners))
	m.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "", "Not Found", nil)
	})
	s.mux = m
}

// correlationID is a stand-in for HubSpot's per-request UUID.
func correlationID() string {
	h := randHex(16)
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// writeError writes HubSpot's error body
// {"status":"error","message","correlationId","category"}.
func writeError(w http.ResponseWriter, status int, category, message string, extra map[string]any) {
	body := map[string]any{"status": "error", "message": message, "correlationId": correlationID()}
	if category != "" {
		body["category"] = category
	}
	for k, v := range extra {
		body[k] = v
	}
	writeJSON(w, status, body)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json;charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// api wraps an API handler with bearer authentication and injected failures;
// the handler runs with the lock held and returns deliveries to send after.
func (s *Server) api(h func(w http.ResponseWriter, r *http.Request, p *portal) []*connectors.InboundRequest) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		p, ok := s.authLocked(w, r)
		if !ok {
			s.mu.Unlock()
			return
		}
		if len(p.fail) > 0 {
			kind := p.fail[0]
			p.fail = p.fail[1:]
			s.mu.Unlock()
			writeFailure(w, kind)
			return
		}
		if !s.admitLocked(w, r, p.id) {
			s.mu.Unlock()
			return
		}
		reqs := h(w, r, p)
		target := s.target
		s.mu.Unlock()
		s.deliver(reqs, target)
	}
}

func (s *Server) authLocked(w http.ResponseWriter, r *http.Request) (*portal, bool) {
	auth := r.Header.Get("Authorization")
	scheme, tok, _ := strings.Cut(auth, " ")
	t := s.tokens[strings.TrimSpace(tok)]
	if !strings.EqualFold(scheme, "Bearer") || t == nil {
		writeError(w, http.StatusUnauthorized, "INVALID_AUTHENTICATION",
			"Authentication credentials not found. This API supports OAuth 2.0 authentication and you can find more details at https://developers.hubspot.com/docs/methods/auth/oauth-overview", nil)
		return nil, false
	}
	if now := s.nowLocked(); !now.Before(t.expires) {
		writeError(w, http.StatusUnauthorized, "EXPIRED_AUTHENTICATION",
			fmt.Sprintf("The OAuth token used to make this call expired %d second(s) ago.", int(now.Sub(t.expires).Seconds())), nil)
		return nil, false
	}
	p := s.portals[t.portal]
	if p == nil {
		writeError(w, http.StatusUnauthorized, "INVALID_AUTHENTICATION", "Authentication credentials not found.", nil)
		return nil, false
	}
	return p, true
}

func writeFailure(w http.ResponseWriter, kind string) {
	switch kind {
	case "rate_limit":
		w.Header().Set("Retry-After", "1")
		w.Header().Set("X-HubSpot-RateLimit-Secondly", "10")
		w.Header().Set("X-HubSpot-RateLimit-Secondly-Remaining", "0")
		writeJSON(w, http.StatusTooManyRequests, map[string]any{
			"status": "error", "message": "You have reached your secondly limit.", "errorType": "RATE_LIMIT",
			"correlationId": correlationID(), "policyName": "SECONDLY", "groupName": "publicapi:oauth:secondly",
		})
	case "server_error":
		writeError(w, http.StatusBadGateway, "", "internal error", nil)
	case "expired_token":
		writeError(w, http.StatusUnauthorized, "EXPIRED_AUTHENTICATION", "The OAuth token used to make this call expired 1 second(s) ago.", nil)
	}
}

func (s *Server) objectType(w http.ResponseWriter, r *http.Request) (string, bool) {
	t := r.PathValue("type")
	for name, ot := range objectTypes {
		if t == ot.typeID { // objectTypeId, as in /crm/v3/objects/0-3
			t = name
		}
	}
	if _, ok := objectTypes[t]; !ok {
		writeError(w, http.StatusBadRequest, "VALIDATION_ERROR", "Unable to infer object type from: "+t, nil)
		return "", false
	}
	return t, true
}

// render returns a SimplePublicObject with the requested properties
// (missing ones as null) plus the defaults HubSpot always returns.
func render(objectType string, o *object, props []string) map[string]any {
	ot := objectTypes[objectType]
	out := map[string]*string{}
	want := append([]string{"hs_object_id", ot.created, ot.modified}, props...)
	if objectType == "contacts" && len(props) == 0 {
		want = append(want, "email", "firstname", "lastname")
	}
	for _, k := range want {
		k = strings.TrimSpace(k)
		if k == "" {
			continue
		}
		// The published schema types property values as non-null strings:
		// a property the record does not have is left out.
		if v, ok := o.props[k]; ok {
			out[k] = &v
		}
	}
	m := map[string]any{
		"id": o.id, "properties": out, "createdAt": formatTime(o.createdAt), "updatedAt": formatTime(o.updatedAt),
		"archived": o.archived,
	}
	if o.archived {
		m["archivedAt"] = formatTime(o.archivedAt)
	}
	return m
}

func idLess(a, b string) int {
	ai, aerr := strconv.ParseInt(a, 10, 64)
	bi, berr := strconv.ParseInt(b, 10, 64)
	if aerr == nil && berr == nil {
		return cmp.Compare(ai, bi)
	}
	return strings.Compare(a, b)
}

func parseLimit(w http.ResponseWriter, v string, def, max int) (int, bool) {
	if v == "" {
		return def, true
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > max {
		writeError(w, http.StatusBadRequest, "VALIDATION_ERROR", fmt.Sprintf("limit must be between 1 and %d", max), nil)
		return 0, false
	}
	return n, true
}

func paging(after string) map[string]any {
	return map[string]any{"next": map[string]any{"after": after, "link": "?after=" + after}}
}

// handleList is GET /crm/v3/objects/{type}?limit&after&properties&archived;
// ordered by id, after is the id to resume at.
func (s *Server) handleList(w http.ResponseWriter, r *http.Request, p *portal) []*connectors.InboundRequest {
	t, ok := s.objectType(w, r)
	if !ok {
		return nil
	}
	q := r.URL.Query()
	limit, ok := parseLimit(w, q.Get("limit"), 10, 100)
	if !ok {
		return nil
	}
	archived := q.Get("archived") == "true"
	var props []string
	for _, v := range q["properties"] {
		props = append(props, strings.Split(v, ",")...)
	}
	var list []*object
	for _, o := range p.objects[t] {
		if o.archived == archived {
			list = append(list, o)
		}
	}
	slices.SortFunc(list, func(a, b *object) int { return idLess(a.id, b.id) })
	if after := q.Get("after"); after != "" {
		i := slices.IndexFunc(list, func(o *object) bool { return idLess(o.id, after) >= 0 })
		if i < 0 {
			i = len(list)
		}
		list = list[i:]
	}
	resp := map[string]any{}
	if len(list) > limit {
		resp["paging"] = paging(list[limit].id)
		list = list[:limit]
	}
	results := make([]any, 0, len(list))
	for _, o := range list {
		results = append(results, render(t, o, props))
	}
	resp["results"] = results
	writeJSON(w, http.StatusOK, resp)
	return nil
}

func (s *Server) handleGet(w http.ResponseWriter, r *http.Request, p *portal) []*connectors.InboundRequest {
	t, ok := s.objectType(w, r)
	if !ok {
		return nil
	}
	o := p.objects[t][r.PathValue("id")]
	if o == nil || o.archived != (r.URL.Query().Get("archived") == "true") {
		writeError(w, http.StatusNotFound, "OBJECT_NOT_FOUND", "Object not found.  objectId are usually numeric.", nil)
		return nil
	}
	writeJSON(w, http.StatusOK, render(t, o, strings.Split(r.URL.Query().Get("properties"), ",")))
	return nil
}

type propertiesBody struct {
	Properties map[string]string `json:"properties"`
}

func decodeBody(w http.ResponseWriter, r *http.Request, v any) bool {
	data, err := io.ReadAll(io.LimitReader(r.Body, 4<<20))
	if err == nil {
		err = json.Unmarshal(data, v)
	}
	if err != nil {
		writeError(w, http.StatusBadRequest, "VALIDATION_ERROR", "Invalid input JSON on line 1: "+err.Error(), nil)
		return false
	}
	return true
}

// standardError is one element of a batch answer's errors (StandardError:
// status, category, message, context, errors and links are required).
func standardError(category, message string, context map[string]any) map[string]any {
	return map[string]any{"status": "error", "category": category, "message": message,
		"context": context, "errors": []any{}, "links": map[string]any{}}
}

// decodeRequired decodes a JSON body and refuses it (400 VALIDATION_ERROR)
// when a property the OpenAPI schema marks required is absent.
func decodeRequired(w http.ResponseWriter, r *http.Request, v any, required ...string) bool {
	data, err := io.ReadAll(io.LimitReader(r.Body, 4<<20))
	var present map[string]json.RawMessage
	if err == nil {
		err = json.Unmarshal(data, &present)
	}
	if err == nil {
		err = json.Unmarshal(data, v)
	}
	if err != nil {
		writeError(w, http.StatusBadRequest, "VALIDATION_ERROR", "Invalid input JSON on line 1: "+err.Error(), nil)
		return false
	}
	for _, k := range required {
		if _, ok := present[k]; !ok {
			writeError(w, http.StatusBadRequest, "VALIDATION_ERROR", fmt.Sprintf("Invalid input JSON: %s is required", k), nil)
			return false
		}
	}
	return true
}

func (s *Server) handleCreate(w http.ResponseWriter, r *http.Request, p *portal) []*connectors.InboundRequest {
	t, ok := s.objectType(w, r)
	if !ok {
		return nil
	}
	var body propertiesBody
	if !decodeBody(w, r, &body) {
		return nil
	}
	o, reqs, err := s.createLocked(p, t, body.Properties)
	if err != nil {
		writeError(w, http.StatusBadRequest, "VALIDATION_ERROR", err.Error(), nil)
		return nil
	}
	writeJSON(w, http.StatusCreated, render(t, o, keys(body.Properties)))
	return reqs
}

func keys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

func (s *Server) handleUpdate(w http.ResponseWriter, r *http.Request, p *portal) []*connectors.InboundRequest {
	t, ok := s.objectType(w, r)
	if !ok {
		return nil
	}
	var body propertiesBody
	if !decodeBody(w, r, &body) {
		return nil
	}
	o, reqs, err := s.updateLocked(p, t, r.PathValue("id"), body.Properties)
	if err != nil {
		writeError(w, http.StatusNotFound, "OBJECT_NOT_FOUND", "resource not found", nil)
		return nil
	}
	writeJSON(w, http.StatusOK, render(t, o, keys(body.Properties)))
	return reqs
}

func (s *Server) handleDelete(w http.ResponseWriter, r *http.Request, p *portal) []*connectors.InboundRequest {
	t, ok := s.objectType(w, r)
	if !ok {
		return nil
	}
	reqs, _ := s.deleteLocked(p, t, r.PathValue("id")) // DELETE of a missing id is a 204 too
	w.WriteHeader(http.StatusNoContent)
	return reqs
}

type searchBody struct {
	FilterGroups []struct {
		Filters []struct {
			PropertyName string   `json:"propertyName"`
			Operator     string   `json:"operator"`
			Value        string   `json:"value"`
			Values       []string `json:"values"`
			HighValue    string   `json:"highValue"`
		} `json:"filters"`
	} `json:"filterGroups"`
	Sorts      []json.RawMessage `json:"sorts"`
	Properties []string          `json:"properties"`
	Limit      int               `json:"limit"`
	After      string            `json:"after"`
	Query      string            `json:"query"`
}

// comparable turns a property value into a number when it is a date-time
// (ISO-8601 or epoch ms) or a number, so that filters and sorts compare
// dates as HubSpot does.
func comparable(v string) (float64, bool) {
	if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
		return float64(t.UnixMilli()), true
	}
	if f, err := strconv.ParseFloat(v, 64); err == nil && !math.IsNaN(f) {
		return f, true
	}
	return 0, false
}

func compareValues(a, b string) int {
	fa, oka := comparable(a)
	fb, okb := comparable(b)
	if oka && okb {
		return cmp.Compare(fa, fb)
	}
	return strings.Compare(strings.ToLower(a), strings.ToLower(b))
}

// handleSearch is POST /crm/v3/objects/{type}/search: filterGroups OR-ed,
// filters AND-ed, one sort, limit up to 200, after as an offset, and no
// paging past 10,000 results. Archived records are never returned.
func (s *Server) handleSearch(w http.ResponseWriter, r *http.Request, p *portal) []*connectors.InboundRequest {
	t, ok := s.objectType(w, r)
	if !ok {
		return nil
	}
	var body searchBody
	// PublicObjectSearchRequest: after, filterGroups, limit, properties and
	// sorts are required.
	if !decodeRequired(w, r, &body, "after", "filterGroups", "limit", "properties", "sorts") {
		return nil
	}
	if body.Limit == 0 {
		body.Limit = 10
	}
	if body.Limit < 0 || body.Limit > 200 {
		writeError(w, http.StatusBadRequest, "VALIDATION_ERROR", "limit must be less than or equal to 200", nil)
		return nil
	}
	if len(body.FilterGroups) > 6 {
		writeError(w, http.StatusBadRequest, "VALIDATION_ERROR", "up to 6 filterGroups are allowed", nil)
		return nil
	}
	offset := 0
	if body.After != "" {
		n, err := strconv.Atoi(body.After)
		if err != nil || n < 0 {
			writeError(w, http.StatusBadRequest, "VALIDATION_ERROR", "after must be a non-negative integer", nil)
			return nil
		}
		offset = n
	}
	if offset+body.Limit > s.searchCap {
		writeError(w, http.StatusBadRequest, "VALIDATION_ERROR",
			fmt.Sprintf("The search API returns at most %d results per query; narrow the filters.", s.searchCap), nil)
		return nil
	}
	sortProp, desc := "hs_object_id", false
	if len(body.Sorts) > 1 {
		writeError(w, http.StatusBadRequest, "VALIDATION_ERROR", "only one sort is allowed", nil)
		return nil
	}
	if len(body.Sorts) == 1 {
		var sObj struct{ PropertyName, Direction string }
		if err := json.Unmarshal(body.Sorts[0], &sObj); err != nil {
			var name string
			if json.Unmarshal(body.Sorts[0], &name) != nil {
				writeError(w, http.StatusBadRequest, "VALIDATION_ERROR", "invalid sort", nil)
				return nil
			}
			sObj.PropertyName = strings.TrimPrefix(name, "-")
			sObj.Direction = map[bool]string{true: "DESCENDING", false: "ASCENDING"}[strings.HasPrefix(name, "-")]
		}
		sortProp, desc = sObj.PropertyName, sObj.Direction == "DESCENDING"
	}
	var list []*object
	for _, o := range p.objects[t] {
		if !o.archived && matches(o, body) {
			list = append(list, o)
		}
	}
	slices.SortFunc(list, func(a, b *object) int {
		c := compareValues(a.props[sortProp], b.props[sortProp])
		if desc {
			c = -c
		}
		return cmp.Or(c, idLess(a.id, b.id))
	})
	total := len(list)
	resp := map[string]any{"total": total}
	page := list[min(offset, total):min(offset+body.Limit, total)]
	if offset+body.Limit < total {
		next := strconv.Itoa(offset + body.Limit)
		resp["paging"] = map[string]any{"next": map[string]any{"after": next, "link": "?after=" + next}}
	}
	results := make([]any, 0, len(page))
	for _, o := range page {
		results = append(results, render(t, o, body.Properties))
	}
	resp["results"] = results
	writeJSON(w, http.StatusOK, resp)
	return nil
}

func matches(o *object, body searchBody) bool {
	if len(body.FilterGroups) == 0 {
		return true
	}
	for _, g := range body.FilterGroups {
		all := true
		for _, f := range g.Filters {
			v, has := o.props[f.PropertyName]
			has = has && v != ""
			var ok bool
			switch f.Operator {
			case "HAS_PROPERTY":
				ok = has
			case "NOT_HAS_PROPERTY":
				ok = !has
			case "EQ":
				ok = has && compareValues(v, f.Value) == 0
			case "NEQ":
				ok = !has || compareValues(v, f.Value) != 0
			case "GT":
				ok = has && compareValues(v, f.Value) > 0
			case "GTE":
				ok = has && compareValues(v, f.Value) >= 0
			case "LT":
				ok = has && compareValues(v, f.Value) < 0
			case "LTE":
				ok = has && compareValues(v, f.Value) <= 0
			case "BETWEEN":
				ok = has && compareValues(v, f.Value) >= 0 && compareValues(v, f.HighValue) <= 0
			case "IN":
				ok = has && slices.ContainsFunc(f.Values, func(x string) bool { return compareValues(v, x) == 0 })
			case "NOT_IN":
				ok = !has || !slices.ContainsFunc(f.Values, func(x string) bool { return compareValues(v, x) == 0 })
			case "CONTAINS_TOKEN":
				ok = has && strings.Contains(strings.ToLower(v), strings.ToLower(strings.Trim(f.Value, "*")))
			default:
				ok = false
			}
			if !ok {
				all = false
				break
			}
		}
		if all {
			return true
		}
	}
	return false
}

// handleBatchRead is POST /crm/v3/objects/{type}/batch/read: up to 100
// inputs; ids not found come back under errors with status 207.
func (s *Server) handleBatchRead(w http.ResponseWriter, r *http.Request, p *portal) []*connectors.InboundRequest {
	t, ok := s.objectType(w, r)
	if !ok {
		return nil
	}
	var body struct {
		Properties []string `json:"properties"`
		IDProperty string   `json:"idProperty"`
		Inputs     []struct {
			ID string `json:"id"`
		} `json:"inputs"`
	}
	// BatchReadInputSimplePublicObjectId: inputs, properties and
	// propertiesWithHistory are required.
	if !decodeRequired(w, r, &body, "inputs", "properties", "propertiesWithHistory") {
		return nil
	}
	if len(body.Inputs) > 100 {
		writeError(w, http.StatusBadRequest, "VALIDATION_ERROR", "Batch input limit is 100", nil)
		return nil
	}
	archived := r.URL.Query().Get("archived") == "true"
	started := formatTime(s.nowLocked())
	results := []any{}
	var missing []string
	for _, in := range body.Inputs {
		o := p.objects[t][in.ID]
		if o == nil || o.archived != archived {
			missing = append(missing, in.ID)
			continue
		}
		results = append(results, render(t, o, body.Properties))
	}
	resp := map[string]any{"status": "COMPLETE", "results": results, "startedAt": started, "completedAt": started}
	status := http.StatusOK
	if len(missing) > 0 {
		status = http.StatusMultiStatus
		resp["numErrors"] = 1
		resp["errors"] = []any{standardError("OBJECT_NOT_FOUND",
			fmt.Sprintf("Could not get some %s objects, they may be deleted or not exist. Check that ids are valid.", objectTypes[t].label),
			map[string]any{"ids": missing})}
	}
	writeJSON(w, status, resp)
	return nil
}

// handlePipelines is GET /crm/v3/pipelines/{type}: deal pipelines with their
// live stages (tickets have none in the fake).
func (s *Server) handlePipelines(w http.ResponseWriter, r *http.Request, p *portal) []*connectors.InboundRequest {
	results := []any{}
	switch r.PathValue("type") {
	case "deals":
		for _, pl := range p.pipes {
			stages := []any{}
			for _, st := range pl.stages {
				if st.archived {
					continue
				}
				stages = append(stages, map[string]any{
					"label": st.label, "displayOrder": st.displayOrder, "metadata": st.metadata, "id": st.id,
					"createdAt": formatTime(st.createdAt), "updatedAt": formatTime(st.updatedAt), "archived": false,
					"writePermissions": "CRM_PERMISSIONS_ENFORCEMENT",
				})
			}
			results = append(results, map[string]any{
				"label": pl.label, "displayOrder": pl.displayOrder, "id": pl.id, "stages": stages,
				"createdAt": formatTime(pl.createdAt), "updatedAt": formatTime(pl.updatedAt), "archived": false,
			})
		}
	case "tickets":
	default:
		writeError(w, http.StatusBadRequest, "VALIDATION_ERROR", "Unable to infer object type from: "+r.PathValue("type"), nil)
		return nil
	}
	writeJSON(w, http.StatusOK, map[string]any{"results": results})
	return nil
}

// handleOwners is GET /crm/v3/owners/?limit&after&archived&email, ordered by id.
func (s *Server) handleOwners(w http.ResponseWriter, r *http.Request, p *portal) []*connectors.InboundRequest {
	q := r.URL.Query()
	limit, ok := parseLimit(w, q.Get("limit"), 100, 500)
	if !ok {
		return nil
	}
	archived := q.Get("archived") == "true"
	var list []*ownerRec
	for _, o := range p.owners {
		if o.archived == archived && (q.Get("email") == "" || strings.EqualFold(q.Get("email"), o.email)) {
			list = append(list, o)
		}
	}
	slices.SortFunc(list, func(a, b *ownerRec) int { return idLess(a.id, b.id) })
	if after := q.Get("after"); after != "" {
		i := slices.IndexFunc(list, func(o *ownerRec) bool { return idLess(o.id, after) >= 0 })
		if i < 0 {
			i = len(list)
		}
		list = list[i:]
	}
	resp := map[string]any{}
	if len(list) > limit {
		resp["paging"] = paging(list[limit].id)
		list = list[:limit]
	}
	results := make([]any, 0, len(list))
	for _, o := range list {
		results = append(results, map[string]any{
			"id": o.id, "email": o.email, "type": "PERSON", "firstName": o.first, "lastName": o.last,
			"userId": o.userID, "userIdIncludingInactive": o.userID,
			"createdAt": formatTime(o.createdAt), "updatedAt": formatTime(o.updateAt), "archived": o.archived, "teams": []any{},
		})
	}
	resp["results"] = results
	writeJSON(w, http.StatusOK, resp)
	return nil
}

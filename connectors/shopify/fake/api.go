package fake

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Shopify's error bodies.
const (
	errInvalidToken = `{"errors":"[API] Invalid API key or access token (unrecognized login or wrong password)"}`
	errRateLimited  = `{"errors":"Exceeded 2 calls per second for api client. Reduce request rates to resume uninterrupted service."}`
	errServer       = `{"errors":"Internal Server Error"}`
	errNotFound     = `{"errors":"Not Found"}`
	errPageInfo     = `{"errors":{"page_info":"Invalid value."}}`
	paginationDocs  = "See https://shopify.dev/api/usage/pagination-rest for more information."
	maxLimit        = 250
	defaultLimit    = 50
	callLimitHeader = "X-Shopify-Shop-Api-Call-Limit"
)

var versionRE = regexp.MustCompile(`^(\d{4}-\d{2}|unstable)$`)

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	switch b := v.(type) {
	case string:
		io.WriteString(w, b)
	default:
		_ = json.NewEncoder(w).Encode(v)
	}
}

// api serves /admin/api/{version}/…: auth, injected failures, routing.
func (s *Server) api(w http.ResponseWriter, r *http.Request) {
	version := r.PathValue("version")
	if !versionRE.MatchString(version) {
		writeJSON(w, http.StatusNotFound, errNotFound)
		return
	}
	w.Header().Set("X-Shopify-API-Version", version)
	s.mu.Lock()
	tok := s.tokens[r.Header.Get("X-Shopify-Access-Token")]
	if tok == nil || (!tok.expiresAt.IsZero() && !s.now().Before(tok.expiresAt)) {
		s.mu.Unlock()
		writeJSON(w, http.StatusUnauthorized, errInvalidToken)
		return
	}
	sh := s.shops[tok.shop]
	if host := strings.Split(r.Host, ":")[0]; hasSuffix(host, ".myshopify.com") && host != sh.domain {
		s.mu.Unlock()
		writeJSON(w, http.StatusUnauthorized, errInvalidToken)
		return
	}
	if len(sh.fails) > 0 {
		kind := sh.fails[0]
		sh.fails = sh.fails[1:]
		switch kind {
		case "rate_limit":
			s.mu.Unlock()
			w.Header().Set("Retry-After", "2.0")
			w.Header().Set(callLimitHeader, "40/40")
			writeJSON(w, http.StatusTooManyRequests, errRateLimited)
			return
		case "server_error":
			s.mu.Unlock()
			writeJSON(w, http.StatusInternalServerError, errServer)
			return
		case "expired_token":
			tok.expiresAt = s.now()
			s.mu.Unlock()
			writeJSON(w, http.StatusUnauthorized, errInvalidToken)
			return
		}
	}
	defer s.mu.Unlock()
	if !s.admitLocked(w, sh.domain) {
		return
	}
	resource, file := r.PathValue("resource"), r.PathValue("file")
	if resource == "" {
		name, ok := strings.CutSuffix(file, ".json")
		if !ok {
			writeJSON(w, http.StatusNotFound, errNotFound)
			return
		}
		switch {
		case name == "shop" && r.Method == http.MethodGet:
			writeJSON(w, http.StatusOK, map[string]any{"shop": s.shopJSON(sh)})
		case name == "webhooks":
			s.webhooksCollection(w, r, sh)
		case singular[name] != "" && r.Method == http.MethodGet:
			s.list(w, r, sh, name, version)
		case singular[name] != "" && r.Method == http.MethodPost:
			s.createHTTP(w, r, sh, name)
		case singular[name] != "":
			w.Header().Set("Allow", "GET, POST")
			writeJSON(w, http.StatusMethodNotAllowed, errNotFound)
		default:
			writeJSON(w, http.StatusNotFound, errNotFound)
		}
		return
	}
	idStr, ok := strings.CutSuffix(file, ".json")
	id, err := strconv.ParseInt(idStr, 10, 64)
	if !ok || err != nil {
		writeJSON(w, http.StatusNotFound, errNotFound)
		return
	}
	if resource == "webhooks" {
		s.webhookMember(w, r, sh, id)
		return
	}
	if singular[resource] == "" {
		writeJSON(w, http.StatusNotFound, errNotFound)
		return
	}
	s.member(w, r, sh, resource, id)
}

func (s *Server) shopJSON(sh *shop) map[string]any {
	return map[string]any{
		"id": sh.id, "name": sh.name, "email": "owner@" + sh.domain, "domain": sh.domain,
		"myshopify_domain": sh.domain, "currency": "USD", "iana_timezone": "America/New_York",
		"timezone": "(GMT-05:00) Eastern Time (US & Canada)", "plan_name": "basic", "country_code": "US",
		"created_at": fmtTime(sh.created), "updated_at": fmtTime(sh.created),
	}
}

// listFilter is what a first list request asks for; page_info carries it.
type listFilter struct {
	Resource      string `json:"r"`
	Status        string `json:"s,omitempty"`
	UpdatedAtMin  int64  `json:"umin,omitempty"`
	UpdatedAtMax  int64  `json:"umax,omitempty"`
	CreatedAtMin  int64  `json:"cmin,omitempty"`
	CreatedAtMax  int64  `json:"cmax,omitempty"`
	SinceID       int64  `json:"sid,omitempty"`
	Shop          string `json:"shop"`
	AfterUpdated  int64  `json:"au,omitempty"`
	AfterID       int64  `json:"ai,omitempty"`
	BeforeUpdated int64  `json:"bu,omitempty"`
	BeforeID      int64  `json:"bi,omitempty"`
	Direction     string `json:"d,omitempty"` // "next" or "prev"
}

// encodePageInfo makes the opaque, tamper-evident page_info.
func (s *Server) encodePageInfo(f listFilter) string {
	b, _ := json.Marshal(f)
	m := hmac.New(sha256.New, s.pagingKey)
	m.Write(b)
	return base64.RawURLEncoding.EncodeToString(append(m.Sum(nil)[:12], b...))
}

func (s *Server) decodePageInfo(v string) (listFilter, bool) {
	var f listFilter
	raw, err := base64.RawURLEncoding.DecodeString(v)
	if err != nil || len(raw) < 13 {
		return f, false
	}
	m := hmac.New(sha256.New, s.pagingKey)
	m.Write(raw[12:])
	if !hmac.Equal(raw[:12], m.Sum(nil)[:12]) {
		return f, false
	}
	return f, json.Unmarshal(raw[12:], &f) == nil
}

func parseParamTime(v string) (int64, bool) {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02"} {
		if t, err := time.Parse(layout, v); err == nil {
			return t.Unix(), true
		}
	}
	return 0, false
}

// list serves GET {resource}.json with Shopify's cursor paging rules.
func (s *Server) list(w http.ResponseWriter, r *http.Request, sh *shop, resource, version string) {
	q := r.URL.Query()
	limit := defaultLimit
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			writeJSON(w, http.StatusBadRequest, map[string]any{"errors": map[string]string{"limit": "Invalid value."}})
			return
		}
		limit = min(n, maxLimit)
	}
	var f listFilter
	if pi := q.Get("page_info"); pi != "" {
		keys := make([]string, 0, len(q))
		for k := range q {
			if k != "page_info" && k != "limit" && k != "fields" {
				keys = append(keys, k)
			}
		}
		if len(keys) > 0 {
			sort.Strings(keys)
			k := keys[0]
			writeJSON(w, http.StatusBadRequest, map[string]any{"errors": map[string]string{k: k + " cannot be passed when page_info is present. " + paginationDocs}})
			return
		}
		var ok bool
		if f, ok = s.decodePageInfo(pi); !ok || f.Resource != resource || f.Shop != sh.domain {
			writeJSON(w, http.StatusBadRequest, errPageInfo)
			return
		}
	} else {
		f = listFilter{Resource: resource, Shop: sh.domain}
		for param, dst := range map[string]*int64{"updated_at_min": &f.UpdatedAtMin, "updated_at_max": &f.UpdatedAtMax, "created_at_min": &f.CreatedAtMin, "created_at_max": &f.CreatedAtMax} {
			if v := q.Get(param); v != "" {
				t, ok := parseParamTime(v)
				if !ok {
					writeJSON(w, http.StatusBadRequest, map[string]any{"errors": map[string]string{param: "Invalid value."}})
					return
				}
				*dst = t
			}
		}
		if v := q.Get("since_id"); v != "" {
			f.SinceID, _ = strconv.ParseInt(v, 10, 64)
		}
		f.Status = q.Get("status")
		if resource == Orders && f.Status == "" {
			f.Status = "open"
		}
	}
	all := s.filtered(sh, resource, f)
	// Select the page: records after (AfterUpdated, AfterID) going forward,
	// or the last `limit` before (BeforeUpdated, BeforeID) going back.
	var page []*item
	switch f.Direction {
	case "prev":
		end := sort.Search(len(all), func(i int) bool { return !less(all[i], f.BeforeUpdated, f.BeforeID) })
		page = all[max(0, end-limit):end]
	default:
		start := 0
		if f.Direction == "next" {
			start = sort.Search(len(all), func(i int) bool { return greater(all[i], f.AfterUpdated, f.AfterID) })
		}
		page = all[start:min(len(all), start+limit)]
	}
	items := make([]map[string]any, 0, len(page))
	for _, it := range page {
		items = append(items, s.fieldsFilter(s.render(sh, resource, it), q.Get("fields")))
	}
	var links []string
	if len(page) > 0 {
		base := "https://" + r.Host
		if r.TLS == nil && !hasSuffix(strings.Split(r.Host, ":")[0], ".myshopify.com") {
			base = "http://" + r.Host
		}
		link := func(g listFilter, rel string) string {
			v := url.Values{"limit": {strconv.Itoa(limit)}, "page_info": {s.encodePageInfo(g)}}
			if fl := q.Get("fields"); fl != "" {
				v.Set("fields", fl)
			}
			return fmt.Sprintf(`<%s/admin/api/%s/%s.json?%s>; rel="%s"`, base, version, resource, v.Encode(), rel)
		}
		first, last := page[0], page[len(page)-1]
		if all[0] != first {
			g := f
			g.Direction, g.BeforeUpdated, g.BeforeID, g.AfterUpdated, g.AfterID = "prev", first.updated.Unix(), first.id, 0, 0
			links = append(links, link(g, "previous"))
		}
		if all[len(all)-1] != last {
			g := f
			g.Direction, g.AfterUpdated, g.AfterID, g.BeforeUpdated, g.BeforeID = "next", last.updated.Unix(), last.id, 0, 0
			links = append(links, link(g, "next"))
		}
	}
	if len(links) > 0 {
		// Shopify sends the header name in lower case since 2023.
		w.Header()["link"] = []string{strings.Join(links, ", ")}
	}
	writeJSON(w, http.StatusOK, map[string]any{resource: items})
}

func less(it *item, updated, id int64) bool {
	u := it.updated.Unix()
	return u < updated || (u == updated && it.id < id)
}

func greater(it *item, updated, id int64) bool {
	u := it.updated.Unix()
	return u > updated || (u == updated && it.id > id)
}

// filtered returns the shop's resources matching f, sorted by updated_at
// then id.
func (s *Server) filtered(sh *shop, resource string, f listFilter) []*item {
	var out []*item
	for _, it := range sh.res[resource] {
		u, c := it.updated.Unix(), it.created.Unix()
		switch {
		case f.UpdatedAtMin != 0 && u < f.UpdatedAtMin, f.UpdatedAtMax != 0 && u > f.UpdatedAtMax,
			f.CreatedAtMin != 0 && c < f.CreatedAtMin, f.CreatedAtMax != 0 && c > f.CreatedAtMax,
			f.SinceID != 0 && it.id <= f.SinceID, !statusMatches(resource, f.Status, it.fields):
			continue
		}
		out = append(out, it)
	}
	sort.Slice(out, func(i, j int) bool { return less(out[i], out[j].updated.Unix(), out[j].id) })
	return out
}

// statusMatches applies orders' status (open, closed, cancelled, any;
// default open) and products' status (comma list of active, archived,
// draft).
func statusMatches(resource, status string, fields map[string]any) bool {
	if status == "" || status == "any" {
		return true
	}
	switch resource {
	case Orders:
		closed, cancelled := fields["closed_at"] != nil, fields["cancelled_at"] != nil
		switch status {
		case "open":
			return !closed && !cancelled
		case "closed":
			return closed
		case "cancelled":
			return cancelled
		}
		return true
	case Products:
		st, _ := fields["status"].(string)
		for _, want := range strings.Split(status, ",") {
			if strings.TrimSpace(want) == st {
				return true
			}
		}
		return false
	}
	return true
}

// fieldsFilter keeps only the comma-separated fields when given.
func (s *Server) fieldsFilter(obj map[string]any, fields string) map[string]any {
	if fields == "" {
		return obj
	}
	out := map[string]any{}
	for _, f := range strings.Split(fields, ",") {
		if v, ok := obj[strings.TrimSpace(f)]; ok {
			out[strings.TrimSpace(f)] = v
		}
	}
	return out
}

// readEnvelope reads {"<singular>": {...}} from a request body.
func readEnvelope(r *http.Request, name string) (map[string]any, bool) {
	var env map[string]map[string]any
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&env); err != nil || env[name] == nil {
		return nil, false
	}
	return env[name], true
}

// createHTTP serves POST {resource}.json {"<singular>": {...}}.
func (s *Server) createHTTP(w http.ResponseWriter, r *http.Request, sh *shop, resource string) {
	fields, ok := readEnvelope(r, singular[resource])
	if !ok {
		writeJSON(w, http.StatusBadRequest, map[string]any{"errors": map[string]string{singular[resource]: "Required parameter missing or invalid"}})
		return
	}
	for _, k := range []string{"id", "created_at", "updated_at", "admin_graphql_api_id"} {
		delete(fields, k)
	}
	it := s.createLocked(sh, resource, fields)
	ds := s.emitLocked(sh, resource, "create", it, false)
	writeJSON(w, http.StatusCreated, map[string]any{singular[resource]: s.render(sh, resource, it)})
	go s.deliver(ds)
}

// member serves GET/PUT/DELETE {resource}/{id}.json.
func (s *Server) member(w http.ResponseWriter, r *http.Request, sh *shop, resource string, id int64) {
	it := sh.res[resource][id]
	if it == nil {
		writeJSON(w, http.StatusNotFound, errNotFound)
		return
	}
	switch r.Method {
	case http.MethodGet:
		writeJSON(w, http.StatusOK, map[string]any{singular[resource]: s.fieldsFilter(s.render(sh, resource, it), r.URL.Query().Get("fields"))})
	case http.MethodPut:
		fields, ok := readEnvelope(r, singular[resource])
		if !ok {
			writeJSON(w, http.StatusBadRequest, map[string]any{"errors": map[string]string{singular[resource]: "Required parameter missing or invalid"}})
			return
		}
		for _, k := range []string{"id", "created_at", "updated_at", "admin_graphql_api_id"} {
			delete(fields, k)
		}
		s.updateLocked(it, fields)
		ds := s.emitLocked(sh, resource, "update", it, false)
		writeJSON(w, http.StatusOK, map[string]any{singular[resource]: s.render(sh, resource, it)})
		go s.deliver(ds)
	case http.MethodDelete:
		delete(sh.res[resource], id)
		ds := s.emitLocked(sh, resource, "delete", it, true)
		writeJSON(w, http.StatusOK, map[string]any{})
		go s.deliver(ds)
	default:
		writeJSON(w, http.StatusMethodNotAllowed, errNotFound)
	}
}

func (s *Server) webhookJSON(wh *subscription) map[string]any {
	return map[string]any{
		"id": wh.id, "address": wh.address, "topic": wh.topic, "format": "json",
		"created_at": fmtTime(wh.created), "updated_at": fmtTime(wh.updated),
		"fields": []any{}, "metafield_namespaces": []any{}, "api_version": s.apiVersion,
		"private_metafield_namespaces": []any{},
	}
}

// webhooksCollection serves GET/POST webhooks.json.
func (s *Server) webhooksCollection(w http.ResponseWriter, r *http.Request, sh *shop) {
	switch r.Method {
	case http.MethodGet:
		q := r.URL.Query()
		out := []any{}
		ids := make([]int64, 0, len(sh.webhooks))
		for id := range sh.webhooks {
			ids = append(ids, id)
		}
		sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
		for _, id := range ids {
			wh := sh.webhooks[id]
			if (q.Get("topic") == "" || q.Get("topic") == wh.topic) && (q.Get("address") == "" || q.Get("address") == wh.address) {
				out = append(out, s.webhookJSON(wh))
			}
		}
		writeJSON(w, http.StatusOK, map[string]any{"webhooks": out})
	case http.MethodPost:
		var env struct {
			Webhook *struct {
				Topic   string `json:"topic"`
				Address string `json:"address"`
				Format  string `json:"format"`
			} `json:"webhook"`
		}
		if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&env); err != nil || env.Webhook == nil {
			writeJSON(w, http.StatusBadRequest, map[string]any{"errors": map[string]string{"webhook": "Required parameter missing or invalid"}})
			return
		}
		wb := env.Webhook
		switch {
		case !topics[wb.Topic]:
			writeJSON(w, http.StatusUnprocessableEntity, map[string]any{"errors": map[string][]string{"topic": {"Invalid topic specified: " + wb.Topic + ". Topics allowed: " + strings.Join(sortedTopics(), ", ")}}})
			return
		case wb.Address == "":
			writeJSON(w, http.StatusUnprocessableEntity, map[string]any{"errors": map[string][]string{"address": {"can't be blank"}}})
			return
		case wb.Format != "" && wb.Format != "json" && wb.Format != "xml":
			writeJSON(w, http.StatusUnprocessableEntity, map[string]any{"errors": map[string][]string{"format": {"is not included in the list"}}})
			return
		}
		for _, wh := range sh.webhooks {
			if wh.topic == wb.Topic && wh.address == wb.Address {
				writeJSON(w, http.StatusUnprocessableEntity, map[string]any{"errors": map[string][]string{"address": {"for this topic has already been taken"}}})
				return
			}
		}
		now := s.nowLocked()
		wh := &subscription{id: s.nextID(), topic: wb.Topic, address: wb.Address, created: now, updated: now}
		sh.webhooks[wh.id] = wh
		writeJSON(w, http.StatusCreated, map[string]any{"webhook": s.webhookJSON(wh)})
	default:
		writeJSON(w, http.StatusMethodNotAllowed, errNotFound)
	}
}

func sortedTopics() []string {
	out := make([]string, 0, len(topics))
	for t := range topics {
		out = append(out, t)
	}
	sort.Strings(out)
	return out
}

// webhookMember serves GET/DELETE webhooks/{id}.json.
func (s *Server) webhookMember(w http.ResponseWriter, r *http.Request, sh *shop, id int64) {
	wh := sh.webhooks[id]
	if wh == nil {
		writeJSON(w, http.StatusNotFound, errNotFound)
		return
	}
	switch r.Method {
	case http.MethodGet:
		writeJSON(w, http.StatusOK, map[string]any{"webhook": s.webhookJSON(wh)})
	case http.MethodDelete:
		delete(sh.webhooks, id)
		writeJSON(w, http.StatusOK, map[string]any{})
	default:
		writeJSON(w, http.StatusMethodNotAllowed, errNotFound)
	}
}

package fake

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

// apiError is one element of Salesforce's error array.
type apiError struct {
	Message   string   `json:"message"`
	ErrorCode string   `json:"errorCode"`
	Fields    []string `json:"fields,omitempty"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, []apiError{{Message: msg, ErrorCode: code}})
}

func notFound(w http.ResponseWriter) {
	writeError(w, http.StatusNotFound, "NOT_FOUND", "The requested resource does not exist")
}

var versionRE = regexp.MustCompile(`^v(\d+)\.0$`)

// routes registers every endpoint.
func (f *Fake) routes() {
	m := http.NewServeMux()
	m.HandleFunc("GET /services/oauth2/authorize", f.authorize)
	m.HandleFunc("POST /services/oauth2/token", f.token)
	m.HandleFunc("GET /id/{org}/{user}", f.api(f.identity))
	m.HandleFunc("GET /services/data/{version}/query", f.api(f.query))
	m.HandleFunc("GET /services/data/{version}/query/{$}", f.api(f.query))
	m.HandleFunc("GET /services/data/{version}/query/{locator}", f.api(f.queryMore))
	m.HandleFunc("GET /services/data/{version}/queryAll", f.api(f.queryAll))
	m.HandleFunc("GET /services/data/{version}/queryAll/{$}", f.api(f.queryAll))
	m.HandleFunc("GET /services/data/{version}/queryAll/{locator}", f.api(f.queryMore))
	m.HandleFunc("GET /services/data/{version}/sobjects/{sobject}/deleted/{$}", f.api(f.getDeleted))
	m.HandleFunc("GET /services/data/{version}/sobjects/{sobject}/deleted", f.api(f.getDeleted))
	m.HandleFunc("GET /services/data/{version}/sobjects/{sobject}/updated/{$}", f.api(f.getUpdated))
	m.HandleFunc("GET /services/data/{version}/sobjects/{sobject}/updated", f.api(f.getUpdated))
	m.HandleFunc("POST /services/data/{version}/sobjects/{sobject}/{$}", f.api(f.createRecord))
	m.HandleFunc("POST /services/data/{version}/sobjects/{sobject}", f.api(f.createRecord))
	m.HandleFunc("GET /services/data/{version}/sobjects/{sobject}/{id}", f.api(f.retrieve))
	m.HandleFunc("PATCH /services/data/{version}/sobjects/{sobject}/{id}", f.api(f.updateRecord))
	m.HandleFunc("DELETE /services/data/{version}/sobjects/{sobject}/{id}", f.api(f.deleteRecord))
	m.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) { notFound(w) })
	f.mux = m
}

// apiHandler serves one authenticated API request of tenant t.
type apiHandler func(w http.ResponseWriter, r *http.Request, t *tenant)

// api wraps a handler with Salesforce's bearer check, the API version check,
// injected failures and the Sforce-Limit-Info header. The handler runs with
// f.mu held.
func (f *Fake) api(h apiHandler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		defer f.mu.Unlock()
		auth := r.Header.Get("Authorization")
		scheme, tok, _ := strings.Cut(auth, " ")
		if auth != "" && !strings.EqualFold(scheme, "Bearer") && !strings.EqualFold(scheme, "OAuth") {
			writeError(w, http.StatusUnauthorized, "INVALID_AUTH_HEADER", "INVALID_HEADER_TYPE")
			return
		}
		s := f.sessions[strings.TrimSpace(tok)]
		if s != nil && !f.clock().Before(s.expires) {
			delete(f.sessions, strings.TrimSpace(tok))
			s = nil
		}
		if s == nil || f.tenants[s.org] == nil {
			writeError(w, http.StatusUnauthorized, "INVALID_SESSION_ID", "Session expired or invalid")
			return
		}
		t := f.tenants[s.org]
		if v := r.PathValue("version"); v != "" {
			m := versionRE.FindStringSubmatch(v)
			switch {
			case m == nil || atoi(m[1]) > LatestAPIVersion:
				notFound(w)
				return
			case atoi(m[1]) <= LastRetiredAPIVersion:
				// Salesforce's API End-of-Life policy: a retired version
				// answers 410 GONE on every resource.
				writeError(w, http.StatusGone, "GONE", fmt.Sprintf("API version %s is retired and unavailable", v))
				return
			}
		}
		if len(t.fails) > 0 {
			kind := t.fails[0]
			t.fails = t.fails[1:]
			switch kind {
			case FailRateLimit:
				writeError(w, http.StatusForbidden, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.")
				return
			case FailServerError:
				writeError(w, http.StatusInternalServerError, "UNKNOWN_EXCEPTION", "An unexpected error occurred. Please include this ErrorId if you contact support: 1234567890-12345 (-1234567890)")
				return
			}
		}
		if !f.admitLocked(w, t) {
			return
		}
		h(w, r, t)
	}
}

func atoi(s string) int {
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0
	}
	return n
}

// sfTime renders a datetime the way the REST API does.
func sfTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000-0700") }

// renderRecord writes one record with attributes first and then the
// selected fields in the order of the SELECT, as Salesforce does.
func renderRecord(version, sobject string, v map[string]any, fieldList []string) []byte {
	var b bytes.Buffer
	attrs, _ := json.Marshal(map[string]string{"type": sobject, "url": "/services/data/" + version + "/sobjects/" + sobject + "/" + v["Id"].(string)})
	b.WriteString(`{"attributes":`)
	b.Write(attrs)
	for _, name := range fieldList {
		b.WriteByte(',')
		k, _ := json.Marshal(name)
		b.Write(k)
		b.WriteByte(':')
		switch x := v[name].(type) {
		case time.Time:
			s, _ := json.Marshal(sfTime(x))
			b.Write(s)
		default:
			s, err := json.Marshal(x)
			if err != nil {
				s = []byte("null")
			}
			b.Write(s)
		}
	}
	b.WriteByte('}')
	return b.Bytes()
}

// batchSize is the page size for r: the fake's configured size, lowered
// (never raised) by a Sforce-Query-Options batchSize hint (200–2000).
func (f *Fake) batchSize(r *http.Request) int {
	n := f.pageSize
	for _, opt := range strings.Split(r.Header.Get("Sforce-Query-Options"), ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(opt), "=")
		if ok && strings.EqualFold(k, "batchSize") {
			if b, err := strconv.Atoi(v); err == nil {
				b = min(max(b, 200), 2000)
				n = min(n, b)
			}
		}
	}
	return n
}

type queryResponse struct {
	TotalSize      int               `json:"totalSize"`
	Done           bool              `json:"done"`
	NextRecordsURL string            `json:"nextRecordsUrl,omitempty"`
	Records        []json.RawMessage `json:"records"`
}

// query serves GET /services/data/vXX.X/query?q=SOQL: live records, without
// the recycle bin and without archived activities.
func (f *Fake) query(w http.ResponseWriter, r *http.Request, t *tenant) { f.runQuery(w, r, t, false) }

// queryAll serves GET /services/data/vXX.X/queryAll?q=SOQL: like query, plus
// soft-deleted rows (IsDeleted true) and archived Tasks (IsArchived true).
// Its nextRecordsUrl says query, as Salesforce's does.
func (f *Fake) queryAll(w http.ResponseWriter, r *http.Request, t *tenant) { f.runQuery(w, r, t, true) }

func (f *Fake) runQuery(w http.ResponseWriter, r *http.Request, t *tenant, all bool) {
	q := r.URL.Query().Get("q")
	if q == "" {
		writeError(w, http.StatusBadRequest, "MALFORMED_QUERY", "A query string has to be specified")
		return
	}
	parsed, err := parseSOQL(q)
	if err != nil {
		se := err.(*soqlError)
		writeError(w, http.StatusBadRequest, se.Code, se.Message)
		return
	}
	version := r.PathValue("version")
	rows := sortedRecords(t, parsed, all)
	loc := &locator{org: t.orgID, version: version, batch: f.batchSize(r), touched: f.clock()}
	for _, v := range rows {
		loc.rows = append(loc.rows, renderRecord(version, parsed.SObject, v, parsed.Fields))
	}
	f.respondPage(w, loc, "")
}

// respondPage answers the next batch of loc, registering or dropping the
// locator as needed.
func (f *Fake) respondPage(w http.ResponseWriter, loc *locator, id string) {
	end := min(loc.offset+loc.batch, len(loc.rows))
	resp := queryResponse{TotalSize: len(loc.rows), Records: make([]json.RawMessage, 0, end-loc.offset)}
	for _, row := range loc.rows[loc.offset:end] {
		resp.Records = append(resp.Records, row)
	}
	loc.offset = end
	loc.touched = f.clock()
	if end >= len(loc.rows) {
		resp.Done = true
		if id != "" {
			delete(f.locators, id)
		}
	} else {
		if id == "" {
			id = f.newID(locatorPrefix)
			f.locators[id] = loc
		}
		resp.NextRecordsURL = fmt.Sprintf("/services/data/%s/query/%s-%d", loc.version, id, end)
	}
	writeJSON(w, http.StatusOK, resp)
}

// queryMore serves GET /services/data/vXX.X/query/<locator>-<offset>.
func (f *Fake) queryMore(w http.ResponseWriter, r *http.Request, t *tenant) {
	raw := r.PathValue("locator")
	id, off, ok := strings.Cut(raw, "-")
	loc := f.locators[id]
	if !ok || loc == nil || loc.org != t.orgID || strconv.Itoa(loc.offset) != off {
		writeError(w, http.StatusBadRequest, "INVALID_QUERY_LOCATOR", "invalid query locator")
		return
	}
	if f.clock().Sub(loc.touched) > locatorTTL {
		delete(f.locators, id)
		writeError(w, http.StatusBadRequest, "INVALID_QUERY_LOCATOR", "invalid query locator")
		return
	}
	f.respondPage(w, loc, id)
}

// parseReplicationDate reads start/end of getDeleted (ISO 8601 with offset);
// seconds are ignored, as in Salesforce.
func parseReplicationDate(s string) (time.Time, bool) {
	for _, l := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.000-0700", "2006-01-02T15:04:05-0700"} {
		if t, err := time.Parse(l, s); err == nil {
			return t.UTC().Truncate(time.Minute), true
		}
	}
	return time.Time{}, false
}

// getDeleted serves GET /services/data/vXX.X/sobjects/{type}/deleted/?start=&end=.
func (f *Fake) getDeleted(w http.ResponseWriter, r *http.Request, t *tenant) {
	sobject, ok := canonicalSObject(r.PathValue("sobject"))
	if !ok || !replicateable[sobject] {
		notFound(w)
		return
	}
	qs := r.URL.Query()
	if qs.Get("start") == "" || qs.Get("end") == "" {
		writeError(w, http.StatusBadRequest, "MISSING_ARGUMENT", "start and end are both required")
		return
	}
	start, ok1 := parseReplicationDate(qs.Get("start"))
	end, ok2 := parseReplicationDate(qs.Get("end"))
	if !ok1 || !ok2 {
		writeError(w, http.StatusBadRequest, "MALFORMED_QUERY", "start and end must be ISO 8601 dateTimes")
		return
	}
	now := f.clock().Truncate(time.Minute)
	earliest := now.Add(-DeletedRetention)
	if end.After(now) {
		end = now
	}
	if !end.After(start.Add(time.Minute)) {
		writeError(w, http.StatusBadRequest, "INVALID_REPLICATION_DATE", "startDate must chronologically precede endDate by more than one minute")
		return
	}
	if start.Before(earliest) {
		writeError(w, http.StatusBadRequest, "INVALID_REPLICATION_DATE", "startDate is before the earliest date available "+sfTime(earliest))
		return
	}
	type deletedRecord struct {
		ID          string `json:"id"`
		DeletedDate string `json:"deletedDate"`
	}
	resp := struct {
		DeletedRecords        []deletedRecord `json:"deletedRecords"`
		EarliestDateAvailable string          `json:"earliestDateAvailable"`
		LatestDateCovered     string          `json:"latestDateCovered"`
	}{DeletedRecords: []deletedRecord{}, EarliestDateAvailable: sfTime(earliest), LatestDateCovered: sfTime(f.coveredLocked(end))}
	for _, d := range t.deleted[sobject] {
		if !d.at.Before(start) && !d.at.After(end) {
			resp.DeletedRecords = append(resp.DeletedRecords, deletedRecord{ID: d.id, DeletedDate: sfTime(d.at)})
		}
	}
	writeJSON(w, http.StatusOK, resp)
}

// coveredLocked is latestDateCovered for a window ending at end: the fake
// lags coverageLag behind its clock, as Salesforce does while long
// transactions are still open.
func (f *Fake) coveredLocked(end time.Time) time.Time {
	if c := f.clock().Add(-f.coverageLag).Truncate(time.Minute); c.Before(end) {
		return c
	}
	return end
}

// getUpdated serves GET /services/data/vXX.X/sobjects/{type}/updated/?start=&end=
// (ids of live records whose SystemModstamp is in the window; 30 days back).
func (f *Fake) getUpdated(w http.ResponseWriter, r *http.Request, t *tenant) {
	sobject, ok := canonicalSObject(r.PathValue("sobject"))
	if !ok || !replicateable[sobject] {
		notFound(w)
		return
	}
	qs := r.URL.Query()
	start, ok1 := parseReplicationDate(qs.Get("start"))
	end, ok2 := parseReplicationDate(qs.Get("end"))
	if qs.Get("start") == "" || qs.Get("end") == "" {
		writeError(w, http.StatusBadRequest, "MISSING_ARGUMENT", "start and end are both required")
		return
	}
	if !ok1 || !ok2 {
		writeError(w, http.StatusBadRequest, "MALFORMED_QUERY", "start and end must be ISO 8601 dateTimes")
		return
	}
	now := f.clock().Truncate(time.Minute)
	if end.After(now) {
		end = now
	}
	if !end.After(start.Add(time.Minute)) {
		writeError(w, http.StatusBadRequest, "INVALID_REPLICATION_DATE", "startDate must chronologically precede endDate by more than one minute")
		return
	}
	if start.Before(now.Add(-UpdatedRetention)) {
		writeError(w, http.StatusBadRequest, "INVALID_REPLICATION_DATE", "startDate is before the earliest date available "+sfTime(now.Add(-UpdatedRetention)))
		return
	}
	resp := struct {
		IDs               []string `json:"ids"`
		LatestDateCovered string   `json:"latestDateCovered"`
	}{IDs: []string{}, LatestDateCovered: sfTime(f.coveredLocked(end))}
	for id, rec := range t.records[sobject] {
		if at, ok := rec.values["SystemModstamp"].(time.Time); ok && !at.Before(start) && !at.After(end) {
			resp.IDs = append(resp.IDs, id)
		}
	}
	sort.Strings(resp.IDs)
	writeJSON(w, http.StatusOK, resp)
}

// retrieve serves GET /services/data/vXX.X/sobjects/{type}/{id}.
func (f *Fake) retrieve(w http.ResponseWriter, r *http.Request, t *tenant) {
	sobject, ok := canonicalSObject(r.PathValue("sobject"))
	if !ok {
		notFound(w)
		return
	}
	rec := t.records[sobject][r.PathValue("id")]
	if rec == nil {
		notFound(w)
		return
	}
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	_, _ = w.Write(renderRecord(r.PathValue("version"), sobject, rec.values, schema[sobject]))
}

// decodeBody reads a create/update body into field values, rejecting
// unknown or read-only fields with Salesforce's INVALID_FIELD.
func decodeBody(w http.ResponseWriter, r *http.Request, sobject string) (map[string]any, bool) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		writeError(w, http.StatusBadRequest, "JSON_PARSER_ERROR", err.Error())
		return nil, false
	}
	var v map[string]any
	if err := json.Unmarshal(body, &v); err != nil || v == nil {
		writeError(w, http.StatusBadRequest, "JSON_PARSER_ERROR", "Unexpected body: expected a JSON object")
		return nil, false
	}
	out := map[string]any{}
	for k, x := range v {
		field, ok := canonicalField(sobject, k)
		if !ok {
			writeError(w, http.StatusBadRequest, "INVALID_FIELD", fmt.Sprintf("No such column '%s' on sobject of type %s", k, sobject))
			return nil, false
		}
		out[field] = x
	}
	if err := checkFields(sobject, out); err != nil {
		writeError(w, http.StatusBadRequest, "INVALID_FIELD_FOR_INSERT_UPDATE", err.Error())
		return nil, false
	}
	return out, true
}

// createRecord serves POST /services/data/vXX.X/sobjects/{type}/.
func (f *Fake) createRecord(w http.ResponseWriter, r *http.Request, t *tenant) {
	sobject, ok := canonicalSObject(r.PathValue("sobject"))
	if !ok {
		notFound(w)
		return
	}
	v, ok := decodeBody(w, r, sobject)
	if !ok {
		return
	}
	id := f.createLocked(t, sobject, v)
	writeJSON(w, http.StatusCreated, map[string]any{"id": id, "success": true, "errors": []any{}})
}

// updateRecord serves PATCH /services/data/vXX.X/sobjects/{type}/{id}.
func (f *Fake) updateRecord(w http.ResponseWriter, r *http.Request, t *tenant) {
	sobject, ok := canonicalSObject(r.PathValue("sobject"))
	if !ok || t.records[sobject][r.PathValue("id")] == nil {
		notFound(w)
		return
	}
	v, ok := decodeBody(w, r, sobject)
	if !ok {
		return
	}
	rec := t.records[sobject][r.PathValue("id")]
	for k, x := range v {
		rec.values[k] = x
	}
	now := f.clock()
	rec.values["LastModifiedDate"], rec.values["SystemModstamp"], rec.values["LastModifiedById"] = now, now, t.userID
	derive(sobject, rec.values)
	w.WriteHeader(http.StatusNoContent)
}

// deleteRecord serves DELETE /services/data/vXX.X/sobjects/{type}/{id}.
func (f *Fake) deleteRecord(w http.ResponseWriter, r *http.Request, t *tenant) {
	sobject, ok := canonicalSObject(r.PathValue("sobject"))
	id := r.PathValue("id")
	if !ok || t.records[sobject][id] == nil {
		writeError(w, http.StatusNotFound, "ENTITY_IS_DELETED", "entity is deleted")
		return
	}
	f.deleteLocked(t, sobject, id, f.clock())
	w.WriteHeader(http.StatusNoContent)
}

// identity serves the identity URL (GET /id/{orgId}/{userId}).
func (f *Fake) identity(w http.ResponseWriter, r *http.Request, t *tenant) {
	if r.PathValue("org") != t.orgID || r.PathValue("user") != t.userID {
		writeError(w, http.StatusForbidden, "INSUFFICIENT_ACCESS", "Bad_Id")
		return
	}
	u := t.records["User"][t.userID].values
	writeJSON(w, http.StatusOK, map[string]any{
		"id":              f.base(r) + "/id/" + t.orgID + "/" + t.userID,
		"organization_id": t.orgID,
		"user_id":         t.userID,
		"username":        t.username,
		"display_name":    u["Name"],
		"email":           u["Email"],
		"active":          u["IsActive"],
		"urls": map[string]string{
			"rest":  f.base(r) + "/services/data/v{version}/",
			"query": f.base(r) + "/services/data/v{version}/query/",
		},
	})
}

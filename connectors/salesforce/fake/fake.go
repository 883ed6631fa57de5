// Package fake is an in-memory Salesforce for tests and the sandbox command.
// It serves the parts of the REST API the connector uses, on the same paths
// and with the same wire format: the query resource (SOQL subset, query
// locators and nextRecordsUrl paging, Sforce-Query-Options batchSize),
// sobjects/{type}/deleted/ with the 15-day window, sObject retrieve, create,
// update and delete, the identity URL, and the OAuth2 web-server flow
// (authorize auto-approves; token endpoint with PKCE S256 and refresh).
// Errors are Salesforce's JSON arrays of {message, errorCode}.
//
// Tests drive it through a Go API (tenants, records, an injectable clock,
// FailNext). It owns nothing but its memory and must not import the
// connector.
package fake

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"
)

// Defaults of the fake.
const (
	// DefaultPageSize is the query batch size Salesforce uses by default.
	DefaultPageSize = 2000
	// DefaultSessionTTL is how long an access token lives (Salesforce's
	// default session timeout is two hours; expiry is not announced).
	DefaultSessionTTL = 2 * time.Hour
	// DeletedRetention is how far back getDeleted answers (and how long the
	// recycle bin keeps soft-deleted rows for queryAll).
	DeletedRetention = 15 * 24 * time.Hour
	// UpdatedRetention is how far back getUpdated answers.
	UpdatedRetention = 30 * 24 * time.Hour
	// LatestAPIVersion is the newest REST API version the fake serves
	// (the version of Salesforce's current REST docs); a newer one answers 404 NOT_FOUND.
	LatestAPIVersion = 68
	// LastRetiredAPIVersion is the newest retired version: 7.0–30.0 are
	// retired (Summer '25) and answer 410 GONE.
	LastRetiredAPIVersion = 30
	// locatorTTL is how long an idle query locator stays valid.
	locatorTTL = 15 * time.Minute
	codeTTL    = 15 * time.Minute
)

// Failure kinds for FailNext.
const (
	FailRateLimit    = "rate_limit"
	FailServerError  = "server_error"
	FailExpiredToken = "expired_token"
)

// Fake is the in-memory Salesforce. Its zero value is not usable; call New.
type Fake struct {
	mu         sync.Mutex
	now        func() time.Time
	dailyLimit int
	pageSize   int
	sessionTTL time.Duration
	baseURL    string
	clients    map[string]string // client id → secret; empty: accept any
	tenants    map[string]*tenant
	defaultOrg string
	sessions   map[string]*session // access token → session
	refresh    map[string]string   // refresh token → org id
	codes      map[string]*authCode
	locators   map[string]*locator
	// coverageLag is how far getDeleted/getUpdated's latestDateCovered
	// trails the clock (long transactions still open).
	coverageLag time.Duration
	seq         int
	mux         *http.ServeMux
}

type session struct {
	org     string
	expires time.Time
}

type tenant struct {
	orgID    string
	userID   string
	username string
	records  map[string]map[string]*record // sObject → id → record
	// bin is the recycle bin: soft-deleted rows (IsDeleted true), which
	// queryAll still returns.
	bin      map[string]map[string]*record
	deleted  map[string][]deletion
	fails    []string
	apiCalls int
	// window holds the API request times of the last 24 hours and refused
	// counts the requests WithDailyLimit turned away.
	window  []time.Time
	refused int
}

type record struct {
	values map[string]any
}

type deletion struct {
	id string
	at time.Time
}

type locator struct {
	org     string
	version string
	rows    [][]byte
	offset  int
	batch   int
	touched time.Time
}

// Option configures a Fake.
type Option func(*Fake)

// WithClock injects the clock (record times, token and locator expiry,
// deletion window).
func WithClock(now func() time.Time) Option { return func(f *Fake) { f.now = now } }

// WithPageSize sets the query batch size (default 2000), so tests can page
// with few records.
func WithPageSize(n int) Option { return func(f *Fake) { f.pageSize = n } }

// WithSessionTTL sets the access token lifetime.
func WithSessionTTL(d time.Duration) Option { return func(f *Fake) { f.sessionTTL = d } }

// WithClient registers a connected app; once one is registered, the token
// endpoint checks client ids and secrets.
func WithClient(id, secret string) Option { return func(f *Fake) { f.clients[id] = secret } }

// WithBaseURL sets the instance_url and identity host the fake announces;
// by default it is http://<Host header of the token request>.
func WithBaseURL(u string) Option { return func(f *Fake) { f.baseURL = strings.TrimRight(u, "/") } }

// New builds a Fake with one default tenant (org) ready for the authorize
// endpoint.
func New(opts ...Option) *Fake {
	f := &Fake{
		now:        time.Now,
		pageSize:   DefaultPageSize,
		sessionTTL: DefaultSessionTTL,
		clients:    map[string]string{},
		tenants:    map[string]*tenant{},
		sessions:   map[string]*session{},
		refresh:    map[string]string{},
		codes:      map[string]*authCode{},
		locators:   map[string]*locator{},
	}
	for _, o := range opts {
		o(f)
	}
	if f.pageSize <= 0 {
		f.pageSize = DefaultPageSize
	}
	f.defaultOrg = f.NewTenant()
	f.routes()
	return f
}

// ServeHTTP serves the fake's HTTP API.
func (f *Fake) ServeHTTP(w http.ResponseWriter, r *http.Request) { f.mux.ServeHTTP(w, r) }

func (f *Fake) clock() time.Time { return f.now().UTC() }

// DefaultOrg is the org the authorize endpoint connects when no login_hint
// names another.
func (f *Fake) DefaultOrg() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.defaultOrg
}

// NewTenant creates an empty org with one active admin User and returns the
// org id.
func (f *Fake) NewTenant() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	t := &tenant{
		orgID:   f.newID(orgPrefix),
		records: map[string]map[string]*record{},
		deleted: map[string][]deletion{},
		bin:     map[string]map[string]*record{},
	}
	for s := range schema {
		t.records[s] = map[string]*record{}
	}
	f.tenants[t.orgID] = t
	t.username = "admin@" + strings.ToLower(t.orgID) + ".example.com"
	t.userID = f.createLocked(t, "User", map[string]any{
		"Username": t.username, "FirstName": "Ada", "LastName": "Admin", "Email": t.username,
		"IsActive": true, "Alias": "aadmin", "UserType": "Standard", "TimeZoneSidKey": "America/Los_Angeles",
		"LocaleSidKey": "en_US", "EmailEncodingKey": "UTF-8", "LanguageLocaleKey": "en_US",
	})
	return t.orgID
}

// UserID returns the admin user of org.
func (f *Fake) UserID(org string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	if t := f.tenants[org]; t != nil {
		return t.userID
	}
	return ""
}

// Tokens issues an access and a refresh token for org directly (tests that
// skip the authorize redirect).
func (f *Fake) Tokens(org string) (access, refresh string, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.tenants[org] == nil {
		return "", "", fmt.Errorf("fake: no org %s", org)
	}
	access, refresh = f.issueLocked(org, true)
	return access, refresh, nil
}

// issueLocked makes a session (and optionally a refresh token) for org.
func (f *Fake) issueLocked(org string, withRefresh bool) (access, refresh string) {
	access = org + "!" + randomToken(24)
	f.sessions[access] = &session{org: org, expires: f.clock().Add(f.sessionTTL)}
	if withRefresh {
		refresh = "5Aep861" + randomToken(24)
		f.refresh[refresh] = org
	}
	return access, refresh
}

// FailNext makes the next n API requests of org fail with kind:
// "rate_limit" (403 REQUEST_LIMIT_EXCEEDED), "server_error" (500
// UNKNOWN_EXCEPTION). "expired_token" expires every current session of the
// org at once: requests answer 401 INVALID_SESSION_ID until the client
// refreshes its token (n is ignored, as it is for a real expired session).
func (f *Fake) FailNext(org, kind string, n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	t := f.tenants[org]
	if t == nil {
		return
	}
	if kind == FailExpiredToken {
		for tok, s := range f.sessions {
			if s.org == org {
				delete(f.sessions, tok)
			}
		}
		return
	}
	for range n {
		t.fails = append(t.fails, kind)
	}
}

// ErrNotFound is returned by the Go API for unknown orgs, sObjects or ids.
var ErrNotFound = errors.New("fake: not found")

// Create inserts a record of sobject in org with values (field name →
// string, number, bool or nil) and returns its id. System fields (Id,
// CreatedDate, SystemModstamp, …) are set by the fake.
func (f *Fake) Create(org, sobject string, values map[string]any) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	t := f.tenants[org]
	if t == nil || schema[sobject] == nil {
		return "", ErrNotFound
	}
	if err := checkFields(sobject, values); err != nil {
		return "", err
	}
	return f.createLocked(t, sobject, values), nil
}

func checkFields(sobject string, values map[string]any) error {
	for k := range values {
		if !hasField(sobject, k) {
			return fmt.Errorf("fake: no field %s on %s", k, sobject)
		}
		switch k {
		case "Id", "CreatedDate", "CreatedById", "LastModifiedDate", "LastModifiedById", "SystemModstamp", "IsDeleted":
			return fmt.Errorf("fake: field %s is not writeable", k)
		}
	}
	return nil
}

func (f *Fake) createLocked(t *tenant, sobject string, values map[string]any) string {
	now := f.clock()
	id := f.newID(keyPrefixes[sobject])
	v := map[string]any{}
	for k, x := range values {
		v[k] = x
	}
	v["Id"] = id
	v["CreatedDate"] = now
	v["LastModifiedDate"] = now
	v["SystemModstamp"] = now
	// Checkbox fields are never null in Salesforce.
	for _, field := range schema[sobject] {
		if isCheckbox(field) && v[field] == nil {
			v[field] = false
		}
	}
	owner := t.userID
	if owner == "" {
		owner = id // the first User owns itself
	}
	v["CreatedById"] = owner
	v["LastModifiedById"] = owner
	if hasField(sobject, "OwnerId") && v["OwnerId"] == nil {
		v["OwnerId"] = owner
	}
	derive(sobject, v)
	t.records[sobject][id] = &record{values: v}
	return id
}

// isCheckbox reports whether a standard field is a boolean (checkbox).
func isCheckbox(field string) bool {
	return strings.HasPrefix(field, "Is") || strings.HasPrefix(field, "Has") || field == "DoNotCall"
}

// Update changes fields of a record and bumps LastModifiedDate and
// SystemModstamp.
func (f *Fake) Update(org, sobject, id string, values map[string]any) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	t := f.tenants[org]
	if t == nil || t.records[sobject] == nil || t.records[sobject][id] == nil {
		return ErrNotFound
	}
	if err := checkFields(sobject, values); err != nil {
		return err
	}
	rec := t.records[sobject][id]
	for k, x := range values {
		rec.values[k] = x
	}
	now := f.clock()
	rec.values["LastModifiedDate"] = now
	rec.values["SystemModstamp"] = now
	rec.values["LastModifiedById"] = t.userID
	derive(sobject, rec.values)
	return nil
}

// Delete removes a record and writes it to the delete log that getDeleted
// reads. (Real orgs cannot delete Users or OpportunityStages through the
// API; the fake allows it so tests can exercise full-scan deletion.)
func (f *Fake) Delete(org, sobject, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	t := f.tenants[org]
	if t == nil || t.records[sobject] == nil || t.records[sobject][id] == nil {
		return ErrNotFound
	}
	f.deleteLocked(t, sobject, id, f.clock())
	return nil
}

// DeleteAt deletes a record whose deletion is dated at, earlier than now: a
// delete done in a long transaction that commits only now, so getDeleted
// lists it under an earlier deletedDate than windows already read.
func (f *Fake) DeleteAt(org, sobject, id string, at time.Time) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	t := f.tenants[org]
	if t == nil || t.records[sobject] == nil || t.records[sobject][id] == nil {
		return ErrNotFound
	}
	f.deleteLocked(t, sobject, id, at.UTC())
	return nil
}

// deleteLocked moves a record to the recycle bin (IsDeleted true,
// SystemModstamp bumped) and writes it to the delete log getDeleted reads.
func (f *Fake) deleteLocked(t *tenant, sobject, id string, at time.Time) {
	rec := t.records[sobject][id]
	delete(t.records[sobject], id)
	if hasField(sobject, "IsDeleted") {
		rec.values["IsDeleted"] = true
		rec.values["SystemModstamp"] = f.clock()
		if t.bin[sobject] == nil {
			t.bin[sobject] = map[string]*record{}
		}
		t.bin[sobject][id] = rec
	}
	t.deleted[sobject] = append(t.deleted[sobject], deletion{id: id, at: at})
}

// Archive archives an activity (Task), as Salesforce's archival job does
// with old closed activities: query no longer returns it, queryAll does,
// with IsArchived true. It is not a deletion.
func (f *Fake) Archive(org, sobject, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	t := f.tenants[org]
	if t == nil || !hasField(sobject, "IsArchived") || t.records[sobject][id] == nil {
		return ErrNotFound
	}
	t.records[sobject][id].values["IsArchived"] = true
	return nil
}

// SetCoverageLag makes getDeleted and getUpdated report a latestDateCovered
// d behind the clock (capped at the window end), as Salesforce does while
// transactions are open.
func (f *Fake) SetCoverageLag(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.coverageLag = d
}

// Get returns a copy of a record's values.
func (f *Fake) Get(org, sobject, id string) (map[string]any, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	t := f.tenants[org]
	if t == nil || t.records[sobject] == nil || t.records[sobject][id] == nil {
		return nil, false
	}
	out := map[string]any{}
	for k, v := range t.records[sobject][id].values {
		out[k] = v
	}
	return out, true
}

// standardStages are the default opportunity stages of a new org:
// label → sort order, probability, closed, won, forecast category.
var standardStages = []struct {
	Label    string
	Prob     float64
	Closed   bool
	Won      bool
	Forecast string
}{
	{"Prospecting", 10, false, false, "Pipeline"},
	{"Qualification", 10, false, false, "Pipeline"},
	{"Needs Analysis", 20, false, false, "Pipeline"},
	{"Value Proposition", 50, false, false, "Pipeline"},
	{"Id. Decision Makers", 60, false, false, "Pipeline"},
	{"Perception Analysis", 70, false, false, "Pipeline"},
	{"Proposal/Price Quote", 75, false, false, "Pipeline"},
	{"Negotiation/Review", 90, false, false, "Pipeline"},
	{"Closed Won", 100, true, true, "Closed"},
	{"Closed Lost", 0, true, false, "Omitted"},
}

// derive fills formula-like fields the way Salesforce does: Name of people,
// an Opportunity's IsClosed/IsWon/ForecastCategory from its stage.
func derive(sobject string, v map[string]any) {
	switch sobject {
	case "Contact", "Lead", "User":
		first, _ := v["FirstName"].(string)
		last, _ := v["LastName"].(string)
		v["Name"] = strings.TrimSpace(first + " " + last)
	case "Opportunity":
		stage, _ := v["StageName"].(string)
		for _, s := range standardStages {
			if s.Label == stage {
				v["IsClosed"], v["IsWon"], v["ForecastCategory"] = s.Closed, s.Won, s.Forecast
				if v["Probability"] == nil {
					v["Probability"] = s.Prob
				}
			}
		}
		if v["IsClosed"] == nil {
			v["IsClosed"], v["IsWon"] = false, false
		}
		if amt, ok := toFloat(v["Amount"]); ok {
			if p, ok := toFloat(v["Probability"]); ok {
				v["ExpectedRevenue"] = amt * p / 100
			}
		}
	}
}

func toFloat(x any) (float64, bool) {
	switch n := x.(type) {
	case float64:
		return n, true
	case int:
		return float64(n), true
	}
	return 0, false
}

// sortedRecords returns the records of sobject in org matching q, ordered
// as q asks (ties broken by Id); all adds what queryAll sees (the recycle
// bin and archived activities).
func sortedRecords(t *tenant, q *soqlQuery, all bool) []map[string]any {
	var rows []map[string]any
	add := func(r *record) {
		if q.Where != nil && !matches(r.values[q.Where.Field], q.Where) {
			return
		}
		rows = append(rows, r.values)
	}
	for _, r := range t.records[q.SObject] {
		if archived, _ := r.values["IsArchived"].(bool); archived && !all {
			continue // query hides archived activities
		}
		add(r)
	}
	if all {
		for _, r := range t.bin[q.SObject] {
			add(r)
		}
	}
	sort.SliceStable(rows, func(i, j int) bool {
		for _, o := range q.OrderBy {
			c := compare(rows[i][o.Field], rows[j][o.Field])
			if c != 0 {
				return (c < 0) != o.Desc
			}
		}
		return rows[i]["Id"].(string) < rows[j]["Id"].(string)
	})
	if q.Limit > 0 && len(rows) > q.Limit {
		rows = rows[:q.Limit]
	}
	return rows
}

func matches(v any, w *soqlFilter) bool {
	t, ok := v.(time.Time)
	if !ok {
		return false
	}
	switch w.Op {
	case ">=":
		return !t.Before(w.Value)
	case ">":
		return t.After(w.Value)
	case "<=":
		return !t.After(w.Value)
	case "<":
		return t.Before(w.Value)
	default:
		return t.Equal(w.Value)
	}
}

// compare orders two field values; nulls first, as Salesforce's default.
func compare(a, b any) int {
	switch {
	case a == nil && b == nil:
		return 0
	case a == nil:
		return -1
	case b == nil:
		return 1
	}
	switch x := a.(type) {
	case time.Time:
		if y, ok := b.(time.Time); ok {
			return x.Compare(y)
		}
	case string:
		if y, ok := b.(string); ok {
			return strings.Compare(x, y)
		}
	case bool:
		if y, ok := b.(bool); ok && x != y {
			if !x {
				return -1
			}
			return 1
		}
		return 0
	}
	if x, ok := toFloat(a); ok {
		if y, ok := toFloat(b); ok {
			switch {
			case x < y:
				return -1
			case x > y:
				return 1
			}
			return 0
		}
	}
	return strings.Compare(fmt.Sprint(a), fmt.Sprint(b))
}

// ListenAndServe runs a fake with a seeded default org on addr until ctx
// ends (tributary sandbox --provider salesforce --listen 127.0.0.1:9101).
// It prints nothing; the org id and a ready access token are returned
// through the ready callback when non-nil.
func ListenAndServe(ctx context.Context, addr string, ready func(org, accessToken, baseURL string)) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	base := "http://" + ln.Addr().String()
	f := New(WithBaseURL(base))
	org := f.DefaultOrg()
	if err := f.Seed(org); err != nil {
		ln.Close()
		return err
	}
	access, _, _ := f.Tokens(org)
	if ready != nil {
		ready(org, access, base)
	}
	srv := &http.Server{Handler: f, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdown)
	}()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

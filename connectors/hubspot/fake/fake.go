// Package fake is an in-memory fake of the HubSpot APIs the hubspot connector
// uses: OAuth2 (authorize; the 2026-03 token, introspect and revoke
// endpoints; the v1 endpoints until their 2027-02-16 sunset, 410 after), CRM v3 objects (list,
// archived list, search, batch read, create/update/archive), deal pipelines,
// owners, and app webhooks (v3-signed arrays of thin notices). Paths, query
// parameters, paging, auth checks, error bodies and payload shapes follow
// HubSpot's public docs and the fixtures in ../testdata.
//
// Tests drive it through its Go API (portals, records, clock, FailNext,
// Webhooks); `tributary sandbox --provider hubspot` serves it with
// ListenAndServe. It owns nothing but its memory.
package fake

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/tributary/tributary/connectors"
)

// Defaults of a fake app.
const (
	DefaultClientID     = "fake-hubspot-client-id"
	DefaultClientSecret = "fake-hubspot-client-secret"
	DefaultAppID        = 1160452
	// DefaultWebhookURL is the target URL signed into collected webhooks when
	// no target is configured.
	DefaultWebhookURL = "https://tributary.example.com/inbound/hubspot"
	// TokenLifetime is how long an access token lives (HubSpot: 30 minutes).
	TokenLifetime = 30 * time.Minute
	// SearchResultCap is HubSpot's limit on after+limit of one search query.
	SearchResultCap = 10000
)

// Start is the fake clock's initial time.
var Start = time.Date(2025, 11, 3, 9, 0, 0, 0, time.UTC)

// objectTypes are the CRM object types the fake serves, with their
// objectTypeId, legacy webhook prefix (none for notes and tasks), and the
// last-modified / created property names.
var objectTypes = map[string]struct {
	typeID, prefix, modified, created, label string
}{
	"contacts":  {"0-1", "contact", "lastmodifieddate", "createdate", "CONTACT"},
	"companies": {"0-2", "company", "hs_lastmodifieddate", "createdate", "COMPANY"},
	"deals":     {"0-3", "deal", "hs_lastmodifieddate", "createdate", "DEAL"},
	"notes":     {"0-46", "", "hs_lastmodifieddate", "hs_createdate", "NOTE"},
	"tasks":     {"0-27", "", "hs_lastmodifieddate", "hs_createdate", "TASK"},
}

// Server is the fake. It is an http.Handler; all state is in memory behind mu.
type Server struct {
	mu           sync.Mutex
	clientID     string
	clientSecret string
	appID        int64
	clock        func() time.Time
	offset       time.Duration
	searchCap    int

	nextID      int64
	nextEventID int64
	portals     map[int64]*portal
	portalOrder []int64
	tokens      map[string]*token
	refresh     map[string]int64
	codes       map[string]*authCode
	subIDs      map[string]int64
	revoked     []string
	legacyCalls int
	target      string
	httpClient  *http.Client
	mux         *http.ServeMux
	limits      *limits
}

type portal struct {
	id      int64
	domain  string
	user    string
	userID  int64
	objects map[string]map[string]*object
	pipes   []*pipeline
	owners  map[string]*ownerRec
	fail    []string
	outbox  []*connectors.InboundRequest
}

type object struct {
	id         string
	props      map[string]string
	createdAt  time.Time
	updatedAt  time.Time
	archived   bool
	archivedAt time.Time
	assoc      []assocEdge
}

type pipeline struct {
	id, label    string
	displayOrder int
	createdAt    time.Time
	updatedAt    time.Time
	stages       []*stage
}

type stage struct {
	id, label    string
	displayOrder int
	metadata     map[string]string
	createdAt    time.Time
	updatedAt    time.Time
	archived     bool
	archivedAt   time.Time
}

type ownerRec struct {
	id                  string
	email, first, last  string
	userID              int64
	createdAt, updateAt time.Time
	archived            bool
}

type token struct {
	portal  int64
	expires time.Time
	scopes  []string
	// refresh is the refresh token the access token was issued from.
	refresh string
}

type authCode struct {
	portal            int64
	redirectURI       string
	challenge, method string
	expires           time.Time
	scopes            []string
}

// Option configures a Server.
type Option func(*Server)

// WithClient sets the app's client id and secret (the secret also signs webhooks).
func WithClient(id, secret string) Option {
	return func(s *Server) { s.clientID, s.clientSecret = id, secret }
}

// WithClock replaces the fake's clock (default: a fixed clock at Start that
// only Advance moves).
func WithClock(now func() time.Time) Option { return func(s *Server) { s.clock = now } }

// WithSearchCap lowers the search API's 10,000-result cap (tests).
func WithSearchCap(n int) Option { return func(s *Server) { s.searchCap = n } }

// WithHTTPClient sets the client used to POST webhooks to the target URL.
func WithHTTPClient(hc *http.Client) Option { return func(s *Server) { s.httpClient = hc } }

// New builds an empty fake.
func New(opts ...Option) *Server {
	s := &Server{
		clientID:     DefaultClientID,
		clientSecret: DefaultClientSecret,
		appID:        DefaultAppID,
		clock:        func() time.Time { return Start },
		searchCap:    SearchResultCap,
		nextID:       1000,
		nextEventID:  100,
		portals:      map[int64]*portal{},
		tokens:       map[string]*token{},
		refresh:      map[string]int64{},
		codes:        map[string]*authCode{},
		subIDs:       map[string]int64{},
		httpClient:   &http.Client{Timeout: 10 * time.Second},
	}
	for _, o := range opts {
		o(s)
	}
	s.routes()
	return s
}

// ServeHTTP serves the fake API.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// Now returns the fake's current time.
func (s *Server) Now() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.nowLocked()
}

func (s *Server) nowLocked() time.Time { return s.clock().Add(s.offset).UTC() }

// Advance moves the fake clock forward.
func (s *Server) Advance(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.offset += d
}

// ClientID returns the app's client id.
func (s *Server) ClientID() string { return s.clientID }

// ClientSecret returns the app's client secret.
func (s *Server) ClientSecret() string { return s.clientSecret }

// AppID returns the app id carried by webhook notices.
func (s *Server) AppID() int64 { return s.appID }

// CreatePortal makes a new, empty HubSpot account (with the default deal
// pipeline every account has) and returns its portal (hub) id.
func (s *Server) CreatePortal() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.createPortalLocked(0)
}

func (s *Server) createPortalLocked(id int64) int64 {
	if id == 0 {
		id = 62515 + int64(len(s.portalOrder))*1000 + 1
		for s.portals[id] != nil {
			id++
		}
	}
	now := s.nowLocked()
	p := &portal{
		id: id, domain: fmt.Sprintf("portal-%d.hubspot.com", id), user: fmt.Sprintf("admin@portal-%d.example.com", id),
		userID: 9000000 + id, objects: map[string]map[string]*object{}, owners: map[string]*ownerRec{},
	}
	for t := range objectTypes {
		p.objects[t] = map[string]*object{}
	}
	def := &pipeline{id: "default", label: "Sales Pipeline", createdAt: now, updatedAt: now}
	for i, st := range []struct {
		id, label, prob, closed string
	}{
		{"appointmentscheduled", "Appointment Scheduled", "0.2", "false"},
		{"qualifiedtobuy", "Qualified To Buy", "0.4", "false"},
		{"presentationscheduled", "Presentation Scheduled", "0.6", "false"},
		{"decisionmakerboughtin", "Decision Maker Bought-In", "0.8", "false"},
		{"contractsent", "Contract Sent", "0.9", "false"},
		{"closedwon", "Closed Won", "1.0", "true"},
		{"closedlost", "Closed Lost", "0.0", "true"},
	} {
		def.stages = append(def.stages, &stage{id: st.id, label: st.label, displayOrder: i,
			metadata: map[string]string{"isClosed": st.closed, "probability": st.prob}, createdAt: now, updatedAt: now})
	}
	p.pipes = []*pipeline{def}
	s.portals[id] = p
	s.portalOrder = append(s.portalOrder, id)
	return id
}

// Token is an issued OAuth token pair.
type Token struct {
	AccessToken  string
	RefreshToken string
	Expiry       time.Time
}

// IssueToken issues an access and refresh token for a portal, as the token
// endpoint would after an authorization.
func (s *Server) IssueToken(portalID int64) (Token, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.portals[portalID] == nil {
		return Token{}, fmt.Errorf("fake hubspot: no portal %d", portalID)
	}
	return s.issueLocked(portalID, nil), nil
}

func (s *Server) issueLocked(portalID int64, scopes []string) Token {
	at := "CN" + randHex(24)
	rt := "na1-" + randHex(16)
	exp := s.nowLocked().Add(TokenLifetime)
	s.tokens[at] = &token{portal: portalID, expires: exp, scopes: scopes, refresh: rt}
	s.refresh[rt] = portalID
	return Token{AccessToken: at, RefreshToken: rt, Expiry: exp}
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// FailNext makes the next n API requests of the portal fail with kind:
// "rate_limit" (429), "server_error" (502), or "expired_token" (401
// EXPIRED_AUTHENTICATION).
func (s *Server) FailNext(portalID int64, kind string, n int) error {
	switch kind {
	case "rate_limit", "server_error", "expired_token":
	default:
		return fmt.Errorf("fake hubspot: unknown failure kind %q", kind)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.portals[portalID]
	if p == nil {
		return fmt.Errorf("fake hubspot: no portal %d", portalID)
	}
	for range n {
		p.fail = append(p.fail, kind)
	}
	return nil
}

// SetWebhookTarget sets the app's webhook target URL: every later change is
// also POSTed there, signed. "" stops posting (requests are still collected).
func (s *Server) SetWebhookTarget(url string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.target = url
}

// Webhooks returns, and forgets, the signed webhook requests produced for a
// portal since the last call.
func (s *Server) Webhooks(portalID int64) []*connectors.InboundRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.portals[portalID]
	if p == nil {
		return nil
	}
	out := p.outbox
	p.outbox = nil
	return out
}

func (s *Server) portal(id int64) (*portal, error) {
	p := s.portals[id]
	if p == nil {
		return nil, fmt.Errorf("fake hubspot: no portal %d", id)
	}
	return p, nil
}

func (s *Server) newIDLocked() string {
	s.nextID++
	return strconv.FormatInt(s.nextID, 10)
}

func formatTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z07:00") }

// Create makes a CRM record of objectType ("contacts", "companies", "deals",
// "notes", "tasks") with properties and returns its id.
func (s *Server) Create(portalID int64, objectType string, props map[string]string) (string, error) {
	s.mu.Lock()
	p, err := s.portal(portalID)
	if err != nil {
		s.mu.Unlock()
		return "", err
	}
	o, req, err := s.createLocked(p, objectType, props)
	target := s.target
	s.mu.Unlock()
	if err != nil {
		return "", err
	}
	s.deliver(req, target)
	return o.id, nil
}

func (s *Server) createLocked(p *portal, objectType string, props map[string]string) (*object, []*connectors.InboundRequest, error) {
	ot, ok := objectTypes[objectType]
	if !ok {
		return nil, nil, fmt.Errorf("fake hubspot: unknown object type %q", objectType)
	}
	now := s.nowLocked()
	o := &object{id: s.newIDLocked(), props: map[string]string{}, createdAt: now, updatedAt: now}
	for k, v := range props {
		o.props[k] = v
	}
	o.props["hs_object_id"] = o.id
	o.props[ot.created] = formatTime(now)
	o.props[ot.modified] = formatTime(now)
	p.objects[objectType][o.id] = o
	var req []*connectors.InboundRequest
	if ot.prefix != "" {
		req = s.enqueueLocked(p, []notice{s.noticeLocked(p, ot.prefix+".creation", "", o.id, "", "")})
	}
	return o, req, nil
}

// Update changes properties of a live record; only changed values bump the
// modification time and produce propertyChange notices.
func (s *Server) Update(portalID int64, objectType, id string, props map[string]string) error {
	s.mu.Lock()
	p, err := s.portal(portalID)
	if err != nil {
		s.mu.Unlock()
		return err
	}
	_, req, err := s.updateLocked(p, objectType, id, props)
	target := s.target
	s.mu.Unlock()
	if err != nil {
		return err
	}
	s.deliver(req, target)
	return nil
}

func (s *Server) updateLocked(p *portal, objectType, id string, props map[string]string) (*object, []*connectors.InboundRequest, error) {
	ot, ok := objectTypes[objectType]
	if !ok {
		return nil, nil, fmt.Errorf("fake hubspot: unknown object type %q", objectType)
	}
	o := p.objects[objectType][id]
	if o == nil || o.archived {
		return nil, nil, errNotFound
	}
	now := s.nowLocked()
	var ns []notice
	changed := false
	for _, k := range slices.Sorted(maps.Keys(props)) {
		v := props[k]
		if k == "hs_object_id" || k == ot.modified || k == ot.created || o.props[k] == v {
			continue
		}
		o.props[k] = v
		changed = true
		if ot.prefix != "" {
			ns = append(ns, s.noticeLocked(p, ot.prefix+".propertyChange", k, o.id, v, ""))
		}
	}
	if !changed {
		return o, nil, nil
	}
	o.updatedAt = now
	o.props[ot.modified] = formatTime(now)
	var req []*connectors.InboundRequest
	if len(ns) > 0 {
		req = s.enqueueLocked(p, ns)
	}
	return o, req, nil
}

// Delete archives a record (HubSpot's DELETE), as the UI's delete does.
func (s *Server) Delete(portalID int64, objectType, id string) error {
	s.mu.Lock()
	p, err := s.portal(portalID)
	if err != nil {
		s.mu.Unlock()
		return err
	}
	req, err := s.deleteLocked(p, objectType, id)
	target := s.target
	s.mu.Unlock()
	if err != nil {
		return err
	}
	s.deliver(req, target)
	return nil
}

func (s *Server) deleteLocked(p *portal, objectType, id string) ([]*connectors.InboundRequest, error) {
	ot, ok := objectTypes[objectType]
	if !ok {
		return nil, fmt.Errorf("fake hubspot: unknown object type %q", objectType)
	}
	o := p.objects[objectType][id]
	if o == nil || o.archived {
		return nil, errNotFound
	}
	now := s.nowLocked()
	o.archived, o.archivedAt, o.updatedAt = true, now, now
	o.props[ot.modified] = formatTime(now)
	if ot.prefix == "" {
		return nil, nil
	}
	return s.enqueueLocked(p, []notice{s.noticeLocked(p, ot.prefix+".deletion", "", o.id, "", "")}), nil
}

var errNotFound = fmt.Errorf("fake hubspot: object not found")

// CreateOwner adds a user (owner) to the portal and returns its owner id.
func (s *Server) CreateOwner(portalID int64, email, first, last string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, err := s.portal(portalID)
	if err != nil {
		return "", err
	}
	now := s.nowLocked()
	id := s.newIDLocked()
	p.owners[id] = &ownerRec{id: id, email: email, first: first, last: last, userID: s.nextID + 5000000, createdAt: now, updateAt: now}
	return id, nil
}

// UpdateOwner changes an owner's names and email (empty keeps a value).
func (s *Server) UpdateOwner(portalID int64, id, email, first, last string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, err := s.portal(portalID)
	if err != nil {
		return err
	}
	o := p.owners[id]
	if o == nil || o.archived {
		return errNotFound
	}
	if email != "" {
		o.email = email
	}
	if first != "" {
		o.first = first
	}
	if last != "" {
		o.last = last
	}
	o.updateAt = s.nowLocked()
	return nil
}

// DeleteOwner deactivates an owner: it moves to the archived listing.
func (s *Server) DeleteOwner(portalID int64, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, err := s.portal(portalID)
	if err != nil {
		return err
	}
	o := p.owners[id]
	if o == nil || o.archived {
		return errNotFound
	}
	o.archived, o.updateAt = true, s.nowLocked()
	return nil
}

// CreateStage adds a stage to a deal pipeline ("default" exists in every
// portal) and returns its id.
func (s *Server) CreateStage(portalID int64, pipelineID, label string, probability float64, closed bool) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, err := s.portal(portalID)
	if err != nil {
		return "", err
	}
	for _, pl := range p.pipes {
		if pl.id != pipelineID {
			continue
		}
		now := s.nowLocked()
		st := &stage{id: s.newIDLocked(), label: label, displayOrder: len(pl.stages), createdAt: now, updatedAt: now,
			metadata: map[string]string{"isClosed": strconv.FormatBool(closed), "probability": strconv.FormatFloat(probability, 'f', 1, 64)}}
		pl.stages = append(pl.stages, st)
		pl.updatedAt = now
		return st.id, nil
	}
	return "", fmt.Errorf("fake hubspot: no pipeline %q", pipelineID)
}

func (s *Server) stageLocked(p *portal, id string) (*pipeline, *stage) {
	for _, pl := range p.pipes {
		for _, st := range pl.stages {
			if st.id == id && !st.archived {
				return pl, st
			}
		}
	}
	return nil, nil
}

// UpdateStage renames a stage.
func (s *Server) UpdateStage(portalID int64, id, label string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, err := s.portal(portalID)
	if err != nil {
		return err
	}
	pl, st := s.stageLocked(p, id)
	if st == nil {
		return errNotFound
	}
	now := s.nowLocked()
	st.label, st.updatedAt, pl.updatedAt = label, now, now
	return nil
}

// DeleteStage archives a stage; it disappears from the pipelines listing.
func (s *Server) DeleteStage(portalID int64, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, err := s.portal(portalID)
	if err != nil {
		return err
	}
	pl, st := s.stageLocked(p, id)
	if st == nil {
		return errNotFound
	}
	now := s.nowLocked()
	st.archived, st.archivedAt, st.updatedAt, pl.updatedAt = true, now, now, now
	return nil
}

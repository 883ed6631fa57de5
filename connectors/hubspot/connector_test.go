package hubspot_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"

	"github.com/tributary/tributary/connectors"
	"github.com/tributary/tributary/connectors/conformance"
	"github.com/tributary/tributary/connectors/hubspot"
	"github.com/tributary/tributary/connectors/hubspot/fake"
	"github.com/tributary/tributary/models"
)

func TestInfo(t *testing.T) {
	info := hubspot.New(connectors.AppConfig{}).Info()
	require.Equal(t, "hubspot", info.Name)
	require.Equal(t, models.CategoryCRM, info.Category)
	require.Equal(t, connectors.AuthOAuth2, info.Auth)
	require.ElementsMatch(t, []string{connectors.CaptureWebhook, connectors.CapturePolling}, info.Capture)
	for i, o := range info.Objects {
		require.Equal(t, models.TopicFor(o), info.Topics[i])
	}
	require.Contains(t, info.Scopes, "crm.objects.contacts.read")
	cfg := hubspot.New(connectors.AppConfig{}).OAuthConfig("https://t.example/oauth/callback", nil)
	require.Equal(t, "https://app.hubspot.com/oauth/authorize", cfg.Endpoint.AuthURL)
	require.Equal(t, "https://api.hubapi.com/oauth/2026-03/token", cfg.Endpoint.TokenURL)
}

func TestOAuthFlow(t *testing.T) {
	b := setup(t)
	ctx := t.Context()
	cfg := b.conn.OAuthConfig("https://tributary.example.com/oauth/callback", nil)
	verifier := oauth2.GenerateVerifier()
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

	authorize := func() string {
		resp, err := noRedirect.Get(cfg.AuthCodeURL("st4te", oauth2.S256ChallengeOption(verifier)))
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusFound, resp.StatusCode)
		loc, err := url.Parse(resp.Header.Get("Location"))
		require.NoError(t, err)
		require.Equal(t, "tributary.example.com", loc.Host)
		require.Equal(t, "st4te", loc.Query().Get("state"))
		require.NotEmpty(t, loc.Query().Get("code"))
		return loc.Query().Get("code")
	}

	// A wrong PKCE verifier is refused.
	_, err := cfg.Exchange(ctx, authorize(), oauth2.VerifierOption(oauth2.GenerateVerifier()))
	require.ErrorContains(t, err, "invalid_grant")

	code := authorize()
	tok, err := cfg.Exchange(ctx, code, oauth2.VerifierOption(verifier))
	require.NoError(t, err)
	require.NotEmpty(t, tok.AccessToken)
	require.NotEmpty(t, tok.RefreshToken)
	require.WithinDuration(t, time.Now().Add(fake.TokenLifetime), tok.Expiry, time.Minute)
	_, err = cfg.Exchange(ctx, code, oauth2.VerifierOption(verifier))
	require.Error(t, err, "a code is used once")

	ext, meta, err := b.conn.Identify(ctx, tok, nil)
	require.NoError(t, err)
	_, err = strconv.ParseInt(ext, 10, 64)
	require.NoError(t, err)
	require.Equal(t, ext, meta["hubId"])
	require.NotEmpty(t, meta["hubDomain"])
	require.NotEmpty(t, meta["user"])
	require.Contains(t, meta["scopes"], "crm.objects.contacts.read")

	// Refresh: a new access token, the same refresh token.
	tok.Expiry = time.Unix(1, 0)
	nt, err := cfg.TokenSource(ctx, tok).Token()
	require.NoError(t, err)
	require.NotEqual(t, tok.AccessToken, nt.AccessToken)
	require.Equal(t, tok.RefreshToken, nt.RefreshToken)
	ext2, _, err := b.conn.Identify(ctx, nt, nil)
	require.NoError(t, err)
	require.Equal(t, ext, ext2)

	_, err = cfg.TokenSource(ctx, &oauth2.Token{RefreshToken: "nope", Expiry: time.Unix(1, 0)}).Token()
	require.ErrorContains(t, err, "invalid_grant")
	_, _, err = b.conn.Identify(ctx, &oauth2.Token{AccessToken: "unknown"}, nil)
	require.ErrorIs(t, err, connectors.ErrUnauthorized, "an inactive token does not identify")
}

// TestOAuthAfterV1Sunset runs the whole token life on a fake whose clock is
// past HubSpot's v1 OAuth sunset (2027-02-16), where every v1 endpoint
// answers 410: connect, identify, refresh and revoke on disconnect all work,
// and the fake saw no v1 call at all.
func TestOAuthAfterV1Sunset(t *testing.T) {
	b := setup(t)
	b.fake.Advance(fake.LegacyOAuthSunset.Sub(b.fake.Now()) + time.Hour)
	ctx := t.Context()

	// The fake answers v1 as HubSpot will after the sunset.
	resp, err := http.PostForm(b.srv.URL+"/oauth/v1/token", url.Values{"grant_type": {"refresh_token"}})
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusGone, resp.StatusCode)
	require.Equal(t, 1, b.fake.LegacyOAuthCalls())

	cfg := b.conn.OAuthConfig("https://tributary.example.com/oauth/callback", nil)
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err = noRedirect.Get(cfg.AuthCodeURL("s"))
	require.NoError(t, err)
	resp.Body.Close()
	loc, err := url.Parse(resp.Header.Get("Location"))
	require.NoError(t, err)
	tok, err := cfg.Exchange(ctx, loc.Query().Get("code"))
	require.NoError(t, err)
	ext, _, err := b.conn.Identify(ctx, tok, nil)
	require.NoError(t, err)
	tok.Expiry = time.Unix(1, 0)
	nt, err := cfg.TokenSource(ctx, tok).Token()
	require.NoError(t, err)
	require.Equal(t, tok.RefreshToken, nt.RefreshToken)

	// Disconnect revokes the refresh token: refreshing fails afterwards and
	// the access token issued from it no longer introspects as active.
	conn := &connectors.Conn{ID: "con_1", ExternalID: ext, Credentials: map[string]string{"refresh_token": tok.RefreshToken}}
	require.NoError(t, b.conn.Unsubscribe(ctx, conn))
	require.Equal(t, []string{tok.RefreshToken}, b.fake.Revoked())
	_, err = cfg.TokenSource(ctx, &oauth2.Token{RefreshToken: tok.RefreshToken, Expiry: time.Unix(1, 0)}).Token()
	require.ErrorContains(t, err, "invalid_grant")
	_, _, err = b.conn.Identify(ctx, nt, nil)
	require.ErrorIs(t, err, connectors.ErrUnauthorized)

	require.Equal(t, 1, b.fake.LegacyOAuthCalls(), "nothing but the probe above called a v1 OAuth endpoint")
}

// TestOAuthErrorsAreRFC6749 checks the token endpoints' error bodies.
func TestOAuthErrorsAreRFC6749(t *testing.T) {
	b := setup(t)
	for _, tc := range []struct {
		name   string
		form   url.Values
		status int
		code   string
	}{
		{"bad client", url.Values{"client_id": {"x"}, "grant_type": {"refresh_token"}}, http.StatusUnauthorized, "invalid_client"},
		{"bad refresh", url.Values{"client_id": {b.fake.ClientID()}, "client_secret": {b.fake.ClientSecret()}, "grant_type": {"refresh_token"}, "refresh_token": {"nope"}}, http.StatusBadRequest, "invalid_grant"},
		{"bad grant", url.Values{"client_id": {b.fake.ClientID()}, "client_secret": {b.fake.ClientSecret()}, "grant_type": {"password"}}, http.StatusBadRequest, "unsupported_grant_type"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := http.PostForm(b.srv.URL+fake.TokenPath, tc.form)
			require.NoError(t, err)
			defer resp.Body.Close()
			require.Equal(t, tc.status, resp.StatusCode)
			var body map[string]any
			require.NoError(t, json.NewDecoder(resp.Body).Decode(&body))
			require.Equal(t, tc.code, body["error"])
			require.NotEmpty(t, body["error_description"])
		})
	}
}

func listAll(t *testing.T, b *bundle, c *connectors.Conn, req connectors.ListRequest) ([]models.Record, []string, error) {
	t.Helper()
	var recs []models.Record
	var cursors []string
	err := b.conn.ListChanges(t.Context(), c, req, func(p connectors.Page) error {
		recs = append(recs, p.Records...)
		cursors = append(cursors, p.Cursor)
		return nil
	})
	return recs, cursors, err
}

func TestSearchPagingCursorAndLookback(t *testing.T) {
	b := setup(t)
	c := b.newConn(t)
	var ids []string
	for range 5 {
		ids = append(ids, b.create(t, c, models.ObjectContacts))
		b.fake.Advance(time.Second)
	}
	recs, cursors, err := listAll(t, b, c, connectors.ListRequest{Object: models.ObjectContacts, PageSize: 2})
	require.NoError(t, err)
	require.Len(t, cursors, 3)
	got := make([]string, 0, len(recs))
	for _, r := range recs {
		got = append(got, r.RemoteID)
	}
	require.Equal(t, ids, got, "ascending by modification time")
	// Each page's cursor is the last modification it covered, never
	// beyond; all but the last are marked mid-listing (a resumption goes on
	// from there without the lookback).
	for i, cur := range cursors {
		last := recs[min(2*i+1, len(recs)-1)]
		at, _, _ := strings.Cut(cur, ";")
		want := last.RemoteUpdatedAt.Format(time.RFC3339Nano)
		if i < len(cursors)-1 {
			want += "+resume"
		}
		require.Equal(t, want, at)
	}
	require.True(t, strings.HasSuffix(cursors[2], ";live=5;at="+b.fake.Now().Format(time.RFC3339Nano)), "the last page records the live count: %s", cursors[2])
	// The lookback re-reads rows modified shortly before the cursor.
	recs, _, err = listAll(t, b, c, connectors.ListRequest{Object: models.ObjectContacts, Cursor: cursors[len(cursors)-1]})
	require.NoError(t, err)
	require.Len(t, recs, 5)
	b.fake.Advance(time.Hour)
	later := b.fake.Now().Add(time.Minute).Format(time.RFC3339Nano)
	id := b.create(t, c, models.ObjectContacts)
	recs, _, err = listAll(t, b, c, connectors.ListRequest{Object: models.ObjectContacts, Cursor: later})
	require.NoError(t, err)
	require.Len(t, recs, 1)
	require.Equal(t, id, recs[0].RemoteID)

	_, _, err = listAll(t, b, c, connectors.ListRequest{Object: models.ObjectContacts, Cursor: "yesterday"})
	require.ErrorContains(t, err, "bad cursor")
	_, _, err = listAll(t, b, c, connectors.ListRequest{Object: models.ObjectLeads})
	require.ErrorIs(t, err, connectors.ErrUnsupportedObject)
}

func TestSearchResultCapRestart(t *testing.T) {
	b := setup(t, fake.WithSearchCap(6))
	b.conn = hubspot.New(connectors.AppConfig{ClientID: b.fake.ClientID(), ClientSecret: b.fake.ClientSecret(), BaseURL: b.srv.URL},
		hubspot.WithClock(b.fake.Now), hubspot.WithSearchCap(6))
	c := b.newConn(t)
	want := map[string]bool{}
	for range 15 {
		want[b.create(t, c, models.ObjectAccounts)] = true
		b.fake.Advance(time.Second)
	}
	recs, _, err := listAll(t, b, c, connectors.ListRequest{Object: models.ObjectAccounts, PageSize: 2})
	require.NoError(t, err)
	got := map[string]bool{}
	for _, r := range recs {
		got[r.RemoteID] = true
	}
	require.Equal(t, want, got, "every record found across restarted searches")

	// More rows at one instant than the cap: a clear error, no endless loop.
	c2 := b.newConn(t)
	for range 8 {
		b.create(t, c2, models.ObjectAccounts)
	}
	_, _, err = listAll(t, b, c2, connectors.ListRequest{Object: models.ObjectAccounts, PageSize: 2})
	var pe *connectors.ProviderError
	require.ErrorAs(t, err, &pe)
	require.Equal(t, "search_cap", pe.Code)
}

func TestFullScanCursor(t *testing.T) {
	b := setup(t)
	c := b.newConn(t)
	for range 3 {
		b.create(t, c, models.ObjectTasks)
	}
	recs, cursors, err := listAll(t, b, c, connectors.ListRequest{Object: models.ObjectTasks, FullScan: true, PageSize: 2, Cursor: ""})
	require.NoError(t, err)
	require.Len(t, recs, 3)
	now := b.fake.Now().Format(time.RFC3339Nano)
	require.Equal(t, []string{"", now + ";live=3;at=" + now}, cursors, "only the last page advances, to the scan start (with the live count)")
}

func TestDeletionWindows(t *testing.T) {
	b := setup(t)
	c := b.newConn(t)
	ctx := t.Context()
	first := b.create(t, c, models.ObjectOpportunities)
	second := b.create(t, c, models.ObjectOpportunities)
	b.fake.Advance(time.Minute)
	t1 := b.fake.Now()
	require.NoError(t, b.fake.Delete(portalOf(t, c), "deals", first))
	b.fake.Advance(time.Hour)
	t2 := b.fake.Now()
	require.NoError(t, b.fake.Delete(portalOf(t, c), "deals", second))

	ids := func(since, until time.Time) []string {
		dels, err := b.conn.ListDeleted(ctx, c, models.ObjectOpportunities, since, until)
		require.NoError(t, err)
		var out []string
		for _, d := range dels {
			out = append(out, d.RemoteID)
		}
		return out
	}
	require.Equal(t, []string{first, second}, ids(t1, t2), "bounds are inclusive")
	require.Equal(t, []string{first}, ids(t1, t2.Add(-time.Millisecond)))
	require.Equal(t, []string{second}, ids(t1.Add(time.Millisecond), t2))
	require.Empty(t, ids(t2.Add(time.Millisecond), t2.Add(time.Hour)))

	_, err := b.conn.ListDeleted(ctx, c, models.ObjectOpportunities, b.fake.Now().Add(-91*24*time.Hour), b.fake.Now())
	require.ErrorIs(t, err, connectors.ErrWindowExpired, "HubSpot keeps archived records 90 days")
	_, err = b.conn.ListDeleted(ctx, c, models.ObjectOpportunities, b.fake.Now().Add(-89*24*time.Hour), b.fake.Now())
	require.NoError(t, err)
	_, err = b.conn.ListDeleted(ctx, c, models.ObjectStages, t1, t2)
	require.ErrorIs(t, err, connectors.ErrWindowExpired)
	_, err = b.conn.ListDeleted(ctx, c, models.ObjectLeads, t1, t2)
	require.ErrorIs(t, err, connectors.ErrUnsupportedObject)

	// Live records are not deletions; deleted ones leave the full scan.
	recs, _, err := listAll(t, b, c, connectors.ListRequest{Object: models.ObjectOpportunities, FullScan: true})
	require.NoError(t, err)
	require.Empty(t, recs)
}

func TestStagesLifecycle(t *testing.T) {
	b := setup(t)
	c := b.newConn(t)
	recs, cursors, err := listAll(t, b, c, connectors.ListRequest{Object: models.ObjectStages})
	require.NoError(t, err)
	require.Len(t, recs, 7, "the default pipeline's stages")
	require.Len(t, cursors, 1)
	byID := map[string]*models.Stage{}
	for _, r := range recs {
		byID[r.RemoteID] = r.Data.(*models.Stage)
	}
	require.True(t, byID["closedwon"].IsWon)
	require.True(t, byID["closedlost"].IsClosed)
	require.False(t, byID["closedlost"].IsWon)
	require.Equal(t, "default", byID["appointmentscheduled"].Pipeline)

	b.fake.Advance(time.Minute)
	id := b.create(t, c, models.ObjectStages)
	b.fake.Advance(time.Minute)
	b.update(t, c, models.ObjectStages, id)
	recs, _, err = listAll(t, b, c, connectors.ListRequest{Object: models.ObjectStages, Cursor: cursors[0]})
	require.NoError(t, err)
	var found *models.Stage
	for _, r := range recs {
		if r.RemoteID == id {
			found = r.Data.(*models.Stage)
		}
	}
	require.NotNil(t, found)
	require.Contains(t, found.Name, "changed")

	b.remove(t, c, models.ObjectStages, id)
	recs, _, err = listAll(t, b, c, connectors.ListRequest{Object: models.ObjectStages, FullScan: true})
	require.NoError(t, err)
	for _, r := range recs {
		require.NotEqual(t, id, r.RemoteID, "an archived stage leaves the listing; the full scan deletes it")
	}
}

func TestFetchRecordsMissingIDs(t *testing.T) {
	b := setup(t)
	c := b.newConn(t)
	id := b.create(t, c, models.ObjectContacts)
	gone := b.create(t, c, models.ObjectContacts)
	b.remove(t, c, models.ObjectContacts, gone)
	recs, err := b.conn.FetchRecords(t.Context(), c, models.ObjectContacts, []string{id, "999999", gone, id})
	require.NoError(t, err)
	require.Len(t, recs, 1)
	require.Equal(t, id, recs[0].RemoteID)
	require.Equal(t, "Ada", recs[0].Data.(*models.Contact).FirstName)

	many := make([]string, 0, 250)
	for i := range 250 {
		many = append(many, strconv.Itoa(500000+i))
	}
	recs, err = b.conn.FetchRecords(t.Context(), c, models.ObjectContacts, append(many, id))
	require.NoError(t, err, "more than 100 ids are chunked")
	require.Len(t, recs, 1)
	_, err = b.conn.FetchRecords(t.Context(), c, models.ObjectUsers, []string{"1"})
	require.ErrorIs(t, err, connectors.ErrUnsupportedObject)
}

func TestProviderErrors(t *testing.T) {
	b := setup(t)
	c := b.newConn(t)
	b.create(t, c, models.ObjectContacts)
	req := connectors.ListRequest{Object: models.ObjectContacts}

	require.NoError(t, b.fake.FailNext(portalOf(t, c), "rate_limit", 1))
	_, cursors, err := listAll(t, b, c, req)
	var rl *connectors.RateLimitedError
	require.ErrorAs(t, err, &rl)
	require.Equal(t, time.Second, rl.RetryAfter)
	require.Equal(t, "SECONDLY", rl.Reason)
	require.Empty(t, cursors, "no page, no cursor advance")

	require.NoError(t, b.fake.FailNext(portalOf(t, c), "expired_token", 2))
	_, _, err = listAll(t, b, c, req)
	require.ErrorIs(t, err, connectors.ErrUnauthorized, "still rejected after one refresh")

	noRefresh := *c
	noRefresh.Refresh = nil
	noRefresh.HTTP = &http.Client{Transport: conformance.NewBearer("revoked")}
	_, _, err = listAll(t, b, &noRefresh, req)
	require.ErrorIs(t, err, connectors.ErrUnauthorized)

	failing := noRefresh
	failing.Refresh = func(context.Context) error { return errors.New("refresh token revoked") }
	_, _, err = listAll(t, b, &failing, req)
	require.ErrorIs(t, err, connectors.ErrUnauthorized)

	require.NoError(t, b.fake.FailNext(portalOf(t, c), "server_error", 1))
	_, _, err = listAll(t, b, c, req)
	var pe *connectors.ProviderError
	require.ErrorAs(t, err, &pe)
	require.True(t, pe.Temporary)
	require.Equal(t, http.StatusBadGateway, pe.StatusCode)
}

func TestMalformedPage(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, `{"total":1,"results":[{"id":"1","properties":{"lastmodifieddate":"2025-01-01T00:00:00Z"}`)
	}))
	t.Cleanup(srv.Close)
	c := hubspot.New(connectors.AppConfig{BaseURL: srv.URL})
	called := false
	err := c.ListChanges(t.Context(), &connectors.Conn{HTTP: srv.Client()}, connectors.ListRequest{Object: models.ObjectContacts},
		func(connectors.Page) error { called = true; return nil })
	var pe *connectors.ProviderError
	require.ErrorAs(t, err, &pe)
	require.Equal(t, "malformed_response", pe.Code)
	require.False(t, called)
}

func TestFakePostsSignedWebhooks(t *testing.T) {
	var mu sync.Mutex
	var got []*connectors.InboundRequest
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		got = append(got, &connectors.InboundRequest{Method: r.Method, URL: "http://" + r.Host + r.RequestURI, Header: r.Header, Body: body})
		mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(recv.Close)
	b := setup(t)
	b.fake.SetWebhookTarget(recv.URL + "/inbound/hubspot?app=hub%3Aspot")
	c := b.newConn(t)
	id := b.create(t, c, models.ObjectContacts)
	require.NoError(t, b.fake.Update(portalOf(t, c), "contacts", id, map[string]string{"firstname": "Grace", "lastname": "Hopper"}))
	b.remove(t, c, models.ObjectContacts, id)

	mu.Lock()
	defer mu.Unlock()
	require.Len(t, got, 3, "one delivery per change")
	var kinds []string
	for _, r := range got {
		require.NoError(t, b.conn.VerifyWebhook(r))
		ns, err := b.conn.ParseWebhook(r)
		require.NoError(t, err)
		for _, n := range ns {
			require.Equal(t, c.ExternalID, n.ExternalID)
			require.Equal(t, id, n.RemoteID)
			kinds = append(kinds, map[bool]string{true: "deleted", false: "changed"}[n.Deleted])
		}
	}
	require.Equal(t, []string{"changed", "changed", "changed", "deleted"}, kinds, "an update of two properties is one batch of two notices")
	require.Len(t, b.fake.Webhooks(portalOf(t, c)), 3, "sent requests are also collected")

	// A stale delivery (replayed after 5 minutes) is refused.
	b.fake.Advance(6 * time.Minute)
	require.ErrorIs(t, b.conn.VerifyWebhook(got[0]), connectors.ErrBadSignature)
}

func TestFakeAuthErrors(t *testing.T) {
	b := setup(t)
	for _, tc := range []struct{ auth, category string }{
		{"", "INVALID_AUTHENTICATION"},
		{"Bearer nope", "INVALID_AUTHENTICATION"},
	} {
		req, _ := http.NewRequest("GET", b.srv.URL+"/crm/v3/objects/contacts", nil)
		if tc.auth != "" {
			req.Header.Set("Authorization", tc.auth)
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
		require.Contains(t, string(body), tc.category)
	}
	c := b.newConn(t)
	b.fake.Advance(fake.TokenLifetime)
	resp, err := c.HTTP.Get(b.srv.URL + "/crm/v3/objects/contacts")
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	require.Contains(t, string(body), "EXPIRED_AUTHENTICATION")
	// The connector refreshes and carries on.
	_, _, err = listAll(t, b, c, connectors.ListRequest{Object: models.ObjectContacts})
	require.NoError(t, err)
}

package connections

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"github.com/tributary/tributary/connectors"
	"github.com/tributary/tributary/models"
	"github.com/tributary/tributary/storage/storagetest"
)

// authorize starts a session and follows its URL to the provider, returning
// the session and the state and code the provider sent back.
func (b *bundle) authorize(t *testing.T, acc string) (Session, string, string) {
	t.Helper()
	sess, err := b.svc.CreateSession(context.Background(), acc, SessionInput{
		App: "fakeoauth", UserID: "u1", UserName: "Gregg", RedirectURL: "https://isv.example.com/done?x=1"})
	require.NoError(t, err)
	hc := b.prov.Client()
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := hc.Get(sess.URL)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusFound, resp.StatusCode)
	loc, err := url.Parse(resp.Header.Get("Location"))
	require.NoError(t, err)
	require.Equal(t, "https://trb.example.com/oauth/callback", loc.Scheme+"://"+loc.Host+loc.Path)
	return sess, loc.Query().Get("state"), loc.Query().Get("code")
}

// connect runs the whole flow and returns the new connection row.
func (b *bundle) connect(t *testing.T, acc string) models.Connection {
	t.Helper()
	_, state, code := b.authorize(t, acc)
	redirect, err := b.callback(context.Background(), state, code, "")
	require.NoError(t, err)
	u, err := url.Parse(redirect)
	require.NoError(t, err)
	id := u.Query().Get("connectionId")
	require.NotEmpty(t, id, redirect)
	return b.row(t, id)
}

func TestConnectSession(t *testing.T) {
	storagetest.Each(t, func(t *testing.T, db *gorm.DB) {
		b := setup(t, db)
		ctx := context.Background()
		sess, state, code := b.authorize(t, b.accA)
		assert.True(t, models.HasPrefix(sess.ID, models.PrefixConnect))
		assert.Equal(t, t0.Add(30*time.Minute), sess.ExpiresAt)
		au, err := url.Parse(sess.URL)
		require.NoError(t, err)
		q := au.Query()
		assert.Equal(t, "S256", q.Get("code_challenge_method"))
		assert.Equal(t, state, q.Get("state"))
		assert.Len(t, state, 43, "32 random bytes, base64url")
		assert.Equal(t, "https://trb.example.com/oauth/callback", q.Get("redirect_uri"))
		var cs models.ConnectSession
		require.NoError(t, db.Where("id = ?", sess.ID).Take(&cs).Error)
		assert.NotContains(t, string(cs.VerifierEnc), q.Get("code_challenge"))

		redirect, err := b.callback(ctx, state, code, "")
		require.NoError(t, err)
		u, _ := url.Parse(redirect)
		assert.Equal(t, "isv.example.com", u.Host)
		assert.Equal(t, "1", u.Query().Get("x"), "the ISV's own query is kept")
		id := u.Query().Get("connectionId")
		row := b.row(t, id)
		assert.Equal(t, b.accA, row.AccountID)
		assert.Equal(t, "fakeoauth", row.App)
		assert.Equal(t, "u1", row.UserID)
		assert.Equal(t, "Gregg", row.UserName)
		assert.Equal(t, "portal-7", row.ExternalID)
		assert.JSONEq(t, `{"account":"portal-7"}`, row.Metadata)
		assert.NotContains(t, string(row.CredentialsEnc), "at-")
		creds, err := b.svc.openCredentials(&row)
		require.NoError(t, err)
		assert.Equal(t, "Bearer", creds[CredTokenType])
		assert.True(t, strings.HasPrefix(creds[CredAccessToken], "at-"))
		assert.True(t, strings.HasPrefix(creds[CredRefreshToken], "rt-"))
		assert.Equal(t, t0.Add(time.Hour).Format(time.RFC3339Nano), creds[CredExpiry])
		require.NoError(t, db.Where("id = ?", sess.ID).Take(&cs).Error)
		assert.Equal(t, id, cs.ConnectionID)
		assert.NotNil(t, cs.UsedAt)
		assert.Equal(t, []string{models.TopicConnectionCreated}, b.pub.topics())

		// The state is single-use.
		_, err = b.callback(ctx, state, code, "")
		assert.Equal(t, models.ErrCodeInvalid, code2(err))
		_, err = b.callback(ctx, "unknown", "c", "")
		assert.Equal(t, models.ErrCodeInvalid, code2(err))
		_, err = b.callback(ctx, "", "c", "")
		assert.Equal(t, models.ErrCodeInvalid, code2(err))

		// Expired after 30 minutes.
		_, state2, code2nd := b.authorize(t, b.accA)
		b.clock.Advance(30*time.Minute + time.Second)
		_, err = b.callback(ctx, state2, code2nd, "")
		assert.Equal(t, models.ErrCodeInvalid, code2(err))

		// The provider's error goes back to the ISV.
		_, state3, _ := b.authorize(t, b.accA)
		redirect, err = b.callback(ctx, state3, "", "access_denied")
		require.NoError(t, err)
		assert.Contains(t, redirect, "error=access_denied")
		assert.NotContains(t, redirect, "connectionId")

		var n int64
		require.NoError(t, db.Model(&models.Connection{}).Count(&n).Error)
		assert.EqualValues(t, 1, n)
	})
}

func code2(err error) string { return models.ErrorCode(err) }

func TestConnectSessionConcurrentCallbacks(t *testing.T) {
	storagetest.Each(t, func(t *testing.T, db *gorm.DB) {
		b := setup(t, db)
		_, state, code := b.authorize(t, b.accA)
		var wg sync.WaitGroup
		errs := make([]error, 4)
		for i := range errs {
			wg.Go(func() { _, errs[i] = b.callback(context.Background(), state, code, "") })
		}
		wg.Wait()
		ok := 0
		for _, err := range errs {
			if err == nil {
				ok++
			}
		}
		assert.Equal(t, 1, ok, "%v", errs)
	})
}

func TestConnectSessionPKCE(t *testing.T) {
	storagetest.Each(t, func(t *testing.T, db *gorm.DB) {
		b := setup(t, db)
		sess, state, code := b.authorize(t, b.accA)
		// Swap the stored verifier: the provider must refuse the exchange.
		require.NoError(t, db.Model(&models.ConnectSession{}).Where("id = ?", sess.ID).
			Update("verifier_enc", b.box.SealString("not-the-verifier-not-the-verifier-not-the-ver", sess.ID)).Error)
		redirect, err := b.callback(context.Background(), state, code, "")
		require.NoError(t, err)
		assert.Contains(t, redirect, "error=connect_failed")
		var n int64
		require.NoError(t, db.Model(&models.Connection{}).Count(&n).Error)
		assert.Zero(t, n)
		assert.Equal(t, []string{"not-the-verifier-not-the-verifier-not-the-ver"}, b.prov.verifiers)
	})
}

func TestCreateSessionValidation(t *testing.T) {
	storagetest.Each(t, func(t *testing.T, db *gorm.DB) {
		b := setup(t, db)
		for _, tc := range []struct {
			name  string
			in    SessionInput
			field string
		}{
			{"unknown app", SessionInput{App: "nope", UserID: "u", RedirectURL: "https://x.example"}, "app"},
			{"credentials app, relative redirect", SessionInput{App: "fakecrm", UserID: "u", RedirectURL: "/done"}, "redirectUrl"},
			{"no app, no user", SessionInput{RedirectURL: "https://x.example"}, "userId"},
			{"no user", SessionInput{App: "fakeoauth", RedirectURL: "https://x.example"}, "userId"},
			{"relative redirect", SessionInput{App: "fakeoauth", UserID: "u", RedirectURL: "/done"}, "redirectUrl"},
			{"javascript redirect", SessionInput{App: "fakeoauth", UserID: "u", RedirectURL: "javascript:alert(1)"}, "redirectUrl"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				_, err := b.svc.CreateSession(context.Background(), b.accA, tc.in)
				assert.Equal(t, models.ErrCodeUnprocessable, code(err))
				assert.Equal(t, tc.field, field(err))
			})
		}
	})
}

// get sends GET /api with conn's client and returns the bearer token the
// provider saw.
func get(t *testing.T, conn *connectors.Conn, base string) (string, error) {
	t.Helper()
	resp, err := conn.HTTP.Get(base + "/api")
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
	return string(body), nil
}

func TestTokenRefreshPersisted(t *testing.T) {
	storagetest.Each(t, func(t *testing.T, db *gorm.DB) {
		b := setup(t, db)
		ctx := context.Background()
		row := b.connect(t, b.accA)
		conn, err := b.svc.Open(ctx, &row)
		require.NoError(t, err)
		replica, err := b.svc.Open(ctx, &row) // a second process holding the same row
		require.NoError(t, err)
		first, err := get(t, conn, b.prov.URL)
		require.NoError(t, err)
		assert.Equal(t, 0, b.prov.refreshCount())

		// 2 minutes before expiry the token is refreshed and stored.
		b.clock.Advance(58*time.Minute + time.Second)
		second, err := get(t, conn, b.prov.URL)
		require.NoError(t, err)
		assert.NotEqual(t, first, second)
		assert.Equal(t, 1, b.prov.refreshCount())
		stored := b.row(t, row.ID)
		creds, err := b.svc.openCredentials(&stored)
		require.NoError(t, err)
		assert.Equal(t, second, creds[CredAccessToken])
		assert.Equal(t, b.clock.Now().Add(time.Hour).Format(time.RFC3339Nano), creds[CredExpiry])

		// The other process adopts the stored token instead of refreshing
		// with a refresh token that rotated away.
		got, err := get(t, replica, b.prov.URL)
		require.NoError(t, err)
		assert.Equal(t, second, got)
		assert.Equal(t, 1, b.prov.refreshCount())

		// Refresh forces one.
		require.NoError(t, conn.Refresh(ctx))
		third, err := get(t, conn, b.prov.URL)
		require.NoError(t, err)
		assert.NotEqual(t, second, third)
		assert.Equal(t, 2, b.prov.refreshCount())
		stored = b.row(t, row.ID)
		creds, _ = b.svc.openCredentials(&stored)
		assert.Equal(t, third, creds[CredAccessToken])
		assert.Equal(t, models.ConnectionActive, stored.Status)
	})
}

func TestRefreshFailure(t *testing.T) {
	storagetest.Each(t, func(t *testing.T, db *gorm.DB) {
		b := setup(t, db)
		ctx := context.Background()
		row := b.connect(t, b.accA)
		conn, err := b.svc.Open(ctx, &row)
		require.NoError(t, err)
		b.clock.Advance(2 * time.Hour)

		// A provider outage is temporary: no reauth.
		b.prov.setRefreshErr(http.StatusServiceUnavailable)
		_, err = get(t, conn, b.prov.URL)
		require.Error(t, err)
		assert.False(t, errors.Is(err, connectors.ErrUnauthorized), err.Error())
		assert.Equal(t, models.ConnectionActive, b.row(t, row.ID).Status)

		// invalid_grant: needs_reauth, once.
		b.prov.setRefreshErr(http.StatusBadRequest)
		_, err = get(t, conn, b.prov.URL)
		require.ErrorIs(t, err, connectors.ErrUnauthorized)
		require.ErrorIs(t, conn.Refresh(ctx), connectors.ErrUnauthorized)
		other, err := b.svc.Open(ctx, &row)
		require.NoError(t, err)
		_, err = get(t, other, b.prov.URL)
		require.ErrorIs(t, err, connectors.ErrUnauthorized)

		stored := b.row(t, row.ID)
		assert.Equal(t, models.ConnectionNeedsReauth, stored.Status)
		assert.Contains(t, stored.LastError, "invalid_grant")
		topics := b.pub.topics()
		assert.Equal(t, []string{models.TopicConnectionCreated, models.TopicConnectionReauthRequired}, topics)
		ev := b.pub.last()
		assert.Equal(t, models.UpdateUpdated, ev.UpdateType)
		assert.Equal(t, row.ID, ev.ConnectionID)
		assert.Contains(t, string(ev.DataPayload), `"status":"needs_reauth"`)
		assert.True(t, b.pub.inTx[1])

		// The user connects again: the same connection is re-authorized.
		b.prov.setRefreshErr(0)
		again := b.connect(t, b.accA)
		assert.Equal(t, row.ID, again.ID)
		assert.Equal(t, models.ConnectionActive, again.Status)
		conn, err = b.svc.Open(ctx, &again)
		require.NoError(t, err)
		_, err = get(t, conn, b.prov.URL)
		require.NoError(t, err)
	})
}

func TestMarkNeedsReauthVanished(t *testing.T) {
	storagetest.Each(t, func(t *testing.T, db *gorm.DB) {
		b := setup(t, db)
		require.NoError(t, b.svc.MarkNeedsReauth(context.Background(), "con_gone", "x"))
		assert.Empty(t, b.pub.topics())
	})
}

// Attack: a flow sent straight to the provider's url (never opened through
// its connect link) was bound to no browser, so whoever held its callback
// URL completed it anywhere. Its callback is now refused, without using the
// session up: opened through the connect link, it completes in that browser.
func TestUnstartedConnectSessionCallbackRefused(t *testing.T) {
	t.Parallel()
	storagetest.Each(t, func(t *testing.T, db *gorm.DB) {
		b := setup(t, db)
		ctx := context.Background()
		sess, state, code := b.authorize(t, b.accA)
		for _, nonce := range []string{"", "guessed"} {
			_, err := b.svc.BrowserCallback(ctx, state, code, "", nonce)
			require.Error(t, err)
			require.Contains(t, err.Error(), "connect link")
		}
		var n int64
		require.NoError(t, db.Model(&models.Connection{}).Count(&n).Error)
		require.Zero(t, n)

		_, token, ok := strings.Cut(sess.ConnectURL, "/oauth/start/")
		require.True(t, ok, sess.ConnectURL)
		_, _, nonce, err := b.svc.Start(ctx, token)
		require.NoError(t, err)
		redirect, err := b.svc.BrowserCallback(ctx, state, code, "", nonce)
		require.NoError(t, err)
		require.Contains(t, redirect, "connectionId=con_")
	})
}

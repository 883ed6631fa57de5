package api

import (
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"testing"

	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"github.com/tributary/tributary/storage/storagetest"
)

// Attack: the OAuth state was not bound to the browser that started the
// flow, so whoever held a callback URL (state and code) completed it in any
// browser, and return URLs were any absolute URL. A flow started through
// the session's connectUrl now completes only with that browser's cookie,
// and an account's allowedRedirectOrigins restricts where it may return.
func TestSecurityOAuthStateBoundToBrowser(t *testing.T) {
	t.Parallel()
	storagetest.Each(t, func(t *testing.T, db *gorm.DB) {
		a := newConnAPI(t, db)
		st, out := a.do(t, http.MethodPost, "/v1/connect-sessions", a.keyA, map[string]any{
			"app": "hubspot", "userId": "u1", "userName": "Gregg", "redirectUrl": "https://isv.example.com/done"})
		require.Equal(t, http.StatusCreated, st, out)
		connectURL := out["connectUrl"].(string)
		require.Contains(t, connectURL, a.url+"/oauth/start/")

		jar, err := cookiejar.New(nil)
		require.NoError(t, err)
		browser := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		follow := func(c *http.Client, u string) *http.Response {
			t.Helper()
			resp, err := c.Get(u)
			require.NoError(t, err)
			resp.Body.Close()
			return resp
		}
		resp := follow(browser, connectURL)
		require.Equal(t, http.StatusFound, resp.StatusCode)
		require.Equal(t, "no-store", resp.Header.Get("Cache-Control"))
		var cookie *http.Cookie
		for _, c := range resp.Cookies() {
			cookie = c
		}
		require.NotNil(t, cookie, "the connect link sets the binding cookie")
		require.True(t, cookie.HttpOnly)
		require.Equal(t, http.SameSiteLaxMode, cookie.SameSite)
		resp = follow(browser, resp.Header.Get("Location")) // the provider's authorize page
		require.Equal(t, http.StatusFound, resp.StatusCode)
		callback := resp.Header.Get("Location")
		require.Contains(t, callback, a.url+"/oauth/callback?")

		// Another browser with the same state and code: refused, nothing used up.
		st, out = a.do(t, http.MethodGet, callback[len(a.url):], "", nil)
		require.Equal(t, http.StatusBadRequest, st, out)
		require.Equal(t, "invalid_request", errCode(out))
		require.Contains(t, out["error"].(map[string]any)["message"], "another browser")

		// The browser that started it completes it.
		resp = follow(browser, callback)
		require.Equal(t, http.StatusFound, resp.StatusCode)
		loc, err := url.Parse(resp.Header.Get("Location"))
		require.NoError(t, err)
		require.Equal(t, "isv.example.com", loc.Host)
		require.NotEmpty(t, loc.Query().Get("connectionId"))

		// Return URLs: allow-listed per account by an admin.
		st, list := a.do(t, http.MethodGet, "/v1/admin/accounts", a.admin, nil)
		require.Equal(t, http.StatusOK, st)
		var accA string
		for _, acc := range list["data"].([]any) {
			if acc.(map[string]any)["name"] == "A" {
				accA = acc.(map[string]any)["id"].(string)
			}
		}
		require.NotEmpty(t, accA)
		st, out = a.do(t, http.MethodPatch, "/v1/admin/accounts/"+accA, a.admin, map[string]any{"allowedRedirectOrigins": []string{"https://x.example/path"}})
		require.Equal(t, http.StatusUnprocessableEntity, st, out)
		st, out = a.do(t, http.MethodPatch, "/v1/admin/accounts/"+accA, a.admin, map[string]any{"allowedRedirectOrigins": []string{"https://ISV.example.com"}})
		require.Equal(t, http.StatusOK, st, out)
		require.Equal(t, []any{"https://isv.example.com"}, out["allowedRedirectOrigins"])
		st, out = a.do(t, http.MethodPost, "/v1/connect-sessions", a.keyA, map[string]any{
			"app": "hubspot", "userId": "u2", "redirectUrl": "https://evil.example.net/phish"})
		require.Equal(t, http.StatusUnprocessableEntity, st, out)
		require.Equal(t, "redirectUrl", out["error"].(map[string]any)["field"])
		st, out = a.do(t, http.MethodPost, "/v1/connect-sessions", a.keyA, map[string]any{
			"app": "hubspot", "userId": "u2", "redirectUrl": "https://isv.example.com/other?x=1"})
		require.Equal(t, http.StatusCreated, st, out)
		// Account B has no list: never an open redirect — only this
		// deployment's own origin or a loopback host (documented default).
		st, out = a.do(t, http.MethodPost, "/v1/connect-sessions", a.keyB, map[string]any{
			"app": "hubspot", "userId": "u2", "redirectUrl": "https://elsewhere.example.org/"})
		require.Equal(t, http.StatusUnprocessableEntity, st, out)
		require.Equal(t, "redirectUrl", out["error"].(map[string]any)["field"])
		require.Contains(t, out["error"].(map[string]any)["message"], "allowedRedirectOrigins")
		for _, ok := range []string{a.url + "/connected", "http://localhost:3000/done", "http://127.0.0.1:8080/x", "http://[::1]/y"} {
			st, out = a.do(t, http.MethodPost, "/v1/connect-sessions", a.keyB, map[string]any{
				"app": "hubspot", "userId": "u2", "redirectUrl": ok})
			require.Equal(t, http.StatusCreated, st, "%s: %v", ok, out)
		}
		// An unknown start token is a 400.
		st, out = a.do(t, http.MethodGet, "/oauth/start/nope", "", nil)
		require.Equal(t, http.StatusBadRequest, st, out)
	})
}

package main

import (
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"github.com/tributary/tributary/models"
	"github.com/tributary/tributary/storage/storagetest"
)

// TestConsoleAdminInBrowser signs in to the console with an admin key in
// headless Chromium: the accounts list, an account's poll tuning (checked
// through the admin API, a bad duration shown and nothing saved), its
// signing keys, a connection's admin poll interval; then signs in with the
// account's key and sees a webhook whose circuit is open (SQLite).
func TestConsoleAdminInBrowser(t *testing.T) {
	ctx := browser(t)
	e := startEngine(t, storagetest.Dialects[0], allowPrivate)
	key := e.account(t, "Acme")
	dir := t.TempDir()
	if os.Getenv("TRIBUTARY_SCREENSHOTS") != "" {
		dir = "../../docs/screenshots"
		require.NoError(t, os.MkdirAll(dir, 0o755))
	}
	_, list := e.do(t, "GET", "/v1/admin/accounts", e.admin, nil)
	require.Len(t, list["data"], 1, "%v", list)
	accID := list["data"].([]any)[0].(map[string]any)["id"].(string)
	st, con := e.do(t, "POST", "/v1/connections", key, map[string]any{"app": "sandbox", "userId": "u-1", "userName": "Jo",
		"credentials": map[string]string{"mode": "polling"}})
	require.Equal(t, http.StatusCreated, st, "%v", con)
	conID := con["id"].(string)
	// The account's first signing key (created on first use).
	st, keys := e.do(t, "GET", "/v1/signing-keys", key, nil)
	require.Equal(t, http.StatusOK, st, "%v", keys)
	kid := keys["data"].([]any)[0].(map[string]any)["kid"].(string)

	start := time.Now()
	notice := func(contains string) string {
		return `//p[@class="notice" and contains(., "` + contains + `")]`
	}
	var accountsText, notice1, keysText string
	require.NoError(t, chromedp.Do(ctx,
		chromedp.Navigate(e.url+"/console"),
		chromedp.WaitVisible(chromedp.ID("apiKey")),
		chromedp.SendKeys(chromedp.ID("apiKey"), e.admin),
		chromedp.Submit(chromedp.ID("login")),
		chromedp.WaitVisible(chromedp.ID("accounts")),
		into(&accountsText, chromedp.Text(chromedp.ID("accounts"))),
		shot(t, dir, "console-admin-accounts"),
		chromedp.Click(chromedp.Search(`//table[@id="accounts"]//a[contains(., "`+accID+`")]`)),
		chromedp.WaitVisible(chromedp.ID("polling")),
		chromedp.SendKeys(chromedp.ID("defaultPollInterval"), "6h"),
		chromedp.SendKeys(chromedp.ID("minPollInterval"), "15m"),
		chromedp.Submit(chromedp.ID("polling")),
		chromedp.WaitVisible(chromedp.Search(notice("Polling of Acme"))),
		into(&notice1, chromedp.Text(chromedp.Search(notice("Polling of Acme")))),
		into(&keysText, chromedp.Text(chromedp.ID("signing-keys"))),
		shot(t, dir, "console-admin-account"),
	))
	require.Contains(t, accountsText, "Acme")
	require.Contains(t, accountsText, "deployment default")
	require.Contains(t, notice1, "default 6h, minimum 15m")
	require.Contains(t, keysText, kid)
	st, got := e.do(t, "GET", "/v1/admin/accounts/"+accID, e.admin, nil)
	require.Equal(t, http.StatusOK, st)
	require.Equal(t, "6h", got["defaultPollInterval"])
	require.Equal(t, "15m", got["minPollInterval"])

	// PATCH semantics and errors: only the filled field changes; a bad
	// duration is shown and changes nothing.
	var errText string
	require.NoError(t, chromedp.Do(ctx,
		chromedp.SendKeys(chromedp.ID("minPollInterval"), "soon"),
		chromedp.Submit(chromedp.ID("polling")),
		chromedp.WaitVisible(chromedp.CSS(`p.error`)),
		into(&errText, chromedp.Text(chromedp.CSS(`p.error`))),
		chromedp.SendKeys(chromedp.ID("defaultPollInterval"), "8h"),
		chromedp.Submit(chromedp.ID("polling")),
		chromedp.WaitVisible(chromedp.Search(notice("default 8h"))),
	))
	require.Contains(t, errText, "minPollInterval must be a duration")
	_, got = e.do(t, "GET", "/v1/admin/accounts/"+accID, e.admin, nil)
	require.Equal(t, "8h", got["defaultPollInterval"])
	require.Equal(t, "15m", got["minPollInterval"], "an empty field leaves the setting as it is")

	// A connection's poll interval, set by the admin below the account's
	// minimum.
	var notice2 string
	require.NoError(t, chromedp.Do(ctx,
		chromedp.Navigate(e.url+"/console/admin/connections"),
		chromedp.WaitVisible(chromedp.ID("connection-polling")),
		chromedp.SendKeys(chromedp.ID("connectionId"), conID),
		chromedp.SendKeys(chromedp.ID("pollInterval"), "5m"),
		chromedp.Submit(chromedp.ID("connection-polling")),
		chromedp.WaitVisible(chromedp.Search(notice("Poll interval of"))),
		into(&notice2, chromedp.Text(chromedp.Search(notice("Poll interval of")))),
	))
	require.Contains(t, notice2, "Poll interval of "+conID+" is now 5m")
	_, cv := e.do(t, "GET", "/v1/connections/"+conID, key, nil)
	require.Equal(t, "5m", cv["pollInterval"], "%v", cv)
	require.Equal(t, "admin", cv["pollIntervalSetBy"], "%v", cv)

	// An admin form without the session's CSRF token is refused.
	resp, err := http.PostForm(e.url+"/console/admin/accounts/"+accID+"/polling", url.Values{"defaultPollInterval": {"1h"}})
	require.NoError(t, err)
	resp.Body.Close()
	require.NotEqual(t, http.StatusSeeOther, resp.StatusCode)
	_, got = e.do(t, "GET", "/v1/admin/accounts/"+accID, e.admin, nil)
	require.Equal(t, "8h", got["defaultPollInterval"])

	// The account's key: a webhook whose circuit is open says so; the admin
	// pages send it back to its own.
	st, wh := e.do(t, "POST", "/v1/webhooks", key, map[string]any{"address": "http://127.0.0.1:9/hook", "topic": []string{"*"}})
	require.Equal(t, http.StatusCreated, st, "%v", wh)
	until := time.Now().Add(time.Hour)
	require.NoError(t, e.db.Model(&models.Subscription{}).Where("id = ?", wh["id"]).Update("circuit_open_until", until).Error)
	_, whv := e.do(t, "GET", "/v1/webhooks/"+wh["id"].(string), key, nil)
	require.NotEmpty(t, whv["circuitOpenUntil"], "%v", whv)
	var row, landed string
	require.NoError(t, chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(`form.who button`)),
		chromedp.WaitVisible(chromedp.ID("apiKey")),
	))
	require.NoError(t, chromedp.Do(ctx,
		chromedp.SendKeys(chromedp.ID("apiKey"), key),
		chromedp.Submit(chromedp.ID("login")),
		chromedp.WaitVisible(chromedp.ID("webhooks")),
	))
	require.NoError(t, chromedp.Do(ctx,
		into(&row, chromedp.Text(chromedp.Search(`//table[@id="webhooks"]//tr[contains(., "127.0.0.1:9/hook")]`))),
		chromedp.Navigate(e.url+"/console/admin/accounts"),
		chromedp.WaitVisible(chromedp.ID("webhooks")),
		into(&landed, chromedp.Location()),
	))
	require.Contains(t, row, "circuit open")
	require.True(t, strings.HasSuffix(landed, "/console/webhooks"), landed)
	t.Logf("admin browser run took %s", time.Since(start).Round(time.Millisecond))
}

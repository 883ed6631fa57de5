package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"github.com/tributary/tributary/storage/storagetest"
)

// chromium finds Debian's Chromium: missing skips outside CI, fails in CI.
func chromium(t *testing.T) string {
	for _, p := range []string{"/usr/bin/chromium", "/usr/bin/chromium-browser"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if p, err := exec.LookPath("chromium"); err == nil {
		return p
	}
	if os.Getenv("CI") != "" {
		t.Fatal("chromium is required in CI (.ci/run installs it with apt-get)")
	}
	t.Skip("chromium not installed (apt-get install chromium); CI requires it")
	return ""
}

// browser starts headless Chromium with a fresh profile.
func browser(t *testing.T) context.Context {
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromium(t)), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck, chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1360, 900),
		chromedp.Flag("disable-quic", true), chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
	}
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelB := chromedp.NewContext(actx)
	ctx, cancelC := context.WithTimeout(ctx, 90*time.Second)
	t.Cleanup(func() { cancelC(); cancelB(); cancelA() })
	return ctx
}

// shot saves a full-page PNG: into docs/screenshots when
// TRIBUTARY_SCREENSHOTS=1 (to refresh the README's pictures), else a temp dir.
func shot(t *testing.T, dir, name string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		png, err := chromedp.FullScreenshot(100)(ctx, tg)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644)
	})
}

// into stores an action's value in dst.
func into[T any](dst *T, a chromedp.Action[T]) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) (err error) {
		*dst, err = a(ctx, tg)
		return err
	})
}

// TestConsoleInBrowser drives the console in headless Chromium through
// sign-in, registering a webhook, Test, delivery history, replaying a dead
// letter, the connections page and the events tail — against a whole engine
// (SQLite; the services underneath are tested on both databases elsewhere).
func TestConsoleInBrowser(t *testing.T) {
	ctx := browser(t)
	e := startEngine(t, storagetest.Dialects[0], allowPrivate)
	key := e.account(t, "Acme")
	dir := t.TempDir()
	if os.Getenv("TRIBUTARY_SCREENSHOTS") != "" {
		dir = "../../docs/screenshots"
		require.NoError(t, os.MkdirAll(dir, 0o755))
	}

	var failing atomic.Bool
	rc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if failing.Load() && r.URL.Path == "/flaky" {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte(`{"error":"maintenance"}`))
			return
		}
		_, _ = w.Write([]byte(`{"ok":true}`))
	}))
	t.Cleanup(rc.Close)

	start := time.Now()
	// Sign in, register a webhook for everything, send a test.
	var notice string
	require.NoError(t, chromedp.Do(ctx,
		chromedp.Navigate(e.url+"/console"),
		chromedp.WaitVisible(chromedp.ID("apiKey")),
		shot(t, dir, "console-sign-in"),
		chromedp.SendKeys(chromedp.ID("apiKey"), key),
		chromedp.Submit(chromedp.ID("login")),
		chromedp.WaitVisible(chromedp.ID("register")),
		chromedp.SendKeys(chromedp.ID("address"), rc.URL+"/hooks/acme"),
		chromedp.Click(chromedp.CSS(`input[name=topic][value="*"]`)),
		chromedp.Submit(chromedp.ID("register")),
		// Wait for this step's own notice: the page before the submit may
		// still show an earlier one.
		chromedp.WaitVisible(chromedp.Search(`//p[@class="notice" and contains(., "Registered")]`)),
		into(&notice, chromedp.Text(chromedp.Search(`//p[@class="notice" and contains(., "Registered")]`))),
	))
	require.Contains(t, notice, "Registered "+rc.URL+"/hooks/acme")
	require.NoError(t, chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(`#webhooks button.test`)),
		chromedp.WaitVisible(chromedp.Search(`//p[@class="notice" and contains(., "Test evt_")]`)),
		into(&notice, chromedp.Text(chromedp.Search(`//p[@class="notice" and contains(., "Test evt_")]`))),
	))
	require.Regexp(t, `Test evt_\w+ delivered: status 200`, notice)

	// A second webhook that will fail: its deliveries die after one attempt.
	failing.Store(true)
	st, wh := e.do(t, "POST", "/v1/webhooks", key, map[string]any{"address": rc.URL + "/flaky", "topic": []string{"connection/*"},
		"retry": map[string]any{"maxRetries": 0}})
	require.Equal(t, 201, st, "%v", wh)
	// A sandbox connection: its connection/created event goes to both.
	st, con := e.do(t, "POST", "/v1/connections", key, map[string]any{"app": "sandbox", "userId": "u-42", "userName": "Gregg's Account",
		"credentials": map[string]string{"mode": "webhook"}})
	require.Equal(t, 201, st, "%v", con)
	st, _ = e.do(t, "POST", "/v1/sandbox/"+con["id"].(string)+"/contacts", key, map[string]any{"first_name": "Ada", "email": "ada@example.com"})
	require.Equal(t, 201, st)
	waitFor(t, "the flaky webhook's delivery is dead-lettered", func() bool {
		_, dl := e.do(t, "GET", "/v1/dead-letters", key, nil)
		return len(dl["data"].([]any)) == 1
	})

	// Delivery history of the first webhook: the test and the events, with attempts.
	var history string
	require.NoError(t, chromedp.Do(ctx,
		chromedp.Navigate(e.url+"/console/webhooks"),
		shot(t, dir, "console-webhooks"),
		chromedp.Click(chromedp.Search(`//tr[contains(., "/hooks/acme")]//a[contains(., "Delivery history")]`)),
		chromedp.WaitVisible(chromedp.ID("deliveries")),
		chromedp.Click(chromedp.CSS(`#deliveries details summary`)),
		into(&history, chromedp.Text(chromedp.ID("deliveries"))),
		shot(t, dir, "console-delivery-history"),
	))
	// Filter the history by topic in the page's form.
	var filtered string
	require.NoError(t, chromedp.Do(ctx,
		chromedp.SetValue(chromedp.CSS(`.filters input[name=topic]`), "connection/created"),
		chromedp.Submit(chromedp.CSS(`.filters`)),
		chromedp.WaitVisible(chromedp.Search(`//form[@class="filters"]//input[@name="topic" and @value="connection/created"]`)),
		into(&filtered, chromedp.Text(chromedp.ID("deliveries"))),
	))
	require.Contains(t, filtered, "connection/created")
	require.NotContains(t, filtered, "crm/contacts")
	require.Contains(t, history, "succeeded")
	require.Contains(t, history, "200")
	require.Contains(t, history, `{"ok":true}`, "attempts show the response body")

	// Dead letters: the error is shown; the receiver recovers; Replay.
	failing.Store(false)
	var dead string
	require.NoError(t, chromedp.Do(ctx,
		chromedp.Navigate(e.url+"/console/dead-letters"),
		chromedp.WaitVisible(chromedp.ID("dead-letters")),
		into(&dead, chromedp.Text(chromedp.ID("dead-letters"))),
		shot(t, dir, "console-dead-letters"),
		chromedp.Click(chromedp.CSS(`#dead-letters button`)),
		chromedp.WaitVisible(chromedp.Search(`//p[@class="notice" and contains(., "Replayed")]`)),
		into(&notice, chromedp.Text(chromedp.Search(`//p[@class="notice" and contains(., "Replayed")]`))),
	))
	require.Contains(t, dead, "503")
	require.Contains(t, notice, "Replayed 1 dead letter")
	waitFor(t, "the replayed delivery succeeds", func() bool {
		_, ds := e.do(t, "GET", "/v1/deliveries?status=succeeded&webhookId="+wh["id"].(string), key, nil)
		return len(ds["data"].([]any)) == 1
	})

	// Connections and the events tail.
	var conns, events string
	require.NoError(t, chromedp.Do(ctx,
		chromedp.Navigate(e.url+"/console/connections"),
		chromedp.WaitVisible(chromedp.ID("connections")),
		into(&conns, chromedp.Text(chromedp.ID("connections"))),
		shot(t, dir, "console-connections"),
		chromedp.Navigate(e.url+"/console/events"),
		chromedp.WaitVisible(chromedp.Search(`//table[@id="events"]//td[contains(., "crm/contacts")]`)),
		into(&events, chromedp.Text(chromedp.ID("events"))),
		shot(t, dir, "console-events"),
	))
	require.Contains(t, conns, "Gregg's Account")
	require.Contains(t, conns, "sandbox")
	require.Contains(t, events, "connection/created")

	// The hosted connect page: the end user picks the sandbox app, fills its
	// form, sees success and returns to the ISV's redirectUrl.
	st, sess := e.do(t, "POST", "/v1/connect-sessions", key, map[string]any{"userId": "u-7", "userName": "Jo's Shop",
		"redirectUrl": rc.URL + "/connected"})
	require.Equal(t, 201, st, "%v", sess)
	// The engine listens on a port chosen at start, so its public URL
	// (config public_url) is not this test's address: keep the path.
	_, path, ok := strings.Cut(sess["connectUrl"].(string), "/connect/")
	require.True(t, ok, "%v", sess)
	connectURL := e.url + "/connect/" + path
	var connected, landed string
	require.NoError(t, chromedp.Do(ctx,
		chromedp.Navigate(connectURL),
		chromedp.WaitVisible(chromedp.CSS(`button.app[value="sandbox"]`)),
		shot(t, dir, "connect-pick-app"),
		chromedp.Click(chromedp.CSS(`button.app[value="sandbox"]`)),
		chromedp.WaitVisible(chromedp.ID("credentials")),
		chromedp.SetValue(chromedp.ID("mode"), "polling"),
		chromedp.Click(chromedp.CSS(`#credentials button[type=submit]`)),
		chromedp.WaitVisible(chromedp.ID("connected")),
		into(&connected, chromedp.Text(chromedp.ID("connected"))),
		shot(t, dir, "connect-success"),
		chromedp.Click(chromedp.ID("return")),
		chromedp.WaitVisible(chromedp.CSS("body")),
		into(&landed, chromedp.Location()),
	))
	require.Contains(t, connected, "Connected sandbox for Jo's Shop")
	require.Contains(t, landed, rc.URL+"/connected?connectionId=con_")
	_, cl := e.do(t, "GET", "/v1/connections?userId=u-7", key, nil)
	require.Len(t, cl["data"].([]any), 1, "the connect page created the connection")
	// The link is used up: opening it again says so.
	var used string
	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(connectURL), chromedp.WaitVisible(chromedp.CSS(".error")),
		into(&used, chromedp.Text(chromedp.CSS(".error")))))
	require.Contains(t, used, "already used")

	// A form without the session's CSRF token is refused.
	resp, err := http.PostForm(e.url+"/console/webhooks", map[string][]string{"address": {"https://evil.example.com"}})
	require.NoError(t, err)
	resp.Body.Close()
	require.NotEqual(t, http.StatusSeeOther, resp.StatusCode)
	_, list := e.do(t, "GET", "/v1/webhooks", key, nil)
	for _, w := range list["data"].([]any) {
		require.False(t, strings.Contains(w.(map[string]any)["address"].(string), "evil"))
	}
	t.Logf("browser run took %s", time.Since(start).Round(time.Millisecond))
}

// waitFor polls the engine's API until cond holds (work done by the
// dispatcher in the background), failing after 20 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

package main

import (
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tributary/tributary/storage/storagetest"
)

// consoleClient is a browser-like client (cookie jar, no redirects
// followed) for the console's HTML routes.
type consoleClient struct {
	t    *testing.T
	base string
	c    *http.Client
}

func newConsoleClient(t *testing.T, base, key string) *consoleClient {
	jar, err := cookiejar.New(nil)
	require.NoError(t, err)
	cc := &consoleClient{t: t, base: base, c: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}}
	st, loc, _ := cc.post("/console/login", url.Values{"apiKey": {key}})
	require.Equal(t, http.StatusSeeOther, st, "sign in")
	require.NotEmpty(t, loc)
	return cc
}

func (cc *consoleClient) get(path string) (int, string, string) {
	resp, err := cc.c.Get(cc.base + path)
	require.NoError(cc.t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("Location"), string(b)
}

func (cc *consoleClient) post(path string, form url.Values) (int, string, string) {
	resp, err := cc.c.PostForm(cc.base+path, form)
	require.NoError(cc.t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("Location"), string(b)
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// csrf reads the session's CSRF token from a console page.
func (cc *consoleClient) csrf(path string) string {
	st, _, body := cc.get(path)
	require.Equal(cc.t, http.StatusOK, st, body)
	m := csrfField.FindStringSubmatch(body)
	require.NotNil(cc.t, m, "no csrf field on %s", path)
	return m[1]
}

// TestConsoleAdminPages: the admin pages over HTTP (no browser) — the
// accounts list pages through every account, role checks both ways, and
// bad input is shown without a change.
func TestConsoleAdminPages(t *testing.T) {
	e := startEngine(t, storagetest.Dialects[0])
	isvKey := e.account(t, "Account 00")
	for i := 1; i <= 50; i++ {
		e.account(t, fmt.Sprintf("Account %02d", i))
	}
	adm := newConsoleClient(t, e.url, e.admin)

	// Paging: 51 accounts, 50 a page.
	seen := map[string]bool{}
	path := "/console/admin/accounts"
	for pages := 0; path != ""; pages++ {
		require.Less(t, pages, 3)
		st, _, body := adm.get(path)
		require.Equal(t, http.StatusOK, st)
		for _, m := range regexp.MustCompile(`<td>(Account \d\d)</td>`).FindAllStringSubmatch(body, -1) {
			require.False(t, seen[m[1]], "%s twice", m[1])
			seen[m[1]] = true
		}
		path = ""
		if m := regexp.MustCompile(`id="next" href="([^"]+)"`).FindStringSubmatch(body); m != nil {
			path = strings.ReplaceAll(m[1], "&amp;", "&")
		}
	}
	require.Len(t, seen, 51)

	_, list := e.do(t, "GET", "/v1/admin/accounts?limit=1", e.admin, nil)
	accID := list["data"].([]any)[0].(map[string]any)["id"].(string)
	token := adm.csrf("/console/admin/accounts/" + accID)

	isv := newConsoleClient(t, e.url, isvKey)
	isvToken := isv.csrf("/console/webhooks")
	cases := []struct {
		name   string
		c      *consoleClient
		method string
		path   string
		form   url.Values
		status int
		want   string // in the Location (303) or the body
	}{
		{"admin lands on accounts", adm, "GET", "/console", nil, 303, "/console/admin/accounts"},
		{"admin on an account page goes to admin", adm, "GET", "/console/webhooks", nil, 303, "/console/admin/accounts"},
		{"account key on admin page goes home", isv, "GET", "/console/admin/accounts", nil, 303, "/console/webhooks"},
		{"account key may not post an admin form", isv, "POST", "/console/admin/accounts/" + accID + "/polling",
			url.Values{"csrf": {isvToken}, "defaultPollInterval": {"1h"}}, 403, "needs an admin key"},
		{"unknown account", adm, "GET", "/console/admin/accounts/acc_missing", nil, 404, "not found"},
		{"no csrf", adm, "POST", "/console/admin/accounts/" + accID + "/polling", url.Values{"defaultPollInterval": {"1h"}}, 403, "CSRF"},
		{"nothing to change", adm, "POST", "/console/admin/accounts/" + accID + "/polling", url.Values{"csrf": {token}}, 303, "Nothing+to+change"},
		{"bad duration", adm, "POST", "/console/admin/accounts/" + accID + "/polling",
			url.Values{"csrf": {token}, "defaultPollInterval": {"soon"}}, 303, "defaultPollInterval+must+be+a+duration"},
		{"below the admin minimum", adm, "POST", "/console/admin/accounts/" + accID + "/polling",
			url.Values{"csrf": {token}, "defaultPollInterval": {"1ns"}}, 303, "must+be+at+least"},
		{"min above default", adm, "POST", "/console/admin/accounts/" + accID + "/polling",
			url.Values{"csrf": {token}, "defaultPollInterval": {"1h"}, "minPollInterval": {"2h"}}, 303, "exceeds+defaultPollInterval"},
		{"missing account", adm, "POST", "/console/admin/accounts/acc_missing/polling",
			url.Values{"csrf": {token}, "defaultPollInterval": {"1h"}}, 303, "not+found"},
		{"connection id required", adm, "POST", "/console/admin/connections", url.Values{"csrf": {token}, "pollInterval": {"5m"}}, 303, "connection+id"},
		{"unknown connection", adm, "POST", "/console/admin/connections",
			url.Values{"csrf": {token}, "connectionId": {"con_missing"}, "pollInterval": {"5m"}}, 303, "con_missing+not+found"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var st int
			var loc, body string
			if tc.method == "GET" {
				st, loc, body = tc.c.get(tc.path)
			} else {
				st, loc, body = tc.c.post(tc.path, tc.form)
			}
			require.Equal(t, tc.status, st, body)
			require.Contains(t, loc+body, tc.want)
		})
	}
	// None of the refused or invalid forms changed the account.
	_, got := e.do(t, "GET", "/v1/admin/accounts/"+accID, e.admin, nil)
	require.Nil(t, got["defaultPollInterval"], "%v", got)
	require.Nil(t, got["minPollInterval"], "%v", got)
}

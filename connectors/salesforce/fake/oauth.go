package fake

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

type authCode struct {
	org         string
	clientID    string
	redirectURI string
	challenge   string
	scope       string
	expires     time.Time
}

func oauthError(w http.ResponseWriter, status int, code, desc string) {
	writeJSON(w, status, map[string]string{"error": code, "error_description": desc})
}

// base is the instance URL the fake announces.
func (f *Fake) base(r *http.Request) string {
	if f.baseURL != "" {
		return f.baseURL
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

// authorize auto-approves GET /services/oauth2/authorize and redirects to
// redirect_uri with code and state. login_hint may name an org id or
// username; otherwise the default org is connected.
func (f *Fake) authorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	redirect := q.Get("redirect_uri")
	ru, err := url.Parse(redirect)
	if redirect == "" || err != nil || ru.Scheme == "" || ru.Host == "" {
		http.Error(w, "error=redirect_uri_mismatch&error_description=redirect_uri must match configuration", http.StatusBadRequest)
		return
	}
	fail := func(code, desc string) {
		v := ru.Query()
		v.Set("error", code)
		v.Set("error_description", desc)
		if s := q.Get("state"); s != "" {
			v.Set("state", s)
		}
		ru.RawQuery = v.Encode()
		http.Redirect(w, r, ru.String(), http.StatusFound)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	clientID := q.Get("client_id")
	if _, ok := f.clients[clientID]; clientID == "" || (len(f.clients) > 0 && !ok) {
		http.Error(w, "error=invalid_client_id&error_description=client identifier invalid", http.StatusBadRequest)
		return
	}
	if q.Get("response_type") != "code" {
		fail("unsupported_response_type", "response type not supported")
		return
	}
	challenge := q.Get("code_challenge")
	if challenge != "" && q.Get("code_challenge_method") != "" && q.Get("code_challenge_method") != "S256" {
		fail("invalid_request", "invalid code_challenge_method")
		return
	}
	org := f.defaultOrg
	if hint := q.Get("login_hint"); hint != "" {
		for id, t := range f.tenants {
			if id == hint || strings.EqualFold(t.username, hint) {
				org = id
			}
		}
	}
	code := "aPrx" + randomToken(20)
	f.codes[code] = &authCode{org: org, clientID: clientID, redirectURI: redirect, challenge: challenge, scope: q.Get("scope"), expires: f.clock().Add(codeTTL)}
	v := ru.Query()
	v.Set("code", code)
	if s := q.Get("state"); s != "" {
		v.Set("state", s)
	}
	ru.RawQuery = v.Encode()
	http.Redirect(w, r, ru.String(), http.StatusFound)
}

// token serves POST /services/oauth2/token (authorization_code with
// optional PKCE S256, refresh_token). Like Salesforce it returns no
// expires_in, and a refresh answer carries no new refresh_token.
func (f *Fake) token(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		oauthError(w, http.StatusBadRequest, "invalid_request", "malformed request body")
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	clientID, secret := r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	if id, s, ok := r.BasicAuth(); ok {
		clientID, secret = id, s
	}
	if len(f.clients) > 0 {
		want, ok := f.clients[clientID]
		if !ok {
			oauthError(w, http.StatusBadRequest, "invalid_client_id", "client identifier invalid")
			return
		}
		if subtle.ConstantTimeCompare([]byte(want), []byte(secret)) != 1 {
			oauthError(w, http.StatusBadRequest, "invalid_client", "invalid client credentials")
			return
		}
	}
	var org, refresh, scope string
	switch r.PostForm.Get("grant_type") {
	case "":
		oauthError(w, http.StatusBadRequest, "invalid_request", "grant type is missing")
		return
	case "authorization_code":
		code := f.codes[r.PostForm.Get("code")]
		delete(f.codes, r.PostForm.Get("code"))
		if code == nil || !f.clock().Before(code.expires) {
			oauthError(w, http.StatusBadRequest, "invalid_grant", "authorization code expired")
			return
		}
		if code.clientID != clientID || code.redirectURI != r.PostForm.Get("redirect_uri") {
			oauthError(w, http.StatusBadRequest, "invalid_grant", "redirect_uri must match configuration")
			return
		}
		if code.challenge != "" {
			sum := sha256.Sum256([]byte(r.PostForm.Get("code_verifier")))
			if base64.RawURLEncoding.EncodeToString(sum[:]) != code.challenge {
				oauthError(w, http.StatusBadRequest, "invalid_grant", "invalid code verifier")
				return
			}
		}
		org, scope = code.org, code.scope
		var access string
		access, refresh = f.issueLocked(org, true)
		f.writeToken(w, r, org, access, refresh, scope, secret)
		return
	case "refresh_token":
		org = f.refresh[r.PostForm.Get("refresh_token")]
		if org == "" || f.tenants[org] == nil {
			oauthError(w, http.StatusBadRequest, "invalid_grant", "expired access/refresh token")
			return
		}
		access, _ := f.issueLocked(org, false)
		f.writeToken(w, r, org, access, "", "api refresh_token", secret)
		return
	default:
		oauthError(w, http.StatusBadRequest, "unsupported_grant_type", "grant type not supported")
	}
}

// writeToken writes a Salesforce token response: instance_url, the identity
// URL as id, issued_at in ms and signature = base64(HMAC-SHA256(secret,
// id+issued_at)).
func (f *Fake) writeToken(w http.ResponseWriter, r *http.Request, org, access, refresh, scope, secret string) {
	t := f.tenants[org]
	base := f.base(r)
	id := base + "/id/" + org + "/" + t.userID
	issued := strconv.FormatInt(f.clock().UnixMilli(), 10)
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(id + issued))
	resp := map[string]string{
		"access_token": access,
		"signature":    base64.StdEncoding.EncodeToString(m.Sum(nil)),
		"scope":        scope,
		"instance_url": base,
		"id":           id,
		"token_type":   "Bearer",
		"issued_at":    issued,
	}
	if refresh != "" {
		resp["refresh_token"] = refresh
	}
	if scope == "" {
		delete(resp, "scope")
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, resp)
}

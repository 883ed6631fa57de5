package fake

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// oauthError writes the OAuth endpoints' error body, whose code is in status.
func oauthError(w http.ResponseWriter, status, message string) {
	writeJSON(w, http.StatusBadRequest, map[string]any{
		"status": status, "message": message, "correlationId": correlationID(), "requestId": randHex(16),
	})
}

// handleAuthorize auto-approves: it redirects to redirect_uri with a code
// and the state, for the first portal (one is created when none exists).
func (s *Server) handleAuthorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if q.Get("client_id") != s.clientID {
		http.Error(w, "Authorization failed because the client id is invalid", http.StatusBadRequest)
		return
	}
	redirect, err := url.Parse(q.Get("redirect_uri"))
	if err != nil || redirect.Scheme == "" || redirect.Host == "" {
		http.Error(w, "Authorization failed because the redirect URL is invalid", http.StatusBadRequest)
		return
	}
	method := q.Get("code_challenge_method")
	if q.Get("code_challenge") != "" && method != "S256" {
		http.Error(w, "unsupported code_challenge_method", http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	if len(s.portalOrder) == 0 {
		s.createPortalLocked(0)
	}
	code := randHex(16)
	s.codes[code] = &authCode{
		portal: s.portalOrder[0], redirectURI: q.Get("redirect_uri"), challenge: q.Get("code_challenge"),
		method: method, expires: s.nowLocked().Add(10 * time.Minute), scopes: strings.Fields(q.Get("scope")),
	}
	s.mu.Unlock()
	rq := redirect.Query()
	rq.Set("code", code)
	if st := q.Get("state"); st != "" {
		rq.Set("state", st)
	}
	redirect.RawQuery = rq.Encode()
	http.Redirect(w, r, redirect.String(), http.StatusFound)
}

// handleToken is POST /oauth/v1/token (form encoded): authorization_code
// (with PKCE S256 when the authorization carried a challenge) and
// refresh_token. Client credentials come in the form or as Basic auth.
func (s *Server) handleToken(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		oauthError(w, "BAD_REQUEST", "invalid form body")
		return
	}
	id, secret, basic := r.BasicAuth()
	if !basic {
		id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}
	if id != s.clientID {
		oauthError(w, "BAD_CLIENT_ID", "missing or unknown client id")
		return
	}
	if subtle.ConstantTimeCompare([]byte(secret), []byte(s.clientSecret)) != 1 {
		oauthError(w, "BAD_CLIENT_SECRET", "missing or invalid client secret")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var tok Token
	switch r.PostForm.Get("grant_type") {
	case "authorization_code":
		c := s.codes[r.PostForm.Get("code")]
		if c == nil || !s.nowLocked().Before(c.expires) {
			oauthError(w, "BAD_AUTH_CODE", "missing or unknown auth code")
			return
		}
		if c.redirectURI != r.PostForm.Get("redirect_uri") {
			oauthError(w, "BAD_REDIRECT_URI", "redirect_uri does not match the authorization request")
			return
		}
		if c.challenge != "" {
			sum := sha256.Sum256([]byte(r.PostForm.Get("code_verifier")))
			if base64.RawURLEncoding.EncodeToString(sum[:]) != c.challenge {
				oauthError(w, "BAD_AUTH_CODE", "code_verifier does not match the code_challenge")
				return
			}
		}
		delete(s.codes, r.PostForm.Get("code"))
		tok = s.issueLocked(c.portal, c.scopes)
	case "refresh_token":
		rt := r.PostForm.Get("refresh_token")
		portalID, ok := s.refresh[rt]
		if !ok {
			oauthError(w, "BAD_REFRESH_TOKEN", "missing or invalid refresh token")
			return
		}
		tok = s.issueLocked(portalID, nil)
		// HubSpot refresh tokens do not rotate: answer the same one.
		delete(s.refresh, tok.RefreshToken)
		tok.RefreshToken = rt
	default:
		oauthError(w, "BAD_GRANT_TYPE", "grant_type must be authorization_code or refresh_token")
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"token_type": "bearer", "refresh_token": tok.RefreshToken, "access_token": tok.AccessToken,
		"expires_in": int(TokenLifetime.Seconds()),
	})
}

// handleTokenInfo is GET /oauth/v1/access-tokens/{token} (no auth header:
// the token is the credential).
func (s *Server) handleTokenInfo(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	at := r.PathValue("token")
	t := s.tokens[at]
	now := s.nowLocked()
	if t == nil || !now.Before(t.expires) {
		writeError(w, http.StatusNotFound, "", "The access token is expired or invalid", nil)
		return
	}
	p := s.portals[t.portal]
	scopes := t.scopes
	if len(scopes) == 0 {
		scopes = []string{"oauth", "crm.objects.contacts.read", "crm.objects.companies.read", "crm.objects.deals.read", "crm.objects.owners.read"}
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"token": at, "user": p.user, "hub_domain": p.domain, "scopes": scopes, "hub_id": p.id,
		"app_id": s.appID, "expires_in": int(t.expires.Sub(now).Seconds()), "user_id": p.userID, "token_type": "access",
	})
}

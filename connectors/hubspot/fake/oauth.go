package fake

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// OAuth paths of the current (date-versioned) OAuth API, as in HubSpot's
// published spec PublicApiSpecs/Auth/Oauth/Rollouts/279897/2026-03/oauth.json.
const (
	TokenPath      = "/oauth/2026-03/token"
	IntrospectPath = "/oauth/2026-03/token/introspect"
	RevokePath     = "/oauth/2026-03/token/revoke"
)

// LegacyOAuthSunset is when HubSpot retires the v1 OAuth API
// (/oauth/v1/token, /oauth/v1/access-tokens, /oauth/v1/refresh-tokens).
// The fake serves v1 before it and answers 410 Gone from it on.
var LegacyOAuthSunset = time.Date(2027, 2, 16, 0, 0, 0, 0, time.UTC)

// oauthError writes an RFC 6749 §5.2 error body. HubSpot keeps its older
// status/message fields beside error/error_description for compatibility.
func oauthError(w http.ResponseWriter, httpStatus int, code, legacy, description string) {
	writeJSON(w, httpStatus, map[string]any{
		"error": code, "error_description": description,
		"status": legacy, "message": description, "correlationId": correlationID(),
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

// clientAuth parses the form and checks the client credentials (form body
// or Basic auth). It writes an invalid_client answer when they are wrong.
func (s *Server) clientAuth(w http.ResponseWriter, r *http.Request) bool {
	if err := r.ParseForm(); err != nil {
		oauthError(w, http.StatusBadRequest, "invalid_request", "BAD_REQUEST", "invalid form body")
		return false
	}
	id, secret, basic := r.BasicAuth()
	if !basic {
		id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}
	if id != s.clientID {
		oauthError(w, http.StatusUnauthorized, "invalid_client", "BAD_CLIENT_ID", "missing or unknown client id")
		return false
	}
	if subtle.ConstantTimeCompare([]byte(secret), []byte(s.clientSecret)) != 1 {
		oauthError(w, http.StatusUnauthorized, "invalid_client", "BAD_CLIENT_SECRET", "missing or invalid client secret")
		return false
	}
	return true
}

// legacyGone answers a v1 OAuth request: served until LegacyOAuthSunset,
// 410 Gone from then on. Every call is counted (LegacyOAuthCalls).
func (s *Server) legacyGone(w http.ResponseWriter) bool {
	s.mu.Lock()
	s.legacyCalls++
	gone := !s.nowLocked().Before(LegacyOAuthSunset)
	s.mu.Unlock()
	if gone {
		writeError(w, http.StatusGone, "GONE",
			"The v1 OAuth API was retired on 2027-02-16; use /oauth/2026-03/token, /oauth/2026-03/token/introspect and /oauth/2026-03/token/revoke", nil)
	}
	return gone
}

// LegacyOAuthCalls counts requests to the v1 OAuth endpoints so far.
func (s *Server) LegacyOAuthCalls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.legacyCalls
}

// handleToken is POST /oauth/2026-03/token (form encoded):
// authorization_code (with PKCE S256 when the authorization carried a
// challenge) and refresh_token. It answers AccessTokenResponse.
func (s *Server) handleToken(w http.ResponseWriter, r *http.Request) {
	if !s.clientAuth(w, r) {
		return
	}
	tok, ok := s.grant(w, r)
	if !ok {
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"token_type": "bearer", "token_use": "access_token", "refresh_token": tok.RefreshToken,
		"access_token": tok.AccessToken, "expires_in": int(TokenLifetime.Seconds()),
		"hub_id": tok.portal, "user_id": tok.userID, "scopes": tok.scopes,
	})
}

// handleLegacyToken is POST /oauth/v1/token.
func (s *Server) handleLegacyToken(w http.ResponseWriter, r *http.Request) {
	if s.legacyGone(w) || !s.clientAuth(w, r) {
		return
	}
	tok, ok := s.grant(w, r)
	if !ok {
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"token_type": "bearer", "refresh_token": tok.RefreshToken, "access_token": tok.AccessToken,
		"expires_in": int(TokenLifetime.Seconds()), "hub_id": tok.portal, "scopes": tok.scopes,
	})
}

// issued is a token pair with what the token endpoint reports about it.
type issued struct {
	Token
	portal int64
	userID int64
	scopes []string
}

func (s *Server) grant(w http.ResponseWriter, r *http.Request) (issued, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var tok Token
	var portalID int64
	switch r.PostForm.Get("grant_type") {
	case "authorization_code":
		c := s.codes[r.PostForm.Get("code")]
		if c == nil || !s.nowLocked().Before(c.expires) {
			oauthError(w, http.StatusBadRequest, "invalid_grant", "BAD_AUTH_CODE", "missing or unknown auth code")
			return issued{}, false
		}
		if c.redirectURI != r.PostForm.Get("redirect_uri") {
			oauthError(w, http.StatusBadRequest, "invalid_grant", "BAD_REDIRECT_URI", "redirect_uri does not match the authorization request")
			return issued{}, false
		}
		if c.challenge != "" {
			sum := sha256.Sum256([]byte(r.PostForm.Get("code_verifier")))
			if base64.RawURLEncoding.EncodeToString(sum[:]) != c.challenge {
				oauthError(w, http.StatusBadRequest, "invalid_grant", "BAD_AUTH_CODE", "code_verifier does not match the code_challenge")
				return issued{}, false
			}
		}
		delete(s.codes, r.PostForm.Get("code"))
		tok, portalID = s.issueLocked(c.portal, c.scopes), c.portal
	case "refresh_token":
		rt := r.PostForm.Get("refresh_token")
		pid, ok := s.refresh[rt]
		if !ok {
			oauthError(w, http.StatusBadRequest, "invalid_grant", "BAD_REFRESH_TOKEN", "refresh token is invalid, expired or revoked")
			return issued{}, false
		}
		tok, portalID = s.issueLocked(pid, nil), pid
		// HubSpot refresh tokens do not rotate: answer the same one.
		delete(s.refresh, tok.RefreshToken)
		s.tokens[tok.AccessToken].refresh = rt
		tok.RefreshToken = rt
	default:
		oauthError(w, http.StatusBadRequest, "unsupported_grant_type", "BAD_GRANT_TYPE", "grant_type must be authorization_code or refresh_token")
		return issued{}, false
	}
	return issued{Token: tok, portal: portalID, userID: s.portals[portalID].userID, scopes: s.scopesLocked(s.tokens[tok.AccessToken])}, true
}

func (s *Server) scopesLocked(t *token) []string {
	if t != nil && len(t.scopes) > 0 {
		return t.scopes
	}
	return []string{"oauth", "crm.objects.contacts.read", "crm.objects.companies.read", "crm.objects.deals.read", "crm.objects.owners.read"}
}

// handleIntrospect is POST /oauth/2026-03/token/introspect (RFC 7662 with
// HubSpot's metadata): PublicAccessTokenInfoResponse for an access token,
// PublicRefreshTokenInfoResponse for a refresh token, {"active":false} for
// anything else.
func (s *Server) handleIntrospect(w http.ResponseWriter, r *http.Request) {
	if !s.clientAuth(w, r) {
		return
	}
	tk := r.PostForm.Get("token")
	if tk == "" {
		oauthError(w, http.StatusBadRequest, "invalid_request", "BAD_REQUEST", "token is required")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.nowLocked()
	if t := s.tokens[tk]; t != nil && now.Before(t.expires) && r.PostForm.Get("token_type_hint") != "refresh_token" {
		p := s.portals[t.portal]
		writeJSON(w, http.StatusOK, map[string]any{
			"active": true, "token": tk, "token_type": "bearer", "token_use": "access_token",
			"client_id": s.clientID, "app_id": s.appID, "hub_id": p.id, "hub_domain": p.domain,
			"user": p.user, "user_id": p.userID, "scopes": s.scopesLocked(t), "is_private_distribution": false,
			"expires_in": int(t.expires.Sub(now).Seconds()),
			"signed_access_token": map[string]any{
				"appId": s.appID, "appInstallId": strconv.FormatInt(p.id, 10), "audience": s.clientID, "expiresAt": t.expires.UnixMilli(),
				"hubId": p.id, "hublet": "na1", "installingUserId": p.userID, "isPrivateDistribution": false,
				"isServiceAccount": false, "isUserLevel": false, "newSignature": randHex(16),
				"scopeToScopeGroupPks": "", "scopes": strings.Join(s.scopesLocked(t), " "), "signature": randHex(16),
				"trialScopeToScopeGroupPks": "", "trialScopes": "", "userId": p.userID,
			},
		})
		return
	}
	if pid, ok := s.refresh[tk]; ok {
		p := s.portals[pid]
		writeJSON(w, http.StatusOK, map[string]any{
			"active": true, "token": tk, "token_type": "bearer", "token_use": "refresh_token",
			"client_id": s.clientID, "app_id": s.appID, "hub_id": p.id, "hub_domain": p.domain,
			"user": p.user, "user_id": p.userID, "scopes": s.scopesLocked(nil),
		})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"active": false})
}

// handleRevoke is POST /oauth/2026-03/token/revoke: it deletes a refresh
// token and every access token issued from it (RFC 7009: an unknown token
// is not an error).
func (s *Server) handleRevoke(w http.ResponseWriter, r *http.Request) {
	if !s.clientAuth(w, r) {
		return
	}
	tk := r.PostForm.Get("token")
	if tk == "" {
		oauthError(w, http.StatusBadRequest, "invalid_request", "BAD_REQUEST", "token is required")
		return
	}
	s.mu.Lock()
	s.revokeLocked(tk)
	s.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) revokeLocked(rt string) {
	if _, ok := s.refresh[rt]; !ok {
		return
	}
	delete(s.refresh, rt)
	s.revoked = append(s.revoked, rt)
	for at, t := range s.tokens {
		if t.refresh == rt {
			delete(s.tokens, at)
		}
	}
}

// Revoked lists the refresh tokens revoked so far, in order.
func (s *Server) Revoked() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.revoked...)
}

// handleLegacyTokenInfo is GET /oauth/v1/access-tokens/{token}.
func (s *Server) handleLegacyTokenInfo(w http.ResponseWriter, r *http.Request) {
	if s.legacyGone(w) {
		return
	}
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
	writeJSON(w, http.StatusOK, map[string]any{
		"token": at, "user": p.user, "hub_domain": p.domain, "scopes": s.scopesLocked(t), "hub_id": p.id,
		"app_id": s.appID, "expires_in": int(t.expires.Sub(now).Seconds()), "user_id": p.userID, "token_type": "access",
	})
}

// handleLegacyRefreshToken is GET and DELETE /oauth/v1/refresh-tokens/{token}.
func (s *Server) handleLegacyRefreshToken(w http.ResponseWriter, r *http.Request) {
	if s.legacyGone(w) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	rt := r.PathValue("token")
	pid, ok := s.refresh[rt]
	if !ok {
		writeError(w, http.StatusNotFound, "", "refresh token not found", nil)
		return
	}
	if r.Method == http.MethodDelete {
		s.revokeLocked(rt)
		w.WriteHeader(http.StatusNoContent)
		return
	}
	p := s.portals[pid]
	writeJSON(w, http.StatusOK, map[string]any{
		"token": rt, "user": p.user, "hub_domain": p.domain, "scopes": s.scopesLocked(nil), "hub_id": p.id,
		"client_id": s.clientID, "user_id": p.userID, "token_type": "refresh",
	})
}

package fake

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
)

// shopOfRequest is the shop an OAuth request is for: the Host when it is a
// myshopify.com domain, else the "shop" query parameter.
func shopOfRequest(r *http.Request) string {
	if host := strings.ToLower(strings.Split(r.Host, ":")[0]); hasSuffix(host, ".myshopify.com") {
		return host
	}
	shop := strings.ToLower(r.URL.Query().Get("shop"))
	if shop == "" || !hasSuffix(shop, ".myshopify.com") {
		return ""
	}
	return shop
}

// callbackHMAC is Shopify's OAuth callback hmac: hex HMAC-SHA256 over the
// sorted query parameters without hmac.
func callbackHMAC(secret string, v url.Values) string {
	keys := make([]string, 0, len(v))
	for k := range v {
		if k != "hmac" && k != "signature" {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, k+"="+v.Get(k))
	}
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(strings.Join(parts, "&")))
	return hex.EncodeToString(m.Sum(nil))
}

// authorize auto-approves the install: it redirects to redirect_uri with
// code, state, shop, host, timestamp and hmac, as Shopify does.
func (s *Server) authorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	shop := shopOfRequest(r)
	redirect := q.Get("redirect_uri")
	switch {
	case shop == "":
		http.Error(w, "Oauth error invalid_request: Missing or invalid shop", http.StatusBadRequest)
		return
	case q.Get("client_id") != s.clientID:
		http.Error(w, "Oauth error invalid_request: The client_id is invalid", http.StatusBadRequest)
		return
	case redirect == "":
		http.Error(w, "Oauth error invalid_request: The redirect_uri is missing", http.StatusBadRequest)
		return
	}
	ru, err := url.Parse(redirect)
	if err != nil || (ru.Scheme != "http" && ru.Scheme != "https") {
		http.Error(w, "Oauth error invalid_request: The redirect_uri is not whitelisted", http.StatusBadRequest)
		return
	}
	method := q.Get("code_challenge_method")
	if q.Get("code_challenge") != "" && method != "S256" {
		http.Error(w, "Oauth error invalid_request: unsupported code_challenge_method", http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	sh := s.addShopLocked(shop)
	code := s.secretID("code")
	s.codes[code] = &grant{shop: sh.domain, redirectURI: redirect, challenge: q.Get("code_challenge"), method: method,
		scope: q.Get("scope"), expires: s.now().Add(10 * time.Minute)}
	now := s.now()
	s.mu.Unlock()
	v := ru.Query()
	v.Set("code", code)
	v.Set("shop", sh.domain)
	v.Set("state", q.Get("state"))
	v.Set("timestamp", strconv.FormatInt(now.Unix(), 10))
	v.Set("host", base64.RawStdEncoding.EncodeToString([]byte(sh.domain+"/admin")))
	v.Set("hmac", callbackHMAC(s.clientSecret, v))
	ru.RawQuery = v.Encode()
	http.Redirect(w, r, ru.String(), http.StatusFound)
}

func oauthError(w http.ResponseWriter, status int, code, desc string) {
	writeJSON(w, status, map[string]string{"error": code, "error_description": desc})
}

// accessToken serves the authorization_code and refresh_token grants.
// expiring=1 (query or form) asks for an expiring offline token.
func (s *Server) accessToken(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		oauthError(w, http.StatusBadRequest, "invalid_request", "malformed request")
		return
	}
	id, secret := r.Form.Get("client_id"), r.Form.Get("client_secret")
	if u, p, ok := r.BasicAuth(); ok {
		id, secret = u, p
	}
	if id != s.clientID || subtle.ConstantTimeCompare([]byte(secret), []byte(s.clientSecret)) != 1 {
		oauthError(w, http.StatusBadRequest, "invalid_client", "Client authentication failed")
		return
	}
	expiring := r.Form.Get("expiring") == "1"
	s.mu.Lock()
	defer s.mu.Unlock()
	var domain, scope string
	switch gt := r.Form.Get("grant_type"); gt {
	case "", "authorization_code":
		g := s.codes[r.Form.Get("code")]
		if g == nil || !s.now().Before(g.expires) {
			oauthError(w, http.StatusBadRequest, "invalid_request", "The authorization code was not found or was already used")
			return
		}
		delete(s.codes, r.Form.Get("code"))
		if host := shopOfRequest(r); host != "" && host != g.shop {
			oauthError(w, http.StatusBadRequest, "invalid_request", "The authorization code was not found or was already used")
			return
		}
		if g.challenge != "" {
			sum := sha256.Sum256([]byte(r.Form.Get("code_verifier")))
			if base64.RawURLEncoding.EncodeToString(sum[:]) != g.challenge {
				oauthError(w, http.StatusBadRequest, "invalid_grant", "PKCE verification failed")
				return
			}
		}
		domain, scope = g.shop, g.scope
	case "refresh_token":
		rt := r.Form.Get("refresh_token")
		t := s.refresh[rt]
		if t == nil || !s.now().Before(t.expiresAt) {
			oauthError(w, http.StatusBadRequest, "invalid_grant", "The refresh token is invalid or expired")
			return
		}
		delete(s.refresh, rt) // refresh tokens rotate
		domain, expiring = t.shop, true
	default:
		oauthError(w, http.StatusBadRequest, "unsupported_grant_type", "grant_type "+gt+" is not supported")
		return
	}
	access, refreshTok, ttl := s.issueLocked(domain, expiring)
	out := map[string]any{"access_token": access, "scope": scope}
	if scope == "" {
		out["scope"] = "read_orders,read_customers,read_products"
	}
	if expiring {
		out["expires_in"] = int(ttl.Seconds())
		out["refresh_token"] = refreshTok
		out["refresh_token_expires_in"] = int(RefreshTokenTTL.Seconds())
	}
	writeJSON(w, http.StatusOK, out)
}

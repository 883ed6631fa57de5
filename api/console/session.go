package console

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"time"

	"github.com/tributary/tributary/accounts"
	"github.com/tributary/tributary/models"
)

const (
	cookieName = "tributary_console"
	cookieAAD  = "console-session"
)

// session is the sealed cookie's content.
type session struct {
	Key     string    `json:"k"`
	Expires time.Time `json:"e"`
}

// signed-in request context
type ctxKey struct{}

type visitor struct {
	principal accounts.Principal
	csrf      string
}

func visitorOf(r *http.Request) visitor {
	v, _ := r.Context().Value(ctxKey{}).(visitor)
	return v
}

// csrfToken is derived from the (secret, HttpOnly) cookie value: a page of
// another origin can neither read it nor compute it.
func csrfToken(cookie string) string {
	sum := sha256.Sum256([]byte("tributary-console-csrf:" + cookie))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

func (k *Console) setSession(w http.ResponseWriter, key string) {
	exp := k.cfg.Now().Add(k.cfg.SessionLifetime)
	raw, _ := json.Marshal(session{Key: key, Expires: exp})
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: base64.RawURLEncoding.EncodeToString(k.cfg.Sealer.Seal(raw, []byte(cookieAAD))),
		Path: "/console", Expires: exp, MaxAge: int(k.cfg.SessionLifetime.Seconds()), HttpOnly: true, Secure: k.cfg.Secure, SameSite: http.SameSiteStrictMode})
}

func (k *Console) clearSession(w http.ResponseWriter) {
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: "", Path: "/console", MaxAge: -1, HttpOnly: true, Secure: k.cfg.Secure, SameSite: http.SameSiteStrictMode})
}

// current opens the session cookie and authenticates its key again.
func (k *Console) current(r *http.Request) (visitor, bool) {
	c, err := r.Cookie(cookieName)
	if err != nil || c.Value == "" || len(c.Value) > 4096 {
		return visitor{}, false
	}
	sealed, err := base64.RawURLEncoding.DecodeString(c.Value)
	if err != nil {
		return visitor{}, false
	}
	raw, err := k.cfg.Sealer.Open(sealed, []byte(cookieAAD))
	if err != nil {
		return visitor{}, false
	}
	var s session
	if json.Unmarshal(raw, &s) != nil || !k.cfg.Now().Before(s.Expires) {
		return visitor{}, false
	}
	p, err := k.cfg.Auth.Authenticate(r.Context(), s.Key)
	if err != nil || (p.Role != models.RoleISV && p.Role != models.RoleAdmin) {
		return visitor{}, false
	}
	return visitor{principal: p, csrf: csrfToken(c.Value)}, true
}

// signedIn runs h for a visitor signed in with an account's key.
func (k *Console) signedIn(h http.HandlerFunc) http.HandlerFunc {
	return k.as(models.RoleISV, h)
}

// adminOnly runs h for a visitor signed in with an admin key.
func (k *Console) adminOnly(h http.HandlerFunc) http.HandlerFunc {
	return k.as(models.RoleAdmin, h)
}

// landing is where a visitor of that role starts.
func landing(role string) string {
	if role == models.RoleAdmin {
		return "/console/admin/accounts"
	}
	return "/console/webhooks"
}

// as runs h for a visitor signed in with a key of role (else back to
// sign-in; "" is any role; a key of the other role is sent to its own pages, or refused for
// a form) and checks the CSRF token of every POST.
func (k *Console) as(role string, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		v, ok := k.current(r)
		if !ok {
			k.clearSession(w)
			if r.Method == http.MethodGet && !strings.HasSuffix(r.URL.Path, ".json") {
				http.Redirect(w, r, "/console?next="+r.URL.Path, http.StatusSeeOther)
				return
			}
			k.render(w, r, http.StatusUnauthorized, "login", page{Title: "Sign in", Error: "Your session ended: sign in again."})
			return
		}
		if role != "" && v.principal.Role != role {
			if r.Method == http.MethodGet && !strings.HasSuffix(r.URL.Path, ".json") {
				http.Redirect(w, r, landing(v.principal.Role), http.StatusSeeOther)
				return
			}
			r = r.WithContext(context.WithValue(r.Context(), ctxKey{}, v))
			msg := "This page is for an account's API key (trb_…); you are signed in with an admin key."
			if role == models.RoleAdmin {
				msg = "This page needs an admin key (trb_admin_…); you are signed in with an account's key."
			}
			k.render(w, r, http.StatusForbidden, "error", page{Title: "Refused", Error: msg})
			return
		}
		if r.Method == http.MethodPost {
			got := r.PostFormValue("csrf")
			if subtle.ConstantTimeCompare([]byte(got), []byte(v.csrf)) != 1 {
				k.render(w, r, http.StatusForbidden, "error", page{Title: "Refused", Error: "This form is stale or came from another site (CSRF check failed). Reload the page and try again."})
				return
			}
		}
		h(w, r.WithContext(context.WithValue(r.Context(), ctxKey{}, v)))
	}
}

func (k *Console) home(w http.ResponseWriter, r *http.Request) {
	if v, ok := k.current(r); ok {
		http.Redirect(w, r, landing(v.principal.Role), http.StatusSeeOther)
		return
	}
	k.render(w, r, http.StatusOK, "login", page{Title: "Sign in"})
}

func (k *Console) login(w http.ResponseWriter, r *http.Request) {
	key := strings.TrimSpace(r.PostFormValue("apiKey"))
	p, err := k.cfg.Auth.Authenticate(r.Context(), key)
	if err != nil || key == "" {
		k.render(w, r, http.StatusUnauthorized, "login", page{Title: "Sign in", Error: "That API key is not valid."})
		return
	}
	if p.Role != models.RoleISV && p.Role != models.RoleAdmin {
		k.render(w, r, http.StatusForbidden, "login", page{Title: "Sign in", Error: "Sign in with an account's API key (trb_…) or an admin key (trb_admin_…)."})
		return
	}
	k.setSession(w, key)
	next := r.URL.Query().Get("next")
	// Admin pages are under /console/admin/, an account's everywhere else.
	if !strings.HasPrefix(next, "/console/") || strings.HasPrefix(next, "//") ||
		strings.HasPrefix(next, "/console/admin") != (p.Role == models.RoleAdmin) {
		next = landing(p.Role)
	}
	http.Redirect(w, r, next, http.StatusSeeOther)
}

func (k *Console) logout(w http.ResponseWriter, r *http.Request) {
	k.clearSession(w)
	http.Redirect(w, r, "/console", http.StatusSeeOther)
}

package console

import (
	"context"
	"html/template"
	"log/slog"
	"net/http"
	"strings"

	"github.com/tributary/tributary/connectors"
	"github.com/tributary/tributary/sync/connections"
)

// Sessions is what the hosted connect page needs of sync/connections.
type Sessions interface {
	Hosted(ctx context.Context, token string) (connections.Hosted, error)
	ChooseApp(ctx context.Context, token, app string) (oauth bool, err error)
	ConnectWithCredentials(ctx context.Context, token, app string, creds map[string]string) (connections.View, string, error)
}

// ConnectPage serves the hosted connect page, GET/POST /connect/{token}:
// the end user of a connect session picks one of the offered apps, goes
// through the app's OAuth2 consent (via /oauth/start/{token}) or fills its
// credentials form, sees the outcome and returns to the ISV's redirectUrl.
// The token in the link is the only credential; the page is served with
// no-store, no framing and no referrer so it does not leak.
type ConnectPage struct {
	sessions Sessions
	tmpl     *template.Template
	log      *slog.Logger
}

// NewConnectPage builds the connect page on s.
func NewConnectPage(s Sessions, log *slog.Logger) (*ConnectPage, error) {
	pages, err := parsePages()
	if err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.Default()
	}
	return &ConnectPage{sessions: s, tmpl: pages["connect"], log: log}, nil
}

// connectView is the connect template's data.
type connectView struct {
	Token     string
	Session   connections.Hosted
	Chosen    *connectors.Info
	Error     string
	Done      bool
	Redirect  string
	Connected connections.View
}

// ServeHTTP answers GET (show) and POST (choose an app, submit credentials)
// on /connect/{token}.
func (p *ConnectPage) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Security-Policy", "default-src 'self'; style-src 'self'; script-src 'self'; form-action 'self' http: https:; frame-ancestors 'none'")
	token := strings.TrimPrefix(r.URL.Path, "/connect/")
	v := connectView{Token: token}
	sess, err := p.sessions.Hosted(r.Context(), token)
	if err != nil {
		v.Error = message(err)
		p.render(w, http.StatusNotFound, v)
		return
	}
	v.Session = sess
	app := r.FormValue("app")
	if app == "" && len(sess.Apps) == 1 {
		app = sess.Apps[0].Name
	}
	for i := range sess.Apps {
		if sess.Apps[i].Name == app {
			v.Chosen = &sess.Apps[i]
		}
	}
	if r.Method != http.MethodPost || v.Chosen == nil {
		p.render(w, http.StatusOK, v)
		return
	}
	if v.Chosen.Auth == connectors.AuthOAuth2 {
		if _, err := p.sessions.ChooseApp(r.Context(), token, app); err != nil {
			v.Error = message(err)
			p.render(w, http.StatusUnprocessableEntity, v)
			return
		}
		http.Redirect(w, r, "/oauth/start/"+token, http.StatusSeeOther)
		return
	}
	if r.PostFormValue("submit") == "" { // picked a credentials app: show its form
		p.render(w, http.StatusOK, v)
		return
	}
	creds := map[string]string{}
	for k, vals := range r.PostForm {
		if name, ok := strings.CutPrefix(k, "cred."); ok && len(vals) > 0 && vals[0] != "" {
			creds[name] = vals[0]
		}
	}
	con, redirect, err := p.sessions.ConnectWithCredentials(r.Context(), token, app, creds)
	if err != nil {
		v.Error = message(err)
		p.render(w, http.StatusUnprocessableEntity, v)
		return
	}
	v.Done, v.Redirect, v.Connected = true, redirect, con
	p.render(w, http.StatusOK, v)
}

func (p *ConnectPage) render(w http.ResponseWriter, status int, v connectView) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	if err := p.tmpl.Execute(w, page{Title: "Connect an app", Data: v}); err != nil {
		p.log.Error("connect page: render", "err", err)
	}
}

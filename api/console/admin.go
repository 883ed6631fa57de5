package console

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/tributary/tributary/accounts"
	"github.com/tributary/tributary/forwarding"
	"github.com/tributary/tributary/models"
	"github.com/tributary/tributary/sync/connections"
)

// Accounts is what the admin pages need of package accounts.
type Accounts interface {
	List(ctx context.Context, limit int, cursor string) ([]models.Account, string, error)
	Get(ctx context.Context, id string) (*models.Account, error)
	Update(ctx context.Context, id string, u accounts.Update) (*models.Account, error)
}

// ConnectionAdmin is what the admin pages need of sync/connections.
type ConnectionAdmin interface {
	AdminUpdatePollInterval(ctx context.Context, id, interval string) (connections.View, error)
	RescheduleAccount(ctx context.Context, accountID string) (int, error)
}

// SigningKeys lists an account's delivery signing keys (package forwarding).
type SigningKeys interface {
	SigningKeys(ctx context.Context, accountID string) ([]forwarding.SigningKey, error)
}

// adminPageSize is how many accounts one page of the list shows.
const adminPageSize = 50

func (k *Console) adminRoutes() {
	k.mux.HandleFunc("GET /console/admin", k.adminOnly(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/console/admin/accounts", http.StatusSeeOther)
	}))
	k.mux.HandleFunc("GET /console/admin/accounts", k.adminOnly(k.withAdmin(k.adminAccounts)))
	k.mux.HandleFunc("GET /console/admin/accounts/{id}", k.adminOnly(k.withAdmin(k.adminAccount)))
	k.mux.HandleFunc("POST /console/admin/accounts/{id}/polling", k.adminOnly(k.withAdmin(k.adminTuneAccount)))
	k.mux.HandleFunc("GET /console/admin/connections", k.adminOnly(k.withAdmin(k.adminConnections)))
	k.mux.HandleFunc("POST /console/admin/connections", k.adminOnly(k.withAdmin(k.adminTuneConnection)))
}

// withAdmin answers a clear page when this process was built without the
// admin services.
func (k *Console) withAdmin(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if k.cfg.Accounts == nil {
			k.render(w, r, http.StatusServiceUnavailable, "error", page{Title: "Admin", Admin: true,
				Error: "The admin pages are not enabled on this process."})
			return
		}
		h(w, r)
	}
}

func (k *Console) adminAccounts(w http.ResponseWriter, r *http.Request) {
	p := page{Title: "Accounts", Nav: "admin-accounts"}
	cursor := r.URL.Query().Get("cursor")
	list, next, err := k.cfg.Accounts.List(r.Context(), adminPageSize, cursor)
	if err != nil {
		var e *models.Error
		if !errors.As(err, &e) {
			k.fail(w, r, err)
			return
		}
		p.Error = e.Message
	}
	p.Data = map[string]any{"Accounts": list, "Next": next, "Paged": cursor != ""}
	k.render(w, r, http.StatusOK, "admin-accounts", p)
}

func (k *Console) adminAccount(w http.ResponseWriter, r *http.Request) {
	acct, err := k.cfg.Accounts.Get(r.Context(), r.PathValue("id"))
	if err != nil {
		var e *models.Error
		if errors.As(err, &e) && e.Code == models.ErrCodeNotFound {
			k.render(w, r, http.StatusNotFound, "error", page{Title: "Not found", Error: e.Message})
			return
		}
		k.fail(w, r, err)
		return
	}
	p := page{Title: "Account " + acct.Name, Nav: "admin-accounts"}
	var keys []forwarding.SigningKey
	if k.cfg.SigningKeys != nil {
		if keys, err = k.cfg.SigningKeys.SigningKeys(r.Context(), acct.ID); err != nil {
			k.cfg.Logger.Error("console: signing keys", "account", acct.ID, "err", err)
			p.Error = "The account's signing keys could not be listed: " + message(err)
		}
	}
	p.Data = map[string]any{"Account": acct, "Keys": keys}
	k.render(w, r, http.StatusOK, "admin-account", p)
}

// adminTuneAccount has PATCH semantics: an empty field leaves that setting
// as it is.
func (k *Console) adminTuneAccount(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	to := "/console/admin/accounts/" + url.PathEscape(id)
	var u accounts.Update
	for _, f := range []struct {
		name string
		dst  **time.Duration
	}{{"defaultPollInterval", &u.DefaultPollInterval}, {"minPollInterval", &u.MinPollInterval}} {
		v := strings.TrimSpace(r.PostFormValue(f.name))
		if v == "" {
			continue
		}
		d, err := time.ParseDuration(v)
		if err != nil {
			back(w, r, to, models.FieldError(f.name, "%s must be a duration like \"15m\" or \"12h\" (got %q)", f.name, v), "")
			return
		}
		*f.dst = &d
	}
	if u.DefaultPollInterval == nil && u.MinPollInterval == nil {
		back(w, r, to, models.Errorf(models.ErrCodeInvalid, "Nothing to change: fill in a default or a minimum poll interval."), "")
		return
	}
	acct, err := k.cfg.Accounts.Update(r.Context(), id, u)
	if err != nil {
		back(w, r, to, err, "")
		return
	}
	// As the admin API does: the new settings apply to the account's
	// connections now, not after each one's next poll.
	moved := 0
	if k.cfg.ConnectionAdmin != nil {
		if moved, err = k.cfg.ConnectionAdmin.RescheduleAccount(r.Context(), acct.ID); err != nil {
			k.cfg.Logger.Error("console: reschedule account", "account", acct.ID, "err", err)
			back(w, r, to, models.Errorf(models.ErrCodeUnavailable, "Saved, but the account's connections could not be rescheduled yet: %s", message(err)), "")
			return
		}
	}
	back(w, r, to, nil, "Polling of "+acct.Name+": default "+durationText(acct.DefaultPollInterval)+", minimum "+
		durationText(acct.MinPollInterval)+" ("+strconv.Itoa(moved)+" connections rescheduled).")
}

func (k *Console) adminConnections(w http.ResponseWriter, r *http.Request) {
	k.render(w, r, http.StatusOK, "admin-connections", page{Title: "Connection polling", Nav: "admin-connections",
		Data: map[string]any{"ID": r.URL.Query().Get("id")}})
}

func (k *Console) adminTuneConnection(w http.ResponseWriter, r *http.Request) {
	id := strings.TrimSpace(r.PostFormValue("connectionId"))
	to := "/console/admin/connections?id=" + url.QueryEscape(id)
	if k.cfg.ConnectionAdmin == nil {
		back(w, r, to, models.Errorf(models.ErrCodeUnavailable, "Connections are not enabled on this process."), "")
		return
	}
	if id == "" {
		back(w, r, to, models.FieldError("connectionId", "Enter a connection id (con_…)."), "")
		return
	}
	v, err := k.cfg.ConnectionAdmin.AdminUpdatePollInterval(r.Context(), id, strings.TrimSpace(r.PostFormValue("pollInterval")))
	if err != nil {
		back(w, r, to, err, "")
		return
	}
	back(w, r, to, nil, "Poll interval of "+v.ID+" is now "+v.PollInterval+".")
}

// durationText renders an account's interval ("12h", "15m"); 0 is the
// deployment's setting.
func durationText(d time.Duration) string {
	if d == 0 {
		return "deployment default"
	}
	s := d.String()
	for _, suf := range []string{"m0s", "h0m"} {
		if len(s) > len(suf) && strings.HasSuffix(s, suf) {
			s = s[:len(s)-len(suf)+1]
		}
	}
	return s
}

package console

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/tributary/tributary/forwarding"
	"github.com/tributary/tributary/models"
	"github.com/tributary/tributary/sync/connections"
)

// page is what every template gets.
type page struct {
	Title   string
	Nav     string
	Account string
	// Admin is true for a visitor signed in with an admin key.
	Admin  bool
	CSRF   string
	Notice string
	Error  string
	Data   any
}

func parsePages() (map[string]*template.Template, error) {
	funcs := template.FuncMap{
		"when": func(t any) string {
			switch v := t.(type) {
			case time.Time:
				if v.IsZero() {
					return "—"
				}
				return v.UTC().Format("2006-01-02 15:04:05")
			case *time.Time:
				if v == nil {
					return "—"
				}
				return v.UTC().Format("2006-01-02 15:04:05")
			}
			return "—"
		},
		"join": strings.Join,
		"dur":  durationText,
		"deref": func(s *string) string {
			if s == nil {
				return ""
			}
			return *s
		},
	}
	out := map[string]*template.Template{}
	for _, name := range []string{"login", "error", "webhooks", "deliveries", "dead-letters", "connections", "events", "connect", "admin-accounts", "admin-account", "admin-connections"} {
		t, err := template.New("layout.html").Funcs(funcs).ParseFS(assets, "assets/layout.html", "assets/"+name+".html")
		if err != nil {
			return nil, fmt.Errorf("console template %s: %w", name, err)
		}
		out[name] = t
	}
	return out, nil
}

func (k *Console) render(w http.ResponseWriter, r *http.Request, status int, name string, p page) {
	if v := visitorOf(r); v.principal.Role != "" {
		p.Account, p.CSRF = v.principal.AccountID, v.csrf
		if v.principal.Role == models.RoleAdmin {
			p.Account, p.Admin = "admin", true
		}
	}
	if p.Notice == "" {
		p.Notice = r.URL.Query().Get("notice")
	}
	if p.Error == "" {
		p.Error = r.URL.Query().Get("error")
	}
	var buf bytes.Buffer
	if err := k.pages[name].Execute(&buf, p); err != nil {
		k.cfg.Logger.Error("console: render", "page", name, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// back redirects to path with a notice or an error for the next page.
func back(w http.ResponseWriter, r *http.Request, path string, err error, notice string) {
	q := url.Values{}
	if err != nil {
		q.Set("error", message(err))
	} else if notice != "" {
		q.Set("notice", notice)
	}
	sep := "?"
	if strings.Contains(path, "?") {
		sep = "&"
	}
	http.Redirect(w, r, path+sep+q.Encode(), http.StatusSeeOther)
}

// message is what a person is shown of err: the contract's message, never
// internals.
func message(err error) string {
	var e *models.Error
	if errors.As(err, &e) {
		return e.Message
	}
	return "Something went wrong; see the server log."
}

func acc(r *http.Request) string { return visitorOf(r).principal.AccountID }

// webhookRow is one row of the webhooks table.
type webhookRow struct {
	*forwarding.Subscription
	Status string
	Stats  *forwarding.Stats
}

func (k *Console) webhooks(w http.ResponseWriter, r *http.Request) {
	subs, _, err := k.cfg.Webhooks.ListSubscriptions(r.Context(), acc(r), 200, "")
	if err != nil {
		k.fail(w, r, err)
		return
	}
	rows := make([]webhookRow, 0, len(subs))
	for _, s := range subs {
		st, err := k.cfg.Webhooks.SubscriptionStats(r.Context(), acc(r), s.ID)
		if err != nil {
			k.fail(w, r, err)
			return
		}
		status := "active"
		switch {
		case s.DisabledReason != "":
			status = "disabled"
		case !s.Active:
			status = "paused"
		case s.CircuitOpenUntil != nil && s.CircuitOpenUntil.After(k.cfg.Now()):
			status = "circuit open"
		}
		rows = append(rows, webhookRow{Subscription: s, Status: status, Stats: st})
	}
	k.render(w, r, http.StatusOK, "webhooks", page{Title: "Webhooks", Nav: "webhooks",
		Data: map[string]any{"Rows": rows, "Topics": models.Topics}})
}

func (k *Console) fail(w http.ResponseWriter, r *http.Request, err error) {
	k.cfg.Logger.Error("console", "path", r.URL.Path, "err", err)
	k.render(w, r, http.StatusInternalServerError, "error", page{Title: "Error", Error: message(err)})
}

func (k *Console) createWebhook(w http.ResponseWriter, r *http.Request) {
	addr := strings.TrimSpace(r.PostFormValue("address"))
	topics := r.PostForm["topic"]
	if extra := strings.TrimSpace(r.PostFormValue("topicPattern")); extra != "" {
		topics = append(topics, strings.Fields(strings.ReplaceAll(extra, ",", " "))...)
	}
	in := forwarding.SubscriptionInput{Address: &addr, Topic: &topics,
		Signing: &forwarding.SigningInput{Scheme: r.PostFormValue("scheme"), Secret: strings.TrimSpace(r.PostFormValue("secret"))}}
	sub, err := k.cfg.Webhooks.CreateSubscription(r.Context(), acc(r), in)
	if err != nil {
		back(w, r, "/console/webhooks", err, "")
		return
	}
	back(w, r, "/console/webhooks", nil, "Registered "+sub.Address+" ("+sub.ID+").")
}

func (k *Console) testWebhook(w http.ResponseWriter, r *http.Request) {
	topic := r.PostFormValue("topic")
	att, evID, err := k.cfg.Webhooks.SendTest(r.Context(), acc(r), r.PathValue("id"), topic)
	if err != nil {
		back(w, r, "/console/webhooks", err, "")
		return
	}
	if att.Error != "" || att.StatusCode < 200 || att.StatusCode > 299 {
		back(w, r, "/console/webhooks", models.Errorf(models.ErrCodeInvalid, "Test %s failed: status %d in %d ms %s", evID, att.StatusCode, att.ResponseTimeMs, att.Error), "")
		return
	}
	back(w, r, "/console/webhooks", nil, fmt.Sprintf("Test %s delivered: status %d in %d ms.", evID, att.StatusCode, att.ResponseTimeMs))
}

func (k *Console) setActive(active bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		sub, err := k.cfg.Webhooks.UpdateSubscription(r.Context(), acc(r), r.PathValue("id"), forwarding.SubscriptionInput{Active: &active})
		if err != nil {
			back(w, r, "/console/webhooks", err, "")
			return
		}
		verb := "Paused"
		if active {
			verb = "Resumed"
		}
		back(w, r, "/console/webhooks", nil, verb+" "+sub.Address+".")
	}
}

func (k *Console) deleteWebhook(w http.ResponseWriter, r *http.Request) {
	err := k.cfg.Webhooks.DeleteSubscription(r.Context(), acc(r), r.PathValue("id"))
	back(w, r, "/console/webhooks", err, "Deleted.")
}

func (k *Console) deliveries(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f := forwarding.DeliveryFilter{WebhookID: q.Get("webhookId"), Status: q.Get("status"), EventID: q.Get("eventId"),
		Topic: q.Get("topic"), ConnectionID: q.Get("connectionId")}
	p := page{Title: "Delivery history", Nav: "deliveries"}
	// since / until come from datetime-local inputs (UTC) or RFC 3339.
	for _, b := range []struct {
		name string
		dst  *time.Time
	}{{"since", &f.Since}, {"until", &f.Until}} {
		if v := q.Get(b.name); v != "" {
			t, err := time.Parse(time.RFC3339, v)
			if err != nil {
				t, err = time.Parse("2006-01-02T15:04", v)
			}
			if err != nil {
				p.Error = b.name + " must be a time like 2026-11-30T10:00"
				continue
			}
			*b.dst = t
		}
	}
	list, next, err := k.cfg.Webhooks.ListDeliveries(r.Context(), acc(r), f, 50, q.Get("cursor"))
	if err != nil {
		p.Error = message(err)
	}
	var sub *forwarding.Subscription
	if f.WebhookID != "" {
		sub, _ = k.cfg.Webhooks.GetSubscription(r.Context(), acc(r), f.WebhookID)
	}
	p.Data = map[string]any{"Deliveries": list, "Next": next, "Filter": f, "Webhook": sub, "Since": q.Get("since"), "Until": q.Get("until"),
		"Statuses": []string{models.DeliverySucceeded, models.DeliveryFailed, models.DeliveryPending, models.DeliveryDead}}
	k.render(w, r, http.StatusOK, "deliveries", p)
}

func (k *Console) resend(w http.ResponseWriter, r *http.Request) {
	d, err := k.cfg.Webhooks.Resend(r.Context(), acc(r), r.PathValue("id"))
	to := "/console/deliveries"
	if wh := r.PostFormValue("webhookId"); wh != "" {
		to += "?webhookId=" + url.QueryEscape(wh)
	}
	if err != nil {
		back(w, r, to, err, "")
		return
	}
	back(w, r, to, nil, "Queued again as "+d.ID+".")
}

func (k *Console) deadLetters(w http.ResponseWriter, r *http.Request) {
	list, next, err := k.cfg.Webhooks.DeadLetters(r.Context(), acc(r), r.URL.Query().Get("webhookId"), 100, r.URL.Query().Get("cursor"))
	if err != nil {
		k.fail(w, r, err)
		return
	}
	k.render(w, r, http.StatusOK, "dead-letters", page{Title: "Dead letters", Nav: "dead-letters",
		Data: map[string]any{"Deliveries": list, "Next": next}})
}

func (k *Console) replayOne(w http.ResponseWriter, r *http.Request) {
	err := k.cfg.Webhooks.Replay(r.Context(), acc(r), r.PathValue("id"))
	back(w, r, "/console/dead-letters", err, "Replayed 1 dead letter.")
}

func (k *Console) replayAll(w http.ResponseWriter, r *http.Request) {
	n, err := k.cfg.Webhooks.ReplayAll(r.Context(), acc(r), r.PostFormValue("webhookId"))
	back(w, r, "/console/dead-letters", err, fmt.Sprintf("Replayed %d dead letters.", n))
}

func (k *Console) connectionsPage(w http.ResponseWriter, r *http.Request) {
	p := page{Title: "Connections", Nav: "connections"}
	var list []connections.View
	if k.cfg.Connections == nil {
		p.Error = "Connections are not enabled on this process."
	} else {
		var err error
		if list, _, err = k.cfg.Connections.List(r.Context(), acc(r), r.URL.Query().Get("userId"), 200, ""); err != nil {
			k.fail(w, r, err)
			return
		}
	}
	p.Data = map[string]any{"Connections": list}
	k.render(w, r, http.StatusOK, "connections", p)
}

func (k *Console) syncConnection(w http.ResponseWriter, r *http.Request) {
	if k.cfg.Connections == nil {
		back(w, r, "/console/connections", models.Errorf(models.ErrCodeUnavailable, "Connections are not enabled on this process."), "")
		return
	}
	err := k.cfg.Connections.SyncNow(r.Context(), acc(r), r.PathValue("id"))
	back(w, r, "/console/connections", err, "Sync started.")
}

func (k *Console) setInterval(w http.ResponseWriter, r *http.Request) {
	if k.cfg.Connections == nil {
		back(w, r, "/console/connections", models.Errorf(models.ErrCodeUnavailable, "Connections are not enabled on this process."), "")
		return
	}
	v, err := k.cfg.Connections.UpdatePollInterval(r.Context(), acc(r), r.PathValue("id"), strings.TrimSpace(r.PostFormValue("pollInterval")))
	back(w, r, "/console/connections", err, "Poll interval of "+v.ID+" is now "+v.PollInterval+".")
}

func (k *Console) eventsPage(w http.ResponseWriter, r *http.Request) {
	k.render(w, r, http.StatusOK, "events", page{Title: "Events", Nav: "events"})
}

// eventsJSON feeds the live tail: the events after ?after= (the newest 50
// pages forward from the start when empty).
func (k *Console) eventsJSON(w http.ResponseWriter, r *http.Request) {
	limit := 100
	if n, err := strconv.Atoi(r.URL.Query().Get("limit")); err == nil && n > 0 && n <= 500 {
		limit = n
	}
	evs, next, err := k.cfg.Webhooks.ListEvents(r.Context(), acc(r), r.URL.Query().Get("after"), r.URL.Query().Get("topic"), limit)
	w.Header().Set("Content-Type", "application/json")
	if err != nil {
		w.WriteHeader(http.StatusBadRequest)
		_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]string{"code": "invalid_request", "message": message(err)}})
		return
	}
	if evs == nil {
		evs = []json.RawMessage{}
	}
	_ = json.NewEncoder(w).Encode(map[string]any{"data": evs, "nextCursor": next})
}

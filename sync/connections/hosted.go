package connections

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"time"

	"gorm.io/gorm"

	"github.com/tributary/tributary/connectors"
	"github.com/tributary/tributary/models"
)

// Hosted is a connect session as the hosted connect page (/connect/{token})
// shows it to the end user.
type Hosted struct {
	// App is the app the ISV chose ("" = the end user picks from Apps).
	App       string
	UserID    string
	UserName  string
	Apps      []connectors.Info
	ExpiresAt time.Time
}

// openHosted loads the unused, unexpired session of a connectUrl token.
func (s *Service) openHosted(ctx context.Context, token string) (*models.ConnectSession, error) {
	if token == "" || len(token) > 100 {
		return nil, errSession
	}
	var cs models.ConnectSession
	err := s.db.WithContext(ctx).Where("start_token_hash = ?", tokenHash(token)).Take(&cs).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, errSession
	}
	if err != nil {
		return nil, fmt.Errorf("load connect session: %w", err)
	}
	if cs.UsedAt != nil || !cs.ExpiresAt.After(s.clock()) {
		return nil, errSession
	}
	return &cs, nil
}

// Hosted answers what the connect page of token shows.
func (s *Service) Hosted(ctx context.Context, token string) (Hosted, error) {
	cs, err := s.openHosted(ctx, token)
	if err != nil {
		return Hosted{}, err
	}
	h := Hosted{App: cs.App, UserID: cs.UserID, UserName: cs.UserName, ExpiresAt: cs.ExpiresAt}
	lister, _ := s.apps.(interface{ List() []connectors.Info })
	if lister != nil {
		for _, info := range lister.List() {
			if cs.App == "" || info.Name == cs.App {
				h.Apps = append(h.Apps, info)
			}
		}
	} else if a, ok := s.apps.Get(cs.App); ok {
		h.Apps = append(h.Apps, a.Info())
	}
	return h, nil
}

// ChooseApp records the end user's pick on the connect page. It answers
// true for an OAuth2 app: the page then sends the browser to
// /oauth/start/{token}, which binds the flow to it and goes to the provider.
func (s *Service) ChooseApp(ctx context.Context, token, app string) (oauth bool, err error) {
	cs, err := s.openHosted(ctx, token)
	if err != nil {
		return false, err
	}
	if cs.App != "" && cs.App != app {
		return false, models.FieldError("app", "this connect link is for %s", cs.App)
	}
	a, err := s.appOf(app)
	if err != nil {
		return false, err
	}
	if cs.App == "" {
		res := s.db.WithContext(ctx).Model(&models.ConnectSession{}).Where("id = ? AND app = '' AND used_at IS NULL", cs.ID).Update("app", app)
		if res.Error != nil {
			return false, fmt.Errorf("choose connect app: %w", res.Error)
		}
	}
	_, oauth = a.(connectors.OAuthApp)
	return oauth, nil
}

// ConnectWithCredentials completes a connect session of a credentials app
// (keys, or the sandbox's mode) from the connect page. The session is
// claimed first so that two submissions cannot both connect; a refusal by
// the app gives it back so the end user can correct the form. It returns
// where to send the end user: the session's redirectUrl with
// ?connectionId=con_….
func (s *Service) ConnectWithCredentials(ctx context.Context, token, app string, creds map[string]string) (View, string, error) {
	if _, err := s.ChooseApp(ctx, token, app); err != nil {
		return View{}, "", err
	}
	cs, err := s.openHosted(ctx, token)
	if err != nil {
		return View{}, "", err
	}
	now := s.clock()
	res := s.db.WithContext(ctx).Model(&models.ConnectSession{}).Where("id = ? AND used_at IS NULL", cs.ID).Update("used_at", now)
	if res.Error != nil {
		return View{}, "", fmt.Errorf("claim connect session: %w", res.Error)
	}
	if res.RowsAffected == 0 {
		return View{}, "", errSession
	}
	v, err := s.Create(ctx, cs.AccountID, CreateInput{App: app, UserID: cs.UserID, UserName: cs.UserName, Credentials: creds})
	if err != nil {
		if rerr := s.db.WithContext(ctx).Model(&models.ConnectSession{}).Where("id = ?", cs.ID).Update("used_at", nil).Error; rerr != nil {
			return View{}, "", errors.Join(err, fmt.Errorf("release connect session: %w", rerr))
		}
		return View{}, "", err
	}
	if err := s.db.WithContext(ctx).Model(&models.ConnectSession{}).Where("id = ?", cs.ID).Update("connection_id", v.ID).Error; err != nil {
		return View{}, "", fmt.Errorf("record connect session's connection: %w", err)
	}
	return v, withQuery(cs.RedirectURL, "connectionId", v.ID), nil
}

func withQuery(raw, k, v string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return raw
	}
	q := u.Query()
	q.Set(k, v)
	u.RawQuery = q.Encode()
	return u.String()
}

// createHosted stores a session the end user completes on the hosted
// connect page: one without an app (they pick) or of a credentials app.
func (s *Service) createHosted(ctx context.Context, accountID string, in SessionInput) (Session, error) {
	if err := checkUser(in.UserID, in.UserName); err != nil {
		return Session{}, err
	}
	if err := s.checkRedirectURL(ctx, accountID, in.RedirectURL); err != nil {
		return Session{}, err
	}
	if s.external == "" {
		return Session{}, models.Errorf(models.ErrCodeUnavailable, "this deployment has no public URL for the connect page")
	}
	state, err := randomState()
	if err != nil {
		return Session{}, err
	}
	startToken, err := randomState()
	if err != nil {
		return Session{}, err
	}
	now := s.clock()
	cs := &models.ConnectSession{
		ID: models.NewID(models.PrefixConnect), AccountID: accountID, App: in.App, UserID: in.UserID,
		UserName: in.UserName, RedirectURL: in.RedirectURL, State: state, Params: "{}",
		ExpiresAt: now.Add(SessionLifetime), CreatedAt: now, StartTokenHash: tokenHash(startToken),
	}
	cs.VerifierEnc = s.box.SealString("", cs.ID)
	if err := s.db.WithContext(ctx).Create(cs).Error; err != nil {
		return Session{}, fmt.Errorf("create connect session: %w", err)
	}
	return Session{ID: cs.ID, ConnectURL: s.external + "/connect/" + startToken, ExpiresAt: cs.ExpiresAt}, nil
}

package connections

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"gorm.io/gorm"

	"github.com/tributary/tributary/connectors"
	"github.com/tributary/tributary/models"
)

// CreateInput is a direct connection: credentials in the request body.
type CreateInput struct {
	App         string
	UserID      string
	UserName    string
	Credentials map[string]string
	// PollInterval overrides the account default ("" = none); not below the floor.
	PollInterval string
	// EmitBackfill emits the first sync's records as created events.
	EmitBackfill bool
	// IncludeRaw adds the provider's raw record to every event as remoteData.
	IncludeRaw bool
}

// newConnection is what both connect paths hand to insert.
type newConnection struct {
	accountID    string
	app          connectors.Connector
	userID       string
	userName     string
	credentials  map[string]string
	externalID   string
	metadata     map[string]string
	pollInterval time.Duration
	emitBackfill bool
	includeRaw   bool
	// sessionID is the connect session to mark with the new connection id.
	sessionID string
}

func checkUser(userID, userName string) error {
	if strings.TrimSpace(userID) == "" {
		return models.FieldError("userId", "userId is required: your identifier of the end user")
	}
	if len(userID) > 255 {
		return models.FieldError("userId", "userId is longer than 255 characters")
	}
	if len(userName) > 255 {
		return models.FieldError("userName", "userName is longer than 255 characters")
	}
	return nil
}

// Create connects an end user to an app with credentials: they are
// validated with the provider, the app's native webhooks are subscribed, and
// the connection is stored (credentials sealed) together with a
// connection/created event. Its first poll is due now.
func (s *Service) Create(ctx context.Context, accountID string, in CreateInput) (View, error) {
	app, err := s.appOf(in.App)
	if err != nil {
		return View{}, err
	}
	capp, ok := app.(connectors.CredentialsApp)
	if !ok {
		return View{}, models.FieldError("app", "app %q connects through OAuth2: create a connect session with POST /v1/connect-sessions", in.App)
	}
	if err := checkUser(in.UserID, in.UserName); err != nil {
		return View{}, err
	}
	iv, err := s.intervalsOf(ctx, accountID)
	if err != nil {
		return View{}, err
	}
	d, err := parseInterval(in.PollInterval, iv.floor())
	if err != nil {
		return View{}, err
	}
	creds := in.Credentials
	if creds == nil {
		creds = map[string]string{}
	}
	externalID, meta, err := capp.ValidateCredentials(ctx, creds)
	if err != nil {
		return View{}, providerRefusal(in.App, err)
	}
	return s.insert(ctx, newConnection{
		accountID: accountID, app: app, userID: in.UserID, userName: in.UserName, credentials: creds,
		externalID: externalID, metadata: meta, pollInterval: d, emitBackfill: in.EmitBackfill, includeRaw: in.IncludeRaw,
	}, iv)
}

// insert subscribes native webhooks when the app has them, then stores the
// connection and publishes connection/created in one transaction. When the
// transaction fails the subscription is undone (best effort).
//
// Connecting the same provider account again for the same user (same app,
// userId and ExternalID) re-authorizes the existing connection instead of
// creating a second one that would poll the same data: its credentials are
// replaced and a needs_reauth connection becomes active and due now.
func (s *Service) insert(ctx context.Context, n newConnection, iv intervals) (View, error) {
	now := s.clock()
	c := &models.Connection{
		ID: models.NewID(models.PrefixConnection), AccountID: n.accountID, App: n.app.Info().Name,
		UserID: n.userID, UserName: n.userName, Status: models.ConnectionActive, ExternalID: n.externalID,
		PollInterval: n.pollInterval, NextSyncAt: now, Cursors: "{}", EmitBackfill: n.emitBackfill,
		IncludeRaw: n.includeRaw, CreatedAt: now, UpdatedAt: now,
	}
	existing, err := s.findReconnect(ctx, c)
	if err != nil {
		return View{}, err
	}
	if existing != nil {
		c.ID = existing.ID
	}
	if c.ExternalID == "" {
		c.ExternalID = c.ID
	}
	meta := map[string]string{}
	for k, v := range n.metadata {
		meta[k] = v
	}
	if c.CredentialsEnc, err = s.sealCredentials(c.ID, n.credentials); err != nil {
		return View{}, err
	}

	sub, subscribes := n.app.(connectors.Subscriber)
	var conn *connectors.Conn
	if subscribes {
		if s.external == "" {
			return View{}, models.Errorf(models.ErrCodeUnavailable, "this deployment has no public URL for %s webhooks", c.App)
		}
		c.Metadata = mustJSON(meta)
		if conn, err = s.openWith(ctx, c, n.credentials); err != nil {
			return View{}, err
		}
		got, err := sub.Subscribe(ctx, conn, s.InboundURL(c.App))
		if err != nil {
			return View{}, models.Errorf(models.ErrCodeUnprocessable, "cannot subscribe to %s webhooks: %v", c.App, err)
		}
		for k, v := range got {
			meta[k] = v
		}
	}
	c.Metadata = mustJSON(meta)

	if existing != nil {
		return s.reauthorize(ctx, c, n, iv)
	}
	ev, err := s.systemEvent(c, iv, models.TopicConnectionCreated, models.UpdateCreated)
	if err != nil {
		return View{}, err
	}
	err = s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := tx.Create(c).Error; err != nil {
			return fmt.Errorf("insert connection: %w", err)
		}
		if err := linkSession(tx, n.sessionID, c.ID); err != nil {
			return err
		}
		if err := s.publisher.Publish(ctx, tx, n.accountID, ev); err != nil {
			return fmt.Errorf("publish %s: %w", models.TopicConnectionCreated, err)
		}
		return nil
	})
	if err != nil {
		if subscribes {
			conn.Metadata = meta
			if uerr := sub.Unsubscribe(context.WithoutCancel(ctx), conn); uerr != nil {
				s.log.WarnContext(ctx, "undo webhook subscription failed", "app", c.App, "err", uerr)
			}
		}
		return View{}, err
	}
	return toView(c, iv), nil
}

// findReconnect returns the account's connection of the same user to the
// same provider account, if any.
func (s *Service) findReconnect(ctx context.Context, c *models.Connection) (*models.Connection, error) {
	if c.ExternalID == "" {
		return nil, nil
	}
	var rows []models.Connection
	err := s.db.WithContext(ctx).Where("account_id = ? AND app = ? AND user_id = ? AND external_id = ?",
		c.AccountID, c.App, c.UserID, c.ExternalID).Order("id").Limit(1).Find(&rows).Error
	if err != nil {
		return nil, fmt.Errorf("find existing connection: %w", err)
	}
	if len(rows) == 0 {
		return nil, nil
	}
	return &rows[0], nil
}

// reauthorize stores new credentials on an existing connection; one that
// needed re-authorization becomes active and due now.
func (s *Service) reauthorize(ctx context.Context, c *models.Connection, n newConnection, iv intervals) (View, error) {
	now := s.clock()
	set := map[string]any{"credentials_enc": c.CredentialsEnc, "metadata": c.Metadata, "updated_at": now}
	if n.userName != "" {
		set["user_name"] = n.userName
	}
	if n.pollInterval > 0 {
		set["poll_interval"], set["poll_interval_by_admin"] = n.pollInterval, false
	}
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		res := tx.Model(&models.Connection{}).Where("id = ?", c.ID).Updates(set)
		if res.Error != nil {
			return fmt.Errorf("re-authorize %s: %w", c.ID, res.Error)
		}
		if res.RowsAffected == 0 {
			return models.Errorf(models.ErrCodeConflict, "connection %s was deleted meanwhile; connect again", c.ID)
		}
		err := tx.Model(&models.Connection{}).Where("id = ? AND status = ?", c.ID, models.ConnectionNeedsReauth).
			Updates(map[string]any{"status": models.ConnectionActive, "last_error": "", "next_sync_at": now}).Error
		if err != nil {
			return fmt.Errorf("reactivate %s: %w", c.ID, err)
		}
		return linkSession(tx, n.sessionID, c.ID)
	})
	if err != nil {
		return View{}, err
	}
	fresh, err := s.byID(ctx, c.ID)
	if err != nil {
		return View{}, err
	}
	return toView(fresh, iv), nil
}

func linkSession(tx *gorm.DB, sessionID, connectionID string) error {
	if sessionID == "" {
		return nil
	}
	if err := tx.Model(&models.ConnectSession{}).Where("id = ?", sessionID).
		Update("connection_id", connectionID).Error; err != nil {
		return fmt.Errorf("link connect session: %w", err)
	}
	return nil
}

// providerRefusal turns a ValidateCredentials error into the caller's error:
// coded errors pass, an unreachable or rate-limiting provider is
// unavailable, anything else means the credentials were refused.
func providerRefusal(app string, err error) error {
	var coded *models.Error
	if errors.As(err, &coded) {
		return err
	}
	var pe *connectors.ProviderError
	var rl *connectors.RateLimitedError
	if errors.As(err, &rl) || (errors.As(err, &pe) && (pe.Temporary || pe.StatusCode >= 500)) {
		return models.Errorf(models.ErrCodeUnavailable, "%s could not check the credentials now (%v); try again later", app, err)
	}
	return models.FieldError("credentials", "%s rejected the credentials: %v", app, err)
}

func (s *Service) sealCredentials(id string, creds map[string]string) ([]byte, error) {
	raw, err := json.Marshal(creds)
	if err != nil {
		return nil, fmt.Errorf("marshal credentials: %w", err)
	}
	return s.box.Seal(raw, []byte(id)), nil
}

func (s *Service) openCredentials(c *models.Connection) (map[string]string, error) {
	creds := map[string]string{}
	if len(c.CredentialsEnc) == 0 {
		return creds, nil
	}
	raw, err := s.box.Open(c.CredentialsEnc, []byte(c.ID))
	if err != nil {
		return nil, fmt.Errorf("credentials of %s: %w", c.ID, err)
	}
	if err := json.Unmarshal(raw, &creds); err != nil {
		return nil, fmt.Errorf("credentials of %s: %w", c.ID, err)
	}
	return creds, nil
}

func mustJSON(m map[string]string) string {
	if len(m) == 0 {
		return "{}"
	}
	b, _ := json.Marshal(m)
	return string(b)
}

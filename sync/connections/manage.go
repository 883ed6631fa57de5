package connections

import (
	"context"
	"errors"
	"fmt"
	"time"

	"gorm.io/gorm"

	"github.com/tributary/tributary/connectors"
	"github.com/tributary/tributary/models"
	"github.com/tributary/tributary/sync/reconcile"
)

// Get returns an account's connection row; another account's id is not_found.
func (s *Service) Get(ctx context.Context, accountID, id string) (*models.Connection, error) {
	var c models.Connection
	err := s.db.WithContext(ctx).Where("id = ? AND account_id = ?", id, accountID).Take(&c).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, notFound(id)
	}
	if err != nil {
		return nil, fmt.Errorf("get connection %s: %w", id, err)
	}
	return &c, nil
}

// byID loads a connection of any account (admin routes, Open's callers).
func (s *Service) byID(ctx context.Context, id string) (*models.Connection, error) {
	var c models.Connection
	err := s.db.WithContext(ctx).Where("id = ?", id).Take(&c).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, notFound(id)
	}
	if err != nil {
		return nil, fmt.Errorf("get connection %s: %w", id, err)
	}
	return &c, nil
}

// View returns an account's connection as the API shows it.
func (s *Service) View(ctx context.Context, accountID, id string) (View, error) {
	c, err := s.Get(ctx, accountID, id)
	if err != nil {
		return View{}, err
	}
	return s.viewOf(ctx, c)
}

func (s *Service) viewOf(ctx context.Context, c *models.Connection) (View, error) {
	iv, err := s.intervalsOf(ctx, c.AccountID)
	if err != nil {
		return View{}, err
	}
	return toView(c, iv), nil
}

// List pages through an account's connections in id order, optionally only
// those of one userId. It returns the page and the cursor of the next one
// ("" when this is the last).
func (s *Service) List(ctx context.Context, accountID, userID string, limit int, cursor string) ([]View, string, error) {
	if limit <= 0 || limit > 500 {
		limit = 50
	}
	if cursor != "" && !models.HasPrefix(cursor, models.PrefixConnection) {
		return nil, "", &models.Error{Code: models.ErrCodeInvalid, Field: "cursor", Message: "cursor is not one this API returned"}
	}
	q := s.db.WithContext(ctx).Where("account_id = ?", accountID)
	if userID != "" {
		q = q.Where("user_id = ?", userID)
	}
	if cursor != "" {
		q = q.Where("id > ?", cursor)
	}
	var rows []models.Connection
	if err := q.Order("id").Limit(limit + 1).Find(&rows).Error; err != nil {
		return nil, "", fmt.Errorf("list connections: %w", err)
	}
	next := ""
	if len(rows) > limit {
		rows = rows[:limit]
		next = rows[limit-1].ID
	}
	iv, err := s.intervalsOf(ctx, accountID)
	if err != nil {
		return nil, "", err
	}
	out := make([]View, 0, len(rows))
	for i := range rows {
		out = append(out, toView(&rows[i], iv))
	}
	return out, next, nil
}

// UpdatePollInterval sets an account's connection's poll interval override
// ("" clears it), refusing values below the ISV floor (the account's, else
// the deployment's); the error names the floor that applies.
func (s *Service) UpdatePollInterval(ctx context.Context, accountID, id, interval string) (View, error) {
	c, err := s.Get(ctx, accountID, id)
	if err != nil {
		return View{}, err
	}
	iv, err := s.intervalsOf(ctx, accountID)
	if err != nil {
		return View{}, err
	}
	d, err := parseInterval(interval, iv.floor())
	if err != nil {
		return View{}, err
	}
	return s.setInterval(ctx, c, d, false, iv)
}

// AdminUpdatePollInterval sets any connection's poll interval override ("" clears
// it). It is applied as given — below the account floor too — down to the
// deployment's minimum for admin-set intervals.
func (s *Service) AdminUpdatePollInterval(ctx context.Context, id, interval string) (View, error) {
	c, err := s.byID(ctx, id)
	if err != nil {
		return View{}, err
	}
	d, err := parseInterval(interval, s.policy.AdminLimit())
	if err != nil {
		return View{}, err
	}
	iv, err := s.intervalsOf(ctx, c.AccountID)
	if err != nil {
		return View{}, err
	}
	return s.setInterval(ctx, c, d, d > 0, iv)
}

// setInterval stores the override and, when its last poll plus the new
// effective interval is earlier than the planned poll, moves the poll there
// (now at the earliest; never during a running poll, whose lease NextSyncAt
// is).
func (s *Service) setInterval(ctx context.Context, c *models.Connection, d time.Duration, byAdmin bool, iv intervals) (View, error) {
	now := s.clock()
	next := *c
	next.PollInterval, next.PollIntervalByAdmin = d, byAdmin
	due := s.dueAt(&next, iv, now)
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		res := tx.Model(&models.Connection{}).Where("id = ?", c.ID).
			Updates(map[string]any{"poll_interval": d, "poll_interval_by_admin": byAdmin, "updated_at": now})
		if res.Error != nil {
			return fmt.Errorf("update poll interval of %s: %w", c.ID, res.Error)
		}
		if res.RowsAffected == 0 {
			return notFound(c.ID)
		}
		return reschedule(tx, c.ID, due)
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

// SyncNow makes an account's connection due for a poll now. A connection
// that needs re-authorization, or whose poll is running (status syncing with
// an unexpired lease), is a conflict.
func (s *Service) SyncNow(ctx context.Context, accountID, id string) error {
	now := s.clock()
	res := s.db.WithContext(ctx).Model(&models.Connection{}).
		Where("id = ? AND account_id = ? AND (status NOT IN ? OR (status = ? AND next_sync_at <= ?))", id, accountID,
			[]string{models.ConnectionNeedsReauth, models.ConnectionSyncing}, models.ConnectionSyncing, now).
		Updates(map[string]any{"next_sync_at": now, "updated_at": now})
	if res.Error != nil {
		return fmt.Errorf("sync now %s: %w", id, res.Error)
	}
	if res.RowsAffected == 1 {
		return nil
	}
	c, err := s.Get(ctx, accountID, id)
	if err != nil {
		return err
	}
	if c.Status == models.ConnectionNeedsReauth {
		return models.Errorf(models.ErrCodeConflict, "connection %s needs re-authorization: connect the user again", id)
	}
	return models.Errorf(models.ErrCodeConflict, "connection %s is syncing now", id)
}

// Delete removes an account's connection, schedules the removal of its
// snapshots (the maintenance job deletes them in batches) and publishes
// connection/deleted, in one transaction; then it removes the provider-side
// webhook subscription (best effort: a failure is logged). Runs and inbound
// processing treat the vanished row as "stop".
func (s *Service) Delete(ctx context.Context, accountID, id string) error {
	c, err := s.Get(ctx, accountID, id)
	if err != nil {
		return err
	}
	iv, err := s.intervalsOf(ctx, accountID)
	if err != nil {
		return err
	}
	ev, err := s.systemEvent(c, iv, models.TopicConnectionDeleted, models.UpdateDeleted)
	if err != nil {
		return err
	}
	// Open before deleting: Unsubscribe needs the credentials.
	var conn *connectors.Conn
	app, _ := s.apps.Get(c.App)
	sub, subscribes := app.(connectors.Subscriber)
	if subscribes {
		if conn, err = s.Open(ctx, c); err != nil {
			s.log.WarnContext(ctx, "cannot open connection to unsubscribe", "connection", id, "err", err)
			subscribes = false
		}
	}
	err = s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		res := tx.Where("id = ? AND account_id = ?", id, accountID).Delete(&models.Connection{})
		if res.Error != nil {
			return fmt.Errorf("delete connection %s: %w", id, res.Error)
		}
		if res.RowsAffected == 0 {
			return notFound(id)
		}
		if err := reconcile.DeleteSnapshots(tx, id, s.now()); err != nil {
			return err
		}
		if err := s.publisher.Publish(ctx, tx, accountID, ev); err != nil {
			return fmt.Errorf("publish %s: %w", models.TopicConnectionDeleted, err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if subscribes {
		if err := sub.Unsubscribe(ctx, conn); err != nil {
			s.log.WarnContext(ctx, "unsubscribe native webhooks failed", "connection", id, "app", c.App, "err", err)
		}
	}
	return nil
}

// dueAt is when c is next polled under iv: its last poll (or now) plus its
// effective interval, now at the earliest.
func (s *Service) dueAt(c *models.Connection, iv intervals, now time.Time) time.Time {
	base := now
	if c.LastSyncAt != nil {
		base = c.LastSyncAt.UTC()
	}
	if due := base.Add(iv.effective(c)); due.After(now) {
		return due
	}
	return now
}

// reschedule moves an idle connection's next poll earlier, to due; a later
// due never postpones the poll already planned (at most one poll at the old
// pace follows). A connection being polled keeps its lease (the scheduler
// computes the next poll from the new settings when the run ends); one in
// error or needing re-authorization keeps its own retry schedule.
func reschedule(tx *gorm.DB, id string, due time.Time) error {
	err := tx.Model(&models.Connection{}).
		Where("id = ? AND status = ? AND lease_token = '' AND next_sync_at > ?", id, models.ConnectionActive, due).
		Update("next_sync_at", due).Error
	if err != nil {
		return fmt.Errorf("reschedule %s: %w", id, err)
	}
	return nil
}

// RescheduleAccount applies an account's changed poll settings (default
// interval, floor) to its idle connections at once: one whose last poll plus
// its new effective interval is earlier than its planned poll is moved there
// (now at the earliest). A longer interval applies from the next poll on.
// It returns how many connections moved.
func (s *Service) RescheduleAccount(ctx context.Context, accountID string) (int, error) {
	iv, err := s.intervalsOf(ctx, accountID)
	if err != nil {
		return 0, err
	}
	now := s.clock()
	moved := 0
	cursor := ""
	for {
		var rows []models.Connection
		q := s.db.WithContext(ctx).Select("id", "account_id", "status", "poll_interval", "poll_interval_by_admin", "last_sync_at", "next_sync_at").
			Where("account_id = ? AND status = ? AND lease_token = '' AND id > ?", accountID, models.ConnectionActive, cursor).
			Order("id").Limit(500)
		if err := q.Find(&rows).Error; err != nil {
			return moved, fmt.Errorf("reschedule account %s: %w", accountID, err)
		}
		for i := range rows {
			c := &rows[i]
			due := s.dueAt(c, iv, now)
			if !c.NextSyncAt.After(due) {
				continue
			}
			if err := reschedule(s.db.WithContext(ctx), c.ID, due); err != nil {
				return moved, err
			}
			moved++
		}
		if len(rows) < 500 {
			return moved, nil
		}
		cursor = rows[len(rows)-1].ID
	}
}

package accounts

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"gorm.io/gorm"

	"github.com/tributary/tributary/models"
)

// lastUsedEvery bounds how often a key's last_used_at is written: at most
// once a minute per key, so authentication stays a read.
const lastUsedEvery = time.Minute

// Key is an API key as its account sees it; the secret is never in it.
type Key struct {
	ID         string     `json:"id"`
	Name       string     `json:"name"`
	Prefix     string     `json:"prefix"`
	CreatedAt  time.Time  `json:"createdAt"`
	LastUsedAt *time.Time `json:"lastUsedAt"`
	RevokedAt  *time.Time `json:"revokedAt,omitempty"`
}

func keyView(r *models.APIKey) Key {
	k := Key{ID: r.ID, Name: r.Name, Prefix: r.Prefix, CreatedAt: r.CreatedAt.UTC(), LastUsedAt: r.LastUsedAt, RevokedAt: r.RevokedAt}
	if k.LastUsedAt != nil {
		t := k.LastUsedAt.UTC()
		k.LastUsedAt = &t
	}
	if k.RevokedAt != nil {
		t := k.RevokedAt.UTC()
		k.RevokedAt = &t
	}
	return k
}

// CreateKey adds an API key to the account; the secret is returned once.
func (s *Service) CreateKey(ctx context.Context, accountID, name string) (Key, string, error) {
	name = strings.TrimSpace(name)
	if len(name) > 200 {
		return Key{}, "", models.FieldError("name", "name is longer than 200 characters")
	}
	if _, err := s.Get(ctx, accountID); err != nil {
		return Key{}, "", err
	}
	row, secret, err := createKey(s.db.WithContext(ctx), models.RoleISV, &accountID, name)
	if err != nil {
		return Key{}, "", err
	}
	return keyView(row), secret, nil
}

// ListKeys pages through the account's API keys, oldest first, revoked ones
// included (with revokedAt).
func (s *Service) ListKeys(ctx context.Context, accountID string, limit int, cursor string) ([]Key, string, error) {
	var rows []models.APIKey
	q := s.db.WithContext(ctx).Where("account_id = ? AND role = ?", accountID, models.RoleISV).Order("id").Limit(limit + 1)
	if cursor != "" {
		q = q.Where("id > ?", cursor)
	}
	if err := q.Find(&rows).Error; err != nil {
		return nil, "", fmt.Errorf("list api keys: %w", err)
	}
	next := ""
	if len(rows) > limit {
		rows = rows[:limit]
		next = rows[limit-1].ID
	}
	out := make([]Key, 0, len(rows))
	for i := range rows {
		out = append(out, keyView(&rows[i]))
	}
	return out, next, nil
}

// RevokeKey revokes one of the account's keys; the next request made with it
// is refused (Authenticate reads revoked_at on every request). Another
// account's key is not found. Revoking twice keeps the first time.
func (s *Service) RevokeKey(ctx context.Context, accountID, keyID string) (Key, error) {
	var row models.APIKey
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := tx.Where("id = ? AND account_id = ? AND role = ?", keyID, accountID, models.RoleISV).Take(&row).Error; err != nil {
			if errors.Is(err, gorm.ErrRecordNotFound) {
				return models.Errorf(models.ErrCodeNotFound, "api key %s not found", keyID)
			}
			return fmt.Errorf("load api key %s: %w", keyID, err)
		}
		if row.RevokedAt != nil {
			return nil
		}
		now := s.now().UTC()
		if err := tx.Model(&models.APIKey{}).Where("id = ? AND revoked_at IS NULL", keyID).Update("revoked_at", now).Error; err != nil {
			return fmt.Errorf("revoke api key %s: %w", keyID, err)
		}
		row.RevokedAt = &now
		return nil
	})
	return keyView(&row), err
}

// touch records the key's use, at most once per lastUsedEvery; a failure is
// logged, never the request's.
func (s *Service) touch(ctx context.Context, row *models.APIKey) {
	now := s.now().UTC()
	if row.LastUsedAt != nil && now.Sub(*row.LastUsedAt) < lastUsedEvery {
		return
	}
	err := s.db.WithContext(ctx).Model(&models.APIKey{}).
		Where("id = ? AND (last_used_at IS NULL OR last_used_at < ?)", row.ID, now.Add(-lastUsedEvery)).
		Update("last_used_at", now).Error
	if err != nil {
		slog.WarnContext(ctx, "record api key use", "key", row.ID, "err", err)
	}
}

// List pages through accounts, oldest first (admin).
func (s *Service) List(ctx context.Context, limit int, cursor string) ([]models.Account, string, error) {
	var rows []models.Account
	q := s.db.WithContext(ctx).Order("id").Limit(limit + 1)
	if cursor != "" {
		q = q.Where("id > ?", cursor)
	}
	if err := q.Find(&rows).Error; err != nil {
		return nil, "", fmt.Errorf("list accounts: %w", err)
	}
	next := ""
	if len(rows) > limit {
		rows = rows[:limit]
		next = rows[limit-1].ID
	}
	return rows, next, nil
}

package sandboxapp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"gorm.io/gorm"

	"github.com/tributary/tributary/connectors/sandbox"
	"github.com/tributary/tributary/models"
	"github.com/tributary/tributary/storage"
)

// Create adds a record of object (fields in the app's own shape) to the
// connection and returns its remote id. In webhook mode the webhook is sent
// after the write commits; when it fails the record stays created (a poll
// still finds it) and the error, naming the remote id, is returned.
func (s *Service) Create(ctx context.Context, accountID, connectionID, object string, fields json.RawMessage) (string, error) {
	conn, err := s.connection(ctx, accountID, connectionID)
	if err != nil {
		return "", err
	}
	if err := checkObject(object); err != nil {
		return "", err
	}
	data, _, err := sandbox.MergeFields(object, nil, fields)
	if err != nil {
		return "", err
	}
	rec := &models.SandboxRecord{ConnectionID: conn.ID, Object: object, RemoteID: models.NewID(models.PrefixSandboxRecord),
		Data: string(data), Version: 1}
	err = s.write(ctx, conn.ID, func(tx *gorm.DB, stamp func(time.Time) (time.Time, error)) error {
		mod, err := stamp(time.Time{})
		if err != nil {
			return err
		}
		rec.ModifiedAt, rec.CreatedAt = mod, mod
		if err := tx.Create(rec).Error; err != nil {
			return fmt.Errorf("insert sandbox %s: %w", object, err)
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	return rec.RemoteID, s.notify(ctx, conn, rec)
}

// Update merges fields into a live record: each given field replaces the
// stored one, null removes it. A patch that changes nothing is not a change
// (no new version, no webhook).
func (s *Service) Update(ctx context.Context, accountID, connectionID, object, remoteID string, fields json.RawMessage) error {
	conn, err := s.connection(ctx, accountID, connectionID)
	if err != nil {
		return err
	}
	if err := sandbox.ValidateFields(object, fields); err != nil {
		return err
	}
	var rec *models.SandboxRecord
	err = s.write(ctx, conn.ID, func(tx *gorm.DB, stamp func(time.Time) (time.Time, error)) error {
		cur, err := live(tx, conn.ID, object, remoteID)
		if err != nil {
			return err
		}
		data, changed, err := sandbox.MergeFields(object, []byte(cur.Data), fields)
		if err != nil || !changed {
			return err
		}
		mod, err := stamp(cur.ModifiedAt)
		if err != nil {
			return err
		}
		cur.Data, cur.Version, cur.ModifiedAt = string(data), cur.Version+1, mod
		if err := save(tx, cur); err != nil {
			return err
		}
		rec = cur
		return nil
	})
	if err != nil || rec == nil {
		return err
	}
	return s.notify(ctx, conn, rec)
}

// Delete deletes a live record. The row stays, flagged deleted with a new
// version, so polls list the deletion and its webhook carries the last state.
func (s *Service) Delete(ctx context.Context, accountID, connectionID, object, remoteID string) error {
	conn, err := s.connection(ctx, accountID, connectionID)
	if err != nil {
		return err
	}
	if err := checkObject(object); err != nil {
		return err
	}
	var rec *models.SandboxRecord
	err = s.write(ctx, conn.ID, func(tx *gorm.DB, stamp func(time.Time) (time.Time, error)) error {
		cur, err := live(tx, conn.ID, object, remoteID)
		if err != nil {
			return err
		}
		mod, err := stamp(cur.ModifiedAt)
		if err != nil {
			return err
		}
		cur.Deleted, cur.Version, cur.ModifiedAt = true, cur.Version+1, mod
		rec = cur
		return save(tx, cur)
	})
	if err != nil {
		return err
	}
	return s.notify(ctx, conn, rec)
}

// write runs fn in a transaction. stamp returns the modification time of
// the change: strictly after floor (the record's current one, read under its
// row lock) and after every time this process stamped on the connection
// (microsecond precision, which both databases keep exactly), even if the
// clock stands still or goes back. No lock is held across the connection:
// writers of one connection commit concurrently (polls list changes with a
// lookback, so a change committed a moment after a later-stamped one is
// still found).
func (s *Service) write(ctx context.Context, connectionID string, fn func(tx *gorm.DB, stamp func(floor time.Time) (time.Time, error)) error) error {
	return s.DB.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		return fn(tx, func(floor time.Time) (time.Time, error) {
			return s.stamp(tx, connectionID, floor)
		})
	})
}

// stamp takes the connection's next modification time from the in-process
// clock, seeding it once per connection from the newest stored change
// (index idx_sandbox_newest), so a restarted process never stamps behind
// what is stored.
func (s *Service) stamp(tx *gorm.DB, connectionID string, floor time.Time) (time.Time, error) {
	s.clockMu.Lock()
	last, seeded := s.clock[connectionID]
	s.clockMu.Unlock()
	if !seeded {
		var newest []time.Time
		err := tx.Raw(`SELECT modified_at FROM sandbox_records WHERE connection_id = ? ORDER BY modified_at DESC LIMIT 1`, connectionID).
			Scan(&newest).Error
		if err != nil {
			return time.Time{}, fmt.Errorf("newest sandbox change of %s: %w", connectionID, err)
		}
		if len(newest) > 0 {
			last = newest[0].UTC()
		}
	}
	s.clockMu.Lock()
	defer s.clockMu.Unlock()
	if s.clock == nil {
		s.clock = map[string]time.Time{}
	}
	if cur := s.clock[connectionID]; cur.After(last) {
		last = cur
	}
	t := s.now().UTC().Truncate(time.Microsecond)
	if !t.After(last) {
		t = last.Add(time.Microsecond)
	}
	if !t.After(floor) {
		t = floor.UTC().Truncate(time.Microsecond).Add(time.Microsecond)
	}
	s.clock[connectionID] = t
	return t, nil
}

// live loads a record that exists and is not deleted.
func live(tx *gorm.DB, connectionID, object, remoteID string) (*models.SandboxRecord, error) {
	if err := checkObject(object); err != nil {
		return nil, err
	}
	var r models.SandboxRecord
	err := storage.ForUpdate(tx).Where("connection_id = ? AND object = ? AND remote_id = ? AND deleted = ?",
		connectionID, object, remoteID, false).Take(&r).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, notFound(object, remoteID)
	}
	if err != nil {
		return nil, fmt.Errorf("load sandbox %s %s: %w", object, remoteID, err)
	}
	return &r, nil
}

func save(tx *gorm.DB, r *models.SandboxRecord) error {
	err := tx.Model(&models.SandboxRecord{}).
		Where("connection_id = ? AND object = ? AND remote_id = ?", r.ConnectionID, r.Object, r.RemoteID).
		Updates(map[string]any{"data": r.Data, "deleted": r.Deleted, "version": r.Version, "modified_at": r.ModifiedAt}).Error
	if err != nil {
		return fmt.Errorf("save sandbox %s %s: %w", r.Object, r.RemoteID, err)
	}
	return nil
}

package sandboxapp

import (
	"context"
	"fmt"
	"time"

	"github.com/tributary/tributary/connectors/sandbox"
	"github.com/tributary/tributary/models"
)

// The sandbox.Store methods: how the sandbox connector reads the app. They
// are scoped by connection id only (the connector holds an opened connection).

func storedAll(rows []models.SandboxRecord) []sandbox.StoredRecord {
	out := make([]sandbox.StoredRecord, 0, len(rows))
	for i := range rows {
		out = append(out, stored(&rows[i]))
	}
	return out
}

// ListChanged implements sandbox.Store: records after (since, afterRemoteID)
// in (modified_at, remote_id) order, deleted ones included.
func (s *Service) ListChanged(ctx context.Context, connectionID, object string, since time.Time, afterRemoteID string, limit int) ([]sandbox.StoredRecord, error) {
	var rows []models.SandboxRecord
	since = since.UTC()
	err := s.DB.WithContext(ctx).
		Where("connection_id = ? AND object = ? AND (modified_at > ? OR (modified_at = ? AND remote_id > ?))",
			connectionID, object, since, since, afterRemoteID).
		Order("modified_at, remote_id").Limit(limit).Find(&rows).Error
	if err != nil {
		return nil, fmt.Errorf("list changed sandbox %s of %s: %w", object, connectionID, err)
	}
	return storedAll(rows), nil
}

// ListLive implements sandbox.Store: live records after afterRemoteID in
// remote_id order.
func (s *Service) ListLive(ctx context.Context, connectionID, object, afterRemoteID string, limit int) ([]sandbox.StoredRecord, error) {
	var rows []models.SandboxRecord
	err := s.DB.WithContext(ctx).
		Where("connection_id = ? AND object = ? AND deleted = ? AND remote_id > ?", connectionID, object, false, afterRemoteID).
		Order("remote_id").Limit(limit).Find(&rows).Error
	if err != nil {
		return nil, fmt.Errorf("list sandbox %s of %s: %w", object, connectionID, err)
	}
	return storedAll(rows), nil
}

// Get implements sandbox.Store.
func (s *Service) Get(ctx context.Context, connectionID, object string, remoteIDs []string) ([]sandbox.StoredRecord, error) {
	if len(remoteIDs) == 0 {
		return nil, nil
	}
	var rows []models.SandboxRecord
	err := s.DB.WithContext(ctx).
		Where("connection_id = ? AND object = ? AND remote_id IN ?", connectionID, object, remoteIDs).
		Find(&rows).Error
	if err != nil {
		return nil, fmt.Errorf("get sandbox %s of %s: %w", object, connectionID, err)
	}
	return storedAll(rows), nil
}

// Latest implements sandbox.Store.
func (s *Service) Latest(ctx context.Context, connectionID, object string) (time.Time, string, error) {
	var rows []models.SandboxRecord
	err := s.DB.WithContext(ctx).Select("modified_at", "remote_id").
		Where("connection_id = ? AND object = ?", connectionID, object).
		Order("modified_at DESC, remote_id DESC").Limit(1).Find(&rows).Error
	if err != nil {
		return time.Time{}, "", fmt.Errorf("latest sandbox %s of %s: %w", object, connectionID, err)
	}
	if len(rows) == 0 {
		return time.Time{}, "", nil
	}
	return rows[0].ModifiedAt.UTC(), rows[0].RemoteID, nil
}

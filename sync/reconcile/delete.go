package reconcile

import (
	"context"
	"errors"
	"fmt"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/tributary/tributary/models"
	"github.com/tributary/tributary/storage"
)

// DeleteSnapshots schedules the removal of every snapshot of a connection,
// inside tx (the transaction that deletes the connection): it records a
// sweep, which SweepSnapshots carries out in batches from the maintenance
// job, so deleting a connection with millions of records stays one short
// request.
func DeleteSnapshots(tx *gorm.DB, connectionID string, now time.Time) error {
	err := tx.Clauses(clause.OnConflict{DoNothing: true}).
		Create(&models.SnapshotSweep{ConnectionID: connectionID, RequestedAt: now.UTC()}).Error
	if err != nil {
		return fmt.Errorf("schedule snapshot removal of %s: %w", connectionID, err)
	}
	return nil
}

// sweepSQL deletes one batch of a connection's snapshots by physical row
// (the primary key's connection_id prefix finds them).
func sweepSQL(db *gorm.DB) string {
	if storage.IsPostgres(db) {
		return `DELETE FROM snapshots WHERE ctid = ANY(ARRAY(SELECT ctid FROM snapshots WHERE connection_id = ? LIMIT ?))`
	}
	return `DELETE FROM snapshots WHERE rowid IN (SELECT rowid FROM snapshots WHERE connection_id = ? LIMIT ?)`
}

// SweepSnapshots deletes the snapshots of connections DeleteSnapshots
// scheduled, at most batch rows per statement (each its own transaction),
// and forgets a sweep once nothing is left. It stops early when ctx ends; the
// next run resumes. It returns how many snapshots it deleted.
func SweepSnapshots(ctx context.Context, db *gorm.DB, batch int) (int64, error) {
	if batch <= 0 {
		batch = 1000
	}
	db = db.WithContext(ctx)
	var total int64
	for {
		var sweeps []models.SnapshotSweep
		if err := db.Order("requested_at").Limit(10).Find(&sweeps).Error; err != nil {
			return total, fmt.Errorf("reconcile: read snapshot sweeps: %w", err)
		}
		if len(sweeps) == 0 {
			return total, nil
		}
		for _, sw := range sweeps {
			for {
				if err := ctx.Err(); err != nil {
					return total, err
				}
				res := db.Exec(sweepSQL(db), sw.ConnectionID, batch)
				if res.Error != nil {
					return total, fmt.Errorf("reconcile: sweep snapshots of %s: %w", sw.ConnectionID, res.Error)
				}
				total += res.RowsAffected
				if res.RowsAffected < int64(batch) {
					break
				}
			}
			if err := db.Where("connection_id = ?", sw.ConnectionID).Delete(&models.SnapshotSweep{}).Error; err != nil && !errors.Is(err, gorm.ErrRecordNotFound) {
				return total, fmt.Errorf("reconcile: end snapshot sweep of %s: %w", sw.ConnectionID, err)
			}
		}
	}
}

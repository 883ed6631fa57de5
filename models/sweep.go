package models

import "time"

// SnapshotSweep asks the maintenance job to delete the snapshots of a deleted
// connection, in batches, outside the request that deleted it.
type SnapshotSweep struct {
	ConnectionID string    `gorm:"primaryKey;size:64"`
	RequestedAt  time.Time `gorm:"not null"`
}

func sweepTables() []any { return []any{&SnapshotSweep{}} }

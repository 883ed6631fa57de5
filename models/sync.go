package models

import "time"

// Snapshot is reconcile's memory of one remote record: the content hash and
// normalized payload last seen, the remote version that produced them, and the
// full-scan generation that last saw the record.
type Snapshot struct {
	ConnectionID string `gorm:"primaryKey;size:64"`
	Object       string `gorm:"primaryKey;size:64"`
	RemoteID     string `gorm:"primaryKey;size:255"`
	// ContentHash is the hex sha256 of the canonical, non-volatile fields.
	ContentHash string `gorm:"size:64;not null"`
	// Payload is the last normalized JSON of the record.
	Payload []byte
	// RemoteUpdatedAt is the remote version of Payload (UTC; zero if unknown).
	RemoteUpdatedAt time.Time `gorm:"not null"`
	// Deleted is true once the record is known to be deleted remotely.
	Deleted bool `gorm:"not null;default:false"`
	// ScanGeneration is the last full-scan generation that saw the record.
	ScanGeneration int64 `gorm:"not null;default:0"`
	UpdatedAt      time.Time
}

// syncTables lists the tables owned by the sync packages.
func syncTables() []any { return []any{&Snapshot{}} }

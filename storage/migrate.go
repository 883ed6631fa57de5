package storage

import (
	"context"
	"fmt"
	"time"

	"gorm.io/gorm"

	"github.com/tributary/tributary/models"
)

// schemaMigration records one applied migration.
type schemaMigration struct {
	Version   int `gorm:"primaryKey;autoIncrement:false"`
	Name      string
	AppliedAt time.Time
}

func (schemaMigration) TableName() string { return "schema_migrations" }

// Migrate applies every pending migration of models.Migrations in one
// transaction under an exclusive lock, so replicas starting at once apply
// each version exactly once; a second run is a no-op. It returns the
// versions it applied.
func Migrate(ctx context.Context, db *gorm.DB) ([]int, error) {
	var applied []int
	err := db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := TxLock(tx, "tributary.migrate"); err != nil {
			return fmt.Errorf("migration lock: %w", err)
		}
		if err := tx.Migrator().AutoMigrate(&schemaMigration{}); err != nil {
			return fmt.Errorf("schema_migrations: %w", err)
		}
		var done []int
		if err := tx.Model(&schemaMigration{}).Pluck("version", &done).Error; err != nil {
			return fmt.Errorf("read applied migrations: %w", err)
		}
		have := map[int]bool{}
		for _, v := range done {
			have[v] = true
		}
		for _, m := range models.Migrations() {
			if have[m.Version] {
				continue
			}
			if err := m.Up(tx); err != nil {
				return fmt.Errorf("migration %d (%s): %w", m.Version, m.Name, err)
			}
			if err := tx.Create(&schemaMigration{Version: m.Version, Name: m.Name, AppliedAt: time.Now().UTC()}).Error; err != nil {
				return fmt.Errorf("record migration %d: %w", m.Version, err)
			}
			applied = append(applied, m.Version)
		}
		return nil
	})
	return applied, err
}

// Pending reports the migrations not yet applied.
func Pending(ctx context.Context, db *gorm.DB) ([]int, error) {
	var done []int
	if db.Migrator().HasTable(&schemaMigration{}) {
		if err := db.WithContext(ctx).Model(&schemaMigration{}).Pluck("version", &done).Error; err != nil {
			return nil, err
		}
	}
	have := map[int]bool{}
	for _, v := range done {
		have[v] = true
	}
	var out []int
	for _, m := range models.Migrations() {
		if !have[m.Version] {
			out = append(out, m.Version)
		}
	}
	return out, nil
}

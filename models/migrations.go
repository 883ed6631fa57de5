package models

import "gorm.io/gorm"

// Migration is one versioned schema change. Versions are applied in order,
// each at most once, recorded in the schema_migrations table.
type Migration struct {
	Version int
	Name    string
	Up      func(tx *gorm.DB) error
}

// Migrations returns every migration in version order. Append new ones; never
// edit one that has shipped.
func Migrations() []Migration {
	return []Migration{
		{Version: 1, Name: "initial schema", Up: func(tx *gorm.DB) error {
			return tx.AutoMigrate(&Account{}, &APIKey{}, &Snapshot{})
		}},
		{Version: 2, Name: "forwarding and capture tables", Up: func(tx *gorm.DB) error {
			return tx.AutoMigrate(allTables()...)
		}},
		{Version: 3, Name: "subscription rate limit", Up: func(tx *gorm.DB) error {
			return tx.AutoMigrate(&Subscription{})
		}},
		{Version: 4, Name: "connection include raw", Up: func(tx *gorm.DB) error {
			return tx.AutoMigrate(&Connection{})
		}},
		{Version: 5, Name: "due deliveries partial index", Up: func(tx *gorm.DB) error {
			// The dispatcher's claim reads due deliveries in next_attempt_at
			// order; a partial index holds only the queued ones, in that order.
			return tx.Exec(`CREATE INDEX IF NOT EXISTS idx_deliveries_queued ON deliveries (next_attempt_at) WHERE status IN ('pending', 'failed')`).Error
		}},
		{Version: 140, Name: "api key name and last use", Up: func(tx *gorm.DB) error {
			return tx.AutoMigrate(&APIKey{})
		}},
		{Version: 180, Name: "connection poll interval set by admin", Up: func(tx *gorm.DB) error {
			if tx.Migrator().HasColumn(&Connection{}, "PollIntervalByAdmin") {
				return nil // created by an earlier AutoMigrate of the current struct
			}
			return tx.Migrator().AddColumn(&Connection{}, "PollIntervalByAdmin")
		}},
	}
}

func allTables() []any {
	var all []any
	all = append(all, accountTables()...)
	all = append(all, forwardingTables()...)
	all = append(all, syncTables()...)
	return all
}

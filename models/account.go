package models

import "time"

// API key roles.
const (
	RoleISV   = "isv"
	RoleAdmin = "admin"
)

// Account is one ISV tenant.
type Account struct {
	ID   string `gorm:"primaryKey;size:40"`
	Name string `gorm:"size:200;not null"`
	// DefaultPollInterval applies to connections without an override (0 = the
	// deployment default, 12h).
	DefaultPollInterval time.Duration `gorm:"not null;default:0"`
	// MinPollInterval is the floor an ISV may set on its connections (0 = the
	// deployment floor).
	MinPollInterval time.Duration `gorm:"not null;default:0"`
	// AllowedRedirectOrigins is the JSON array of origins
	// ("https://app.example.com") a connect session may send the end user
	// back to; empty allows any.
	AllowedRedirectOrigins string `gorm:"not null;default:'[]'"`
	CreatedAt              time.Time
	UpdatedAt              time.Time
}

// APIKey is a bearer key, stored only as a SHA-256 hash. Admin keys have no
// account.
type APIKey struct {
	ID        string  `gorm:"primaryKey;size:40"`
	AccountID *string `gorm:"size:40;index"`
	Role      string  `gorm:"size:10;not null"`
	Hash      string  `gorm:"size:64;not null;uniqueIndex"`
	Prefix    string  `gorm:"size:24;not null"` // first characters, for display only
	// Name is the caller's label for the key ("ci", "production").
	Name      string `gorm:"size:200;not null;default:''"`
	CreatedAt time.Time
	// LastUsedAt is when the key last authenticated, to within a minute.
	LastUsedAt *time.Time
	RevokedAt  *time.Time
}

func accountTables() []any { return []any{&Account{}, &APIKey{}} }

package storage_test

// The models and migration chain of the last release that used AutoMigrate
// (schema_migrations versions 1-5), frozen here so the upgrade test creates a
// database exactly as that release did. Never change them.

import (
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

type legacyAccount struct {
	ID                  string        `gorm:"primaryKey;size:40"`
	Name                string        `gorm:"size:200;not null"`
	DefaultPollInterval time.Duration `gorm:"not null;default:0"`
	MinPollInterval     time.Duration `gorm:"not null;default:0"`
	CreatedAt           time.Time
	UpdatedAt           time.Time
}

type legacyAPIKey struct {
	ID        string  `gorm:"primaryKey;size:40"`
	AccountID *string `gorm:"size:40;index"`
	Role      string  `gorm:"size:10;not null"`
	Hash      string  `gorm:"size:64;not null;uniqueIndex"`
	Prefix    string  `gorm:"size:24;not null"`
	CreatedAt time.Time
	RevokedAt *time.Time
}

type legacySubscription struct {
	ID                  string `gorm:"primaryKey;size:40"`
	AccountID           string `gorm:"size:40;not null;index"`
	Address             string `gorm:"size:2048;not null"`
	Topics              string `gorm:"not null"`
	Active              bool   `gorm:"not null"`
	DisabledReason      string `gorm:"size:500"`
	DisabledAt          *time.Time
	Scheme              string `gorm:"size:16;not null"`
	SecretEnc           []byte
	MaxRetries          int     `gorm:"not null"`
	BackoffMultiplier   float64 `gorm:"not null"`
	Schedule            string  `gorm:"not null;default:''"`
	TimeoutSeconds      int     `gorm:"not null"`
	RateLimit           int     `gorm:"not null;default:0"`
	ConsecutiveFailures int     `gorm:"not null;default:0"`
	FailingSince        *time.Time
	CircuitOpenUntil    *time.Time
	CreatedAt           time.Time
	UpdatedAt           time.Time
}

type legacyEvent struct {
	ID           string    `gorm:"primaryKey;size:40"`
	AccountID    string    `gorm:"size:40;not null;uniqueIndex:idx_events_account_seq,priority:1"`
	Seq          int64     `gorm:"not null;uniqueIndex:idx_events_account_seq,priority:2"`
	Topic        string    `gorm:"size:64;not null"`
	UpdateType   string    `gorm:"size:16;not null"`
	ConnectionID string    `gorm:"size:40;index"`
	Body         []byte    `gorm:"not null"`
	CreatedAt    time.Time `gorm:"not null"`
}

type legacyEventCounter struct {
	AccountID string `gorm:"primaryKey;size:40"`
	Seq       int64  `gorm:"not null"`
}

type legacyDelivery struct {
	ID             string    `gorm:"primaryKey;size:40"`
	AccountID      string    `gorm:"size:40;not null;index"`
	EventID        string    `gorm:"size:40;not null;index"`
	SubscriptionID string    `gorm:"size:40;not null;index:idx_deliveries_sub_status,priority:1"`
	Status         string    `gorm:"size:16;not null;index:idx_deliveries_sub_status,priority:2;index:idx_deliveries_due,priority:1"`
	NextAttemptAt  time.Time `gorm:"not null;index:idx_deliveries_due,priority:2"`
	LeaseToken     string    `gorm:"size:40;not null;default:''"`
	Attempts       int       `gorm:"not null;default:0"`
	Retries        int       `gorm:"not null;default:0"`
	LastStatusCode int       `gorm:"not null;default:0"`
	LastError      string    `gorm:"size:1000"`
	LastAttemptAt  *time.Time
	CreatedAt      time.Time `gorm:"not null"`
	UpdatedAt      time.Time
}

type legacyAttempt struct {
	ID             string    `gorm:"primaryKey;size:40"`
	DeliveryID     string    `gorm:"size:40;not null;index"`
	SubscriptionID string    `gorm:"size:40;not null;index"`
	AccountID      string    `gorm:"size:40;not null"`
	Number         int       `gorm:"not null"`
	AttemptedAt    time.Time `gorm:"not null"`
	StatusCode     int       `gorm:"not null;default:0"`
	ResponseTimeMs int64     `gorm:"not null;default:0"`
	ResponseBody   string    `gorm:"size:8192"`
	Error          string    `gorm:"size:1000"`
}

type legacySigningKey struct {
	ID            string `gorm:"primaryKey;size:40"`
	AccountID     string `gorm:"size:40;not null;index"`
	PrivateKeyEnc []byte `gorm:"not null"`
	PublicKeyPEM  string `gorm:"not null"`
	CreatedAt     time.Time
	RetiredAt     *time.Time
}

type legacySnapshot struct {
	ConnectionID    string `gorm:"primaryKey;size:64"`
	Object          string `gorm:"primaryKey;size:64"`
	RemoteID        string `gorm:"primaryKey;size:255"`
	ContentHash     string `gorm:"size:64;not null"`
	Payload         []byte
	RemoteUpdatedAt time.Time `gorm:"not null"`
	Deleted         bool      `gorm:"not null;default:false"`
	ScanGeneration  int64     `gorm:"not null;default:0"`
	UpdatedAt       time.Time
}

type legacyConnection struct {
	ID              string `gorm:"primaryKey;size:40"`
	AccountID       string `gorm:"size:40;not null;index:idx_connections_account_user,priority:1"`
	App             string `gorm:"size:40;not null;index:idx_connections_app_external,priority:1"`
	UserID          string `gorm:"size:255;not null;index:idx_connections_account_user,priority:2"`
	UserName        string `gorm:"size:255"`
	Status          string `gorm:"size:20;not null"`
	ExternalID      string `gorm:"size:255;index:idx_connections_app_external,priority:2"`
	CredentialsEnc  []byte
	Metadata        string        `gorm:"not null;default:'{}'"`
	PollInterval    time.Duration `gorm:"not null;default:0"`
	NextSyncAt      time.Time     `gorm:"not null;index"`
	LeaseToken      string        `gorm:"size:40;not null;default:''"`
	LastSyncAt      *time.Time
	LastError       string `gorm:"size:1000"`
	Cursors         string `gorm:"not null;default:'{}'"`
	InitialSyncDone bool   `gorm:"not null;default:false"`
	EmitBackfill    bool   `gorm:"not null;default:false"`
	IncludeRaw      bool   `gorm:"not null;default:false"`
	Generation      int64  `gorm:"not null;default:0"`
	CreatedAt       time.Time
	UpdatedAt       time.Time
}

type legacyConnectSession struct {
	ID           string    `gorm:"primaryKey;size:40"`
	AccountID    string    `gorm:"size:40;not null;index"`
	App          string    `gorm:"size:40;not null"`
	UserID       string    `gorm:"size:255;not null"`
	UserName     string    `gorm:"size:255"`
	RedirectURL  string    `gorm:"size:2048;not null"`
	State        string    `gorm:"size:64;not null;uniqueIndex"`
	VerifierEnc  []byte    `gorm:"not null"`
	Params       string    `gorm:"not null;default:'{}'"`
	ExpiresAt    time.Time `gorm:"not null"`
	UsedAt       *time.Time
	ConnectionID string `gorm:"size:40"`
	CreatedAt    time.Time
}

type legacyInboxItem struct {
	ID            string     `gorm:"primaryKey;size:40"`
	App           string     `gorm:"size:40;not null;uniqueIndex:idx_inbox_dedup,priority:1"`
	DedupKey      string     `gorm:"size:255;not null;uniqueIndex:idx_inbox_dedup,priority:2"`
	Method        string     `gorm:"size:10;not null"`
	URL           string     `gorm:"size:2048;not null"`
	Header        string     `gorm:"not null"`
	Body          []byte     `gorm:"not null"`
	ReceivedAt    time.Time  `gorm:"not null"`
	ProcessedAt   *time.Time `gorm:"index"`
	NextAttemptAt time.Time  `gorm:"not null;index"`
	LeaseToken    string     `gorm:"size:40;not null;default:''"`
	Attempts      int        `gorm:"not null;default:0"`
	LastError     string     `gorm:"size:1000"`
}

type legacySyncRun struct {
	ID           string    `gorm:"primaryKey;size:40"`
	AccountID    string    `gorm:"size:40;not null"`
	ConnectionID string    `gorm:"size:40;not null;index"`
	StartedAt    time.Time `gorm:"not null"`
	FinishedAt   *time.Time
	Status       string `gorm:"size:20;not null"`
	Initial      bool   `gorm:"not null;default:false"`
	Created      int    `gorm:"not null;default:0"`
	Updated      int    `gorm:"not null;default:0"`
	Deleted      int    `gorm:"not null;default:0"`
	Scanned      int    `gorm:"not null;default:0"`
	Error        string `gorm:"size:1000"`
}

type legacySandboxRecord struct {
	ConnectionID string    `gorm:"primaryKey;size:40"`
	Object       string    `gorm:"primaryKey;size:40"`
	RemoteID     string    `gorm:"primaryKey;size:40"`
	Data         string    `gorm:"not null"`
	Deleted      bool      `gorm:"not null;default:false"`
	Version      int64     `gorm:"not null"`
	ModifiedAt   time.Time `gorm:"not null;index"`
	CreatedAt    time.Time `gorm:"not null"`
}

func (legacyAccount) TableName() string        { return "accounts" }
func (legacyAPIKey) TableName() string         { return "api_keys" }
func (legacySubscription) TableName() string   { return "subscriptions" }
func (legacyEvent) TableName() string          { return "events" }
func (legacyEventCounter) TableName() string   { return "event_counters" }
func (legacyDelivery) TableName() string       { return "deliveries" }
func (legacyAttempt) TableName() string        { return "attempts" }
func (legacySigningKey) TableName() string     { return "signing_keys" }
func (legacySnapshot) TableName() string       { return "snapshots" }
func (legacyConnection) TableName() string     { return "connections" }
func (legacyConnectSession) TableName() string { return "connect_sessions" }
func (legacyInboxItem) TableName() string      { return "inbox_items" }
func (legacySyncRun) TableName() string        { return "sync_runs" }
func (legacySandboxRecord) TableName() string  { return "sandbox_records" }

type legacySchemaMigration struct {
	Version   int `gorm:"primaryKey;autoIncrement:false"`
	Name      string
	AppliedAt time.Time
}

func (legacySchemaMigration) TableName() string { return "schema_migrations" }

// legacyMigrate is that release's storage.Migrate: every step in one
// transaction, recorded in schema_migrations.
func legacyMigrate(db *gorm.DB) error {
	all := []any{&legacyAccount{}, &legacyAPIKey{}, &legacySubscription{}, &legacyEvent{}, &legacyEventCounter{}, &legacyDelivery{}, &legacyAttempt{}, &legacySigningKey{}, &legacySnapshot{}, &legacyConnection{}, &legacyConnectSession{}, &legacyInboxItem{}, &legacySyncRun{}, &legacySandboxRecord{}}
	steps := []struct {
		version int
		name    string
		up      func(tx *gorm.DB) error
	}{
		{1, "initial schema", func(tx *gorm.DB) error { return tx.AutoMigrate(&legacyAccount{}, &legacyAPIKey{}, &legacySnapshot{}) }},
		{2, "forwarding and capture tables", func(tx *gorm.DB) error { return tx.AutoMigrate(all...) }},
		{3, "subscription rate limit", func(tx *gorm.DB) error { return tx.AutoMigrate(&legacySubscription{}) }},
		{4, "connection include raw", func(tx *gorm.DB) error { return tx.AutoMigrate(&legacyConnection{}) }},
		{5, "due deliveries partial index", func(tx *gorm.DB) error {
			return tx.Exec(`CREATE INDEX IF NOT EXISTS idx_deliveries_queued ON deliveries (next_attempt_at) WHERE status IN ('pending', 'failed')`).Error
		}},
	}
	return db.Transaction(func(tx *gorm.DB) error {
		if err := tx.AutoMigrate(&legacySchemaMigration{}); err != nil {
			return err
		}
		for _, s := range steps {
			if err := s.up(tx); err != nil {
				return err
			}
			if err := tx.Clauses(clause.OnConflict{DoNothing: true}).Create(&legacySchemaMigration{Version: s.version, Name: s.name, AppliedAt: time.Now().UTC()}).Error; err != nil {
				return err
			}
		}
		return nil
	})
}

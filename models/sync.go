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

// Connection states.
const (
	ConnectionActive      = "active"
	ConnectionSyncing     = "syncing"
	ConnectionNeedsReauth = "needs_reauth"
	ConnectionError       = "error"
)

// Connection is one end user's authorized link to one app.
type Connection struct {
	ID        string `gorm:"primaryKey;size:40"`
	AccountID string `gorm:"size:40;not null;index:idx_connections_account_user,priority:1"`
	App       string `gorm:"size:40;not null;index:idx_connections_app_external,priority:1"`
	UserID    string `gorm:"size:255;not null;index:idx_connections_account_user,priority:2"`
	UserName  string `gorm:"size:255"`
	Status    string `gorm:"size:20;not null"`
	// ExternalID is the provider-side account (portalId, shop domain) that
	// routes inbound webhooks to this connection.
	ExternalID string `gorm:"size:255;index:idx_connections_app_external,priority:2"`
	// CredentialsEnc is the JSON credentials map (OAuth token included),
	// sealed with the master key (AAD: the connection id).
	CredentialsEnc []byte
	// Metadata is a JSON object of provider facts (instance_url, hook ids).
	Metadata string `gorm:"not null;default:'{}'"`
	// PollInterval overrides the account default (0 = none).
	PollInterval time.Duration `gorm:"not null;default:0"`
	// PollIntervalByAdmin is true when an admin key set PollInterval: it is
	// then applied as given, below the account's floor too (down to the
	// deployment's scheduler.min_admin_poll_interval).
	PollIntervalByAdmin bool `gorm:"not null;default:false"`
	// NextSyncAt is when the scheduler polls next; a claim pushes it forward
	// (the lease), so a crashed poll is retried after the lease expires.
	NextSyncAt time.Time `gorm:"not null;index"`
	LeaseToken string    `gorm:"size:40;not null;default:''"`
	LastSyncAt *time.Time
	LastError  string `gorm:"size:1000"`
	// Cursors is a JSON object: unified object → connector cursor.
	Cursors string `gorm:"not null;default:'{}'"`
	// InitialSyncDone turns off the silent first sync.
	InitialSyncDone bool `gorm:"not null;default:false"`
	// EmitBackfill asks for the first sync's records to be emitted as created.
	EmitBackfill bool `gorm:"not null;default:false"`
	// IncludeRaw adds the provider's raw record to each event's dataPayload
	// as remoteData.
	IncludeRaw bool  `gorm:"not null;default:false"`
	Generation int64 `gorm:"not null;default:0"`
	CreatedAt  time.Time
	UpdatedAt  time.Time
}

// ConnectSession is a pending OAuth2 connect flow.
type ConnectSession struct {
	ID          string `gorm:"primaryKey;size:40"`
	AccountID   string `gorm:"size:40;not null;index"`
	App         string `gorm:"size:40;not null"`
	UserID      string `gorm:"size:255;not null"`
	UserName    string `gorm:"size:255"`
	RedirectURL string `gorm:"size:2048;not null"`
	// State is the OAuth2 state parameter (random, unique).
	State string `gorm:"size:64;not null;uniqueIndex"`
	// VerifierEnc is the PKCE code verifier, sealed with the master key.
	VerifierEnc []byte `gorm:"not null"`
	// Params are extra connect parameters as a JSON object (Shopify shop).
	Params       string    `gorm:"not null;default:'{}'"`
	ExpiresAt    time.Time `gorm:"not null"`
	UsedAt       *time.Time
	ConnectionID string `gorm:"size:40"`
	// StartTokenHash is the SHA-256 (hex) of the token in the session's
	// connectUrl; opening it binds the flow to that browser.
	StartTokenHash string `gorm:"size:64;not null;default:'';index:idx_connect_sessions_start_token"`
	// BrowserHash is the SHA-256 (hex) of the nonce cookie set on the browser
	// that opened the connectUrl; when set, the callback must carry it.
	BrowserHash string `gorm:"size:64;not null;default:''"`
	CreatedAt   time.Time
}

// InboxItem is one native webhook request, stored raw after its signature was
// verified and before it is processed. (App, DedupKey) is unique so a
// provider's repeated delivery is stored once.
type InboxItem struct {
	ID            string    `gorm:"primaryKey;size:40"`
	App           string    `gorm:"size:40;not null;uniqueIndex:idx_inbox_dedup,priority:1"`
	DedupKey      string    `gorm:"size:255;not null;uniqueIndex:idx_inbox_dedup,priority:2"`
	Method        string    `gorm:"size:10;not null"`
	URL           string    `gorm:"size:2048;not null"`
	Header        string    `gorm:"not null"` // JSON http.Header
	Body          []byte    `gorm:"not null"`
	ReceivedAt    time.Time `gorm:"not null"`
	ProcessedAt   *time.Time
	NextAttemptAt time.Time `gorm:"not null"`
	LeaseToken    string    `gorm:"size:40;not null;default:''"`
	Attempts      int       `gorm:"not null;default:0"`
	LastError     string    `gorm:"size:1000"`
	// OrderKey names the one record the item changes (a hash of app,
	// external id, object and remote id), or is empty when it touches several:
	// the processor never works on an item while an earlier-leased item of
	// the same key is in flight elsewhere, so one record's changes apply in
	// received order across batches and workers.
	OrderKey string `gorm:"size:64;not null;default:''"`
}

// SyncRun records one poll of one connection.
type SyncRun struct {
	ID           string    `gorm:"primaryKey;size:40"`
	AccountID    string    `gorm:"size:40;not null"`
	ConnectionID string    `gorm:"size:40;not null;index"`
	StartedAt    time.Time `gorm:"not null"`
	FinishedAt   *time.Time
	Status       string `gorm:"size:20;not null"` // running, completed, failed, deferred
	Initial      bool   `gorm:"not null;default:false"`
	Created      int    `gorm:"not null;default:0"`
	Updated      int    `gorm:"not null;default:0"`
	Deleted      int    `gorm:"not null;default:0"`
	Scanned      int    `gorm:"not null;default:0"`
	Error        string `gorm:"size:1000"`
}

// SandboxRecord is one record of the built-in sandbox app, in the app's own
// (non-unified) shape.
type SandboxRecord struct {
	ConnectionID string `gorm:"primaryKey;size:40"`
	Object       string `gorm:"primaryKey;size:40"`
	RemoteID     string `gorm:"primaryKey;size:40"`
	Data         string `gorm:"not null"` // JSON object
	Deleted      bool   `gorm:"not null;default:false"`
	// Version increases with every change; ModifiedAt is the app's modstamp.
	Version    int64     `gorm:"not null"`
	ModifiedAt time.Time `gorm:"not null"`
	CreatedAt  time.Time `gorm:"not null"`
}

// RateBucket is the shared token bucket of one provider request budget of
// one provider account (key: app, external id, budget name). Tokens may be
// negative: requests that reserved a later slot. (Created by migration 181,
// after the AutoMigrate release, so it is not among Tables(); package
// ratebudget's tests exercise it on both databases.)
type RateBucket struct {
	Key       string    `gorm:"primaryKey;size:400"`
	Tokens    float64   `gorm:"not null"`
	UpdatedAt time.Time `gorm:"not null"`
}

// syncTables lists the tables owned by the sync packages.
func syncTables() []any {
	return []any{&Snapshot{}, &Connection{}, &ConnectSession{}, &InboxItem{}, &SyncRun{}, &SandboxRecord{}}
}

package models

import (
	"encoding/json"
	"time"
)

// Delivery states. A delivery is pending until its first attempt, failed
// while it waits for a retry, and ends succeeded or dead (dead-lettered).
const (
	DeliveryPending   = "pending"
	DeliveryFailed    = "failed"
	DeliverySucceeded = "succeeded"
	DeliveryDead      = "dead"
	// DeliveryHeld is a delivery created while its subscription is paused
	// with pauseMode "queue"; resuming the subscription makes it pending.
	DeliveryHeld = "held"
)

// Signing schemes of a subscription.
const (
	SchemeRSA      = "rsa"
	SchemeStandard = "standard"
	SchemeHMAC     = "hmac"
)

// Envelope is a forwarded event as receivers get it (DESIGN.md §3). Producers
// (sync, the test endpoint) fill it and hand it to forwarding's Publish, which
// assigns ID and EventTimestamp when empty and stores the exact bytes sent.
type Envelope struct {
	ID string `json:"id"`
	// AccountID is the account the event belongs to; Publish sets it. It ties
	// the signed body to the account whose key set verifies it, so a delivery
	// signed for one account cannot be replayed to another's receiver.
	AccountID    string `json:"accountId"`
	Topic        string `json:"topic"`
	UpdateType   string `json:"updateType"`
	ConnectionID string `json:"connectionId,omitempty"`
	UserID       string `json:"userId,omitempty"`
	UserName     string `json:"userName,omitempty"`
	Category     string `json:"category"`
	Name         string `json:"name,omitempty"`
	Source       string `json:"source,omitempty"`
	// EventTimestamp is when the change happened at the provider (the
	// record's modification or deletion time) when the provider says, else
	// when Tributary detected it.
	EventTimestamp time.Time `json:"eventTimestamp"`
	// DetectedAt is when Tributary saw the change: the webhook's arrival, or
	// the poll that found it.
	DetectedAt    time.Time                  `json:"detectedAt"`
	ChangedFields []string                   `json:"changedFields,omitempty"`
	Previous      map[string]json.RawMessage `json:"previous,omitempty"`
	DataPayload   json.RawMessage            `json:"dataPayload"`
}

// Event sources.
const (
	SourceWebhook = "webhook"
	SourcePoll    = "poll"
	SourceSystem  = "system"
	SourceTest    = "test"
)

// Subscription is an ISV's webhook endpoint ("webhook" in the API).
type Subscription struct {
	ID        string `gorm:"primaryKey;size:40"`
	AccountID string `gorm:"size:40;not null;index"`
	Address   string `gorm:"size:2048;not null"`
	// Topics is the JSON array of topic patterns.
	Topics string `gorm:"not null"`
	Active bool   `gorm:"not null"`
	// DisabledReason is set when the engine disabled the subscription (410,
	// endpoint failing too long); its events are then kept as dead deliveries
	// so they can be replayed once it is fixed.
	DisabledReason string `gorm:"size:500"`
	DisabledAt     *time.Time
	Scheme         string `gorm:"size:16;not null"`
	// SecretEnc is the standard/hmac secret, sealed with the master key.
	SecretEnc []byte
	// PrevSecretEnc is the secret replaced by the last rotate-secret, sealed;
	// deliveries are signed with it too until PrevSecretUntil.
	PrevSecretEnc     []byte
	PrevSecretUntil   *time.Time
	MaxRetries        int     `gorm:"not null"`
	BackoffMultiplier float64 `gorm:"not null"`
	// Schedule is a JSON array of durations ("1m"); empty = derived.
	Schedule       string `gorm:"not null;default:''"`
	TimeoutSeconds int    `gorm:"not null"`
	// RateLimit caps deliveries per second to the address from each
	// dispatcher process (0 = no cap).
	RateLimit int `gorm:"not null;default:0"`
	// Ordering is OrderingRecord to deliver each record's events in order,
	// or "" (unordered, the default).
	Ordering string `gorm:"size:16;not null;default:''"`
	// ConnectionIDs and UserIDs (JSON arrays, "" = all) scope the
	// subscription to the events of those connections / users.
	ConnectionIDs string `gorm:"not null;default:''"`
	UserIDs       string `gorm:"not null;default:''"`
	// Filters is a JSON object of "dataPayload.<path>" to the scalar value
	// the event's payload must hold there ("" = none).
	Filters string `gorm:"not null;default:''"`
	// PauseMode is PauseQueue to hold deliveries while paused, or "" (drop).
	PauseMode string `gorm:"size:16;not null;default:''"`
	// Endpoint health, shared by every dispatcher process.
	ConsecutiveFailures int `gorm:"not null;default:0"`
	FailingSince        *time.Time
	CircuitOpenUntil    *time.Time
	CreatedAt           time.Time
	UpdatedAt           time.Time
}

// Event is one immutable change. Body holds the exact JSON sent to receivers;
// Seq orders an account's events for the pull API (gap-free, commit order).
type Event struct {
	ID           string    `gorm:"primaryKey;size:40"`
	AccountID    string    `gorm:"size:40;not null;uniqueIndex:idx_events_account_seq,priority:1"`
	Seq          int64     `gorm:"not null;uniqueIndex:idx_events_account_seq,priority:2"`
	Topic        string    `gorm:"size:64;not null"`
	UpdateType   string    `gorm:"size:16;not null"`
	ConnectionID string    `gorm:"size:40;index"`
	Body         []byte    `gorm:"not null"`
	CreatedAt    time.Time `gorm:"not null"`
}

// EventCounter hands out an account's event sequence numbers. Incrementing it
// inside the publishing transaction makes Seq follow commit order.
type EventCounter struct {
	AccountID string `gorm:"primaryKey;size:40"`
	Seq       int64  `gorm:"not null"`
}

// Delivery is one event to one subscription. NextAttemptAt doubles as the
// lease: a claim pushes it past the HTTP timeout, so an abandoned claim
// becomes due again by itself; LeaseToken fences a late finisher.
type Delivery struct {
	ID             string    `gorm:"primaryKey;size:40"`
	AccountID      string    `gorm:"size:40;not null;index"`
	EventID        string    `gorm:"size:40;not null;index"`
	SubscriptionID string    `gorm:"size:40;not null;index:idx_deliveries_sub_status,priority:1"`
	Status         string    `gorm:"size:16;not null;index:idx_deliveries_sub_status,priority:2;index:idx_deliveries_due,priority:1"`
	NextAttemptAt  time.Time `gorm:"not null;index:idx_deliveries_due,priority:2"`
	LeaseToken     string    `gorm:"size:40;not null;default:''"`
	// Attempts counts every attempt; Retries those of the current cycle (a
	// replay starts a new cycle).
	Attempts       int    `gorm:"not null;default:0"`
	Retries        int    `gorm:"not null;default:0"`
	LastStatusCode int    `gorm:"not null;default:0"`
	LastError      string `gorm:"size:1000"`
	LastAttemptAt  *time.Time
	// OrderKey and OrderSeq order the deliveries of one record to an
	// ordered subscription ("" = unordered): a delivery is not claimed
	// while one with the same key and a lower OrderSeq is pending or failed.
	OrderKey  string    `gorm:"size:400;not null;default:''"`
	OrderSeq  int64     `gorm:"not null;default:0"`
	CreatedAt time.Time `gorm:"not null"`
	UpdatedAt time.Time
}

// PauseQueue is the pause mode that stores a paused subscription's
// deliveries as held and sends them when it is resumed.
const PauseQueue = "queue"

// OrderingRecord is the subscription ordering that delivers each record's
// events in the order they happened.
const OrderingRecord = "record"

// AttemptResponseBodySize is the size of attempts.response_body in bytes:
// the most of a response body an attempt log keeps.
const AttemptResponseBodySize = 8192

// AttemptErrorSize is the size of attempts.error and deliveries.last_error.
const AttemptErrorSize = 1000

// Attempt is the log of one HTTP attempt of a delivery.
type Attempt struct {
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

// SigningKey is an account's RSA key. The newest key without RetiredAt signs;
// retired keys stay published in the JWKS.
type SigningKey struct {
	ID        string `gorm:"primaryKey;size:40"` // the kid
	AccountID string `gorm:"size:40;not null;index"`
	// PrivateKeyEnc is the PKCS#8 DER private key sealed with the master key.
	PrivateKeyEnc []byte `gorm:"not null"`
	PublicKeyPEM  string `gorm:"not null"`
	CreatedAt     time.Time
	RetiredAt     *time.Time
}

// forwardingTables lists the tables owned by package forwarding.
func forwardingTables() []any {
	return []any{&Subscription{}, &Event{}, &EventCounter{}, &Delivery{}, &Attempt{}, &SigningKey{}}
}

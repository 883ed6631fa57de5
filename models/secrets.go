package models

import "time"

// Master key states. One key is active (new values are sealed with it);
// during a rotation the key rotated away from is previous (still accepted);
// once no value is sealed with it, it is retired and a process configured
// with it refuses to start.
const (
	MasterKeyActive   = "active"
	MasterKeyPrevious = "previous"
	MasterKeyRetired  = "retired"
)

// MasterKey is a master key the database knows, by its id (a hash, never the
// key). CheckValue is a known plaintext sealed with the key: a process
// checks its configured key against it before writing anything.
type MasterKey struct {
	ID         string    `gorm:"primaryKey;size:16"`
	CheckValue []byte    `gorm:"not null"`
	Status     string    `gorm:"size:16;not null"`
	CreatedAt  time.Time `gorm:"not null"`
	RetiredAt  *time.Time
}

// SealedColumn is a column holding values sealed with the master key; the
// additional data of each value is its row's id column followed by AADSuffix.
type SealedColumn struct {
	Table, Column string
	AADSuffix     string
}

// AAD is the additional data a value of the column in row id is sealed with.
func (c SealedColumn) AAD(id string) []byte { return []byte(id + c.AADSuffix) }

// SealedColumns lists every column sealed with the master key, so a key
// rotation re-encrypts them all. Add yours here (a test fails when a model
// field named ...Enc is missing).
func SealedColumns() []SealedColumn {
	return []SealedColumn{
		{"connections", "credentials_enc", ""},
		{"connect_sessions", "verifier_enc", ""},
		{"subscriptions", "secret_enc", ""},
		{"subscriptions", "prev_secret_enc", "/previous"},
		{"signing_keys", "private_key_enc", ""},
	}
}

func secretTables() []any { return []any{&MasterKey{}} }

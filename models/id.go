package models

import (
	"crypto/rand"
	"strings"
	"sync"
	"time"

	"github.com/oklog/ulid/v2"
)

// ID prefixes used in the public contract.
const (
	PrefixAccount       = "acc"
	PrefixAPIKey        = "key"
	PrefixWebhook       = "wh"
	PrefixEvent         = "evt"
	PrefixDelivery      = "dlv"
	PrefixAttempt       = "att"
	PrefixConnection    = "con"
	PrefixConnect       = "cs"
	PrefixSigningKey    = "kid"
	PrefixInbox         = "inb"
	PrefixSyncRun       = "run"
	PrefixSandboxRecord = "sbx"
)

var (
	entropyMu sync.Mutex
	entropy   = ulid.Monotonic(rand.Reader, 0)
)

// NewID returns prefix + "_" + a ULID (lower-case), so identifiers sort by
// creation time and carry their kind, e.g. "evt_01jd6x…".
func NewID(prefix string) string {
	entropyMu.Lock()
	id := ulid.MustNew(ulid.Timestamp(time.Now()), entropy)
	entropyMu.Unlock()
	return prefix + "_" + strings.ToLower(id.String())
}

// HasPrefix reports whether id has the given kind prefix.
func HasPrefix(id, prefix string) bool {
	return strings.HasPrefix(id, prefix+"_")
}

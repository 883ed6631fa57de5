package forwarding

import (
	"cmp"
	"context"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"gorm.io/gorm"

	"github.com/tributary/tributary/forwarding/signing"
	"github.com/tributary/tributary/models"
	"github.com/tributary/tributary/storage"
)

// signerTTL bounds how long a process signs with a cached key after another
// process rotated it.
const signerTTL = time.Minute

// keyring caches each account's current signer.
type keyring struct {
	s  *Service
	mu sync.Mutex
	by map[string]cachedSigner
}

type cachedSigner struct {
	signer *signing.Signer
	at     time.Time
}

func newKeyring(s *Service) *keyring { return &keyring{s: s, by: map[string]cachedSigner{}} }

// signer returns the account's current signer, creating the account's first
// key when it has none.
func (k *keyring) signer(ctx context.Context, accountID string) (*signing.Signer, error) {
	now := time.Now()
	k.mu.Lock()
	c, ok := k.by[accountID]
	k.mu.Unlock()
	if ok && now.Sub(c.at) < signerTTL {
		return c.signer, nil
	}
	row, err := k.current(ctx, accountID)
	if err != nil {
		return nil, err
	}
	der, err := k.s.box.Open(row.PrivateKeyEnc, []byte(row.ID))
	if err != nil {
		return nil, fmt.Errorf("open signing key %s: %w", row.ID, err)
	}
	pk, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("parse signing key %s: %w", row.ID, err)
	}
	rk, isRSA := pk.(*rsa.PrivateKey)
	if !isRSA {
		return nil, fmt.Errorf("signing key %s is %T, not RSA", row.ID, pk)
	}
	sg, err := signing.NewSigner(rk)
	if err != nil {
		return nil, err
	}
	k.mu.Lock()
	k.by[accountID] = cachedSigner{signer: sg, at: now}
	k.mu.Unlock()
	return sg, nil
}

func (k *keyring) forget(accountID string) {
	k.mu.Lock()
	delete(k.by, accountID)
	k.mu.Unlock()
}

// current loads (or creates) the account's signing key. A missing first key
// is generated before the transaction that stores it: RSA generation takes
// tens of milliseconds and must never hold a database lock.
func (k *keyring) current(ctx context.Context, accountID string) (*models.SigningKey, error) {
	var row models.SigningKey
	err := k.s.db.WithContext(ctx).Where("account_id = ? AND retired_at IS NULL", accountID).
		Order("created_at DESC").Take(&row).Error
	if err == nil {
		return &row, nil
	}
	if !errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, fmt.Errorf("load signing key of %s: %w", accountID, err)
	}
	fresh, err := newKeyRow(k.s, accountID)
	if err != nil {
		return nil, err
	}
	var out *models.SigningKey
	err = k.s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var e error
		out, e = k.s.install(tx, fresh, false)
		return e
	})
	return out, err
}

// newKeyRow generates a key pair for the account, sealed and ready to store.
func newKeyRow(s *Service, accountID string) (*models.SigningKey, error) {
	key, err := s.genKey()
	if err != nil {
		return nil, err
	}
	kid, err := signing.KeyID(&key.PublicKey)
	if err != nil {
		return nil, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("marshal signing key: %w", err)
	}
	pub, err := signing.EncodePublicKeyPEM(&key.PublicKey)
	if err != nil {
		return nil, err
	}
	return &models.SigningKey{ID: kid, AccountID: accountID, PrivateKeyEnc: s.box.Seal(der, []byte(kid)),
		PublicKeyPEM: string(pub)}, nil
}

// ErrRotationTooSoon is wrapped in the error returned when an account
// already made signing.rotation_limit keys within signing.rotation_window.
var ErrRotationTooSoon = errors.New("signing key rotated too recently")

// install stores fresh (generated outside tx) as the account's current key
// under a per-account lock. With rotate false an existing current key is kept
// and fresh discarded. With rotate true the current keys are retired — unless
// the account made its rotation_limit keys within rotation_window — and the
// account's keys retired longer ago than retired_key_grace are deleted.
func (s *Service) install(tx *gorm.DB, fresh *models.SigningKey, rotate bool) (*models.SigningKey, error) {
	accountID := fresh.AccountID
	if err := storage.TxLock(tx, "signing-key:"+accountID); err != nil {
		return nil, err
	}
	var cur []models.SigningKey
	if err := tx.Where("account_id = ? AND retired_at IS NULL", accountID).Order("created_at DESC").Find(&cur).Error; err != nil {
		return nil, fmt.Errorf("load signing keys: %w", err)
	}
	now := s.Now()
	if len(cur) > 0 && !rotate {
		return &cur[0], nil
	}
	if len(cur) > 0 {
		if wait, err := s.rotationWait(tx, accountID, now); err != nil || wait > 0 {
			if err == nil {
				err = &RotationTooSoonError{Wait: wait}
			}
			return nil, err
		}
		if err := tx.Model(&models.SigningKey{}).Where("account_id = ? AND retired_at IS NULL", accountID).
			Update("retired_at", now).Error; err != nil {
			return nil, fmt.Errorf("retire signing keys: %w", err)
		}
		if err := tx.Where("account_id = ? AND retired_at IS NOT NULL AND retired_at < ?", accountID,
			now.Add(-s.keyCfg.RetiredKeyGrace)).Delete(&models.SigningKey{}).Error; err != nil {
			return nil, fmt.Errorf("prune retired signing keys: %w", err)
		}
	}
	fresh.CreatedAt = now
	if err := tx.Create(fresh).Error; err != nil {
		return nil, fmt.Errorf("store signing key: %w", err)
	}
	return fresh, nil
}

// rotationWait says how long until the account may make another key: zero
// while fewer than rotation_limit keys were made within rotation_window.
func (s *Service) rotationWait(q *gorm.DB, accountID string, now time.Time) (time.Duration, error) {
	var recent []time.Time
	if err := q.Model(&models.SigningKey{}).Where("account_id = ? AND created_at > ?", accountID,
		now.Add(-s.keyCfg.RotationWindow)).Order("created_at DESC").Limit(s.keyCfg.RotationLimit).
		Pluck("created_at", &recent).Error; err != nil {
		return 0, fmt.Errorf("count recent signing keys: %w", err)
	}
	if len(recent) < s.keyCfg.RotationLimit {
		return 0, nil
	}
	// The oldest of the last rotation_limit keys must leave the window.
	return max(recent[len(recent)-1].Add(s.keyCfg.RotationWindow).Sub(now), time.Second), nil
}

// RotationTooSoonError says how long until the account may rotate again.
type RotationTooSoonError struct{ Wait time.Duration }

func (e *RotationTooSoonError) Error() string {
	return fmt.Sprintf("%v; retry in %s", ErrRotationTooSoon, e.Wait.Round(time.Second))
}

// Unwrap makes errors.Is(err, ErrRotationTooSoon) hold.
func (e *RotationTooSoonError) Unwrap() error { return ErrRotationTooSoon }

// PruneSigningKeys deletes keys of every account retired before cutoff (the
// maintenance job passes now − signing.retired_key_grace). It returns how
// many went.
func (s *Service) PruneSigningKeys(ctx context.Context, cutoff time.Time) (int64, error) {
	res := s.db.WithContext(ctx).Where("retired_at IS NOT NULL AND retired_at < ?", cutoff).Delete(&models.SigningKey{})
	if res.Error != nil {
		return 0, fmt.Errorf("prune signing keys: %w", res.Error)
	}
	return res.RowsAffected, nil
}

// SigningKey is a public key as GET /v1/signing-keys shows it.
type SigningKey struct {
	KID       string     `json:"kid"`
	Algorithm string     `json:"alg"`
	PublicKey string     `json:"publicKey"`
	Current   bool       `json:"current"`
	CreatedAt time.Time  `json:"createdAt"`
	RetiredAt *time.Time `json:"retiredAt,omitempty"`
}

// SigningKeys lists the account's keys, current first (creating the first).
func (s *Service) SigningKeys(ctx context.Context, accountID string) ([]SigningKey, error) {
	if _, err := s.keys.current(ctx, accountID); err != nil {
		return nil, err
	}
	var rows []models.SigningKey
	if err := s.db.WithContext(ctx).Where("account_id = ?", accountID).Order("created_at DESC").Find(&rows).Error; err != nil {
		return nil, fmt.Errorf("list signing keys: %w", err)
	}
	slices.SortStableFunc(rows, func(a, b models.SigningKey) int { // current first
		return cmp.Compare(boolInt(a.RetiredAt != nil), boolInt(b.RetiredAt != nil))
	})
	out := make([]SigningKey, 0, len(rows))
	for _, r := range rows {
		out = append(out, SigningKey{KID: r.ID, Algorithm: "RS256", PublicKey: r.PublicKeyPEM,
			Current: r.RetiredAt == nil, CreatedAt: r.CreatedAt, RetiredAt: r.RetiredAt})
	}
	return out, nil
}

// RotateSigningKey makes a fresh key current; older keys stay published for
// signing.retired_key_grace. An account makes at most signing.rotation_limit
// keys per signing.rotation_window (a rate_limited error says when it may
// again).
// The key is generated before the transaction.
func (s *Service) RotateSigningKey(ctx context.Context, accountID string) (SigningKey, error) {
	// Cheap check first: a storm never reaches key generation.
	wait, err := s.rotationWait(s.db.WithContext(ctx), accountID, s.Now())
	if err != nil {
		return SigningKey{}, err
	}
	if wait > 0 {
		return SigningKey{}, rotationLimited(wait)
	}
	fresh, err := newKeyRow(s, accountID)
	if err != nil {
		return SigningKey{}, err
	}
	var row *models.SigningKey
	err = s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var e error
		row, e = s.install(tx, fresh, true)
		return e
	})
	var soon *RotationTooSoonError
	if errors.As(err, &soon) {
		return SigningKey{}, rotationLimited(soon.Wait)
	}
	if err != nil {
		return SigningKey{}, err
	}
	s.keys.forget(accountID)
	return SigningKey{KID: row.ID, Algorithm: "RS256", PublicKey: row.PublicKeyPEM, Current: true, CreatedAt: row.CreatedAt}, nil
}

// rotationLimited is the API's rate_limited answer to an early rotation.
func rotationLimited(wait time.Duration) error {
	return &models.Error{Code: models.ErrCodeRateLimited, RetryAfter: wait,
		Message: fmt.Sprintf("too many signing-key rotations for this account; retry in %s", wait.Round(time.Second))}
}

// AccountJWKS returns one account's public keys, current and retired within
// the grace period, for GET /.well-known/jwks/{accountId}.json — the set a
// receiver of that account verifies against. The caller checks the account
// exists; its first key is created when it has none.
func (s *Service) AccountJWKS(ctx context.Context, accountID string) (signing.JWKS, error) {
	if _, err := s.keys.current(ctx, accountID); err != nil {
		return signing.JWKS{}, err
	}
	return s.jwks(ctx, s.db.WithContext(ctx).Where("account_id = ?", accountID))
}

// JWKS returns every account's public keys, current and retired, for
// GET /.well-known/jwks.json.
// It cannot tell accounts apart: receivers should use AccountJWKS.
func (s *Service) JWKS(ctx context.Context) (signing.JWKS, error) {
	return s.jwks(ctx, s.db.WithContext(ctx))
}

func (s *Service) jwks(ctx context.Context, q *gorm.DB) (signing.JWKS, error) {
	var rows []models.SigningKey
	if err := q.Select("id", "public_key_pem").Order("created_at").Find(&rows).Error; err != nil {
		return signing.JWKS{}, fmt.Errorf("load public keys: %w", err)
	}
	set := signing.JWKS{Keys: make([]signing.JWK, 0, len(rows))}
	for _, r := range rows {
		pub, err := signing.DecodePublicKeyPEM([]byte(r.PublicKeyPEM))
		if err != nil {
			return signing.JWKS{}, fmt.Errorf("public key %s: %w", r.ID, err)
		}
		set.Keys = append(set.Keys, signing.PublicJWK(pub, r.ID))
	}
	return set, nil
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

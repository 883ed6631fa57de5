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

// current loads (or creates) the account's signing key.
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
	var out *models.SigningKey
	err = k.s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var e error
		out, e = k.s.rotate(tx, accountID, false)
		return e
	})
	return out, err
}

// rotate creates a new current key for the account under a per-account lock;
// with force false it keeps an existing current key instead.
func (s *Service) rotate(tx *gorm.DB, accountID string, force bool) (*models.SigningKey, error) {
	if err := storage.TxLock(tx, "signing-key:"+accountID); err != nil {
		return nil, err
	}
	var cur []models.SigningKey
	if err := tx.Where("account_id = ? AND retired_at IS NULL", accountID).Find(&cur).Error; err != nil {
		return nil, fmt.Errorf("load signing keys: %w", err)
	}
	if len(cur) > 0 && !force {
		return &cur[0], nil
	}
	key, err := signing.GenerateKey()
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
	now := s.Now()
	if len(cur) > 0 {
		if err := tx.Model(&models.SigningKey{}).Where("account_id = ? AND retired_at IS NULL", accountID).
			Update("retired_at", now).Error; err != nil {
			return nil, fmt.Errorf("retire signing keys: %w", err)
		}
	}
	row := &models.SigningKey{ID: kid, AccountID: accountID, PrivateKeyEnc: s.box.Seal(der, []byte(kid)),
		PublicKeyPEM: string(pub), CreatedAt: now}
	if err := tx.Create(row).Error; err != nil {
		return nil, fmt.Errorf("store signing key: %w", err)
	}
	return row, nil
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

// RotateSigningKey makes a fresh key current; older keys stay published.
func (s *Service) RotateSigningKey(ctx context.Context, accountID string) (SigningKey, error) {
	var row *models.SigningKey
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var e error
		row, e = s.rotate(tx, accountID, true)
		return e
	})
	if err != nil {
		return SigningKey{}, err
	}
	s.keys.forget(accountID)
	return SigningKey{KID: row.ID, Algorithm: "RS256", PublicKey: row.PublicKeyPEM, Current: true, CreatedAt: row.CreatedAt}, nil
}

// JWKS returns every account's public keys, current and retired, for
// GET /.well-known/jwks.json.
func (s *Service) JWKS(ctx context.Context) (signing.JWKS, error) {
	var rows []models.SigningKey
	if err := s.db.WithContext(ctx).Select("id", "public_key_pem").Order("created_at").Find(&rows).Error; err != nil {
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

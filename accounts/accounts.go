// Package accounts owns ISV tenants and API keys (tables accounts and
// api_keys). Keys are random, prefixed (trb_ for ISVs, trb_admin_ for
// operators), shown once and stored only as SHA-256 hashes.
package accounts

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"net/url"
	"strings"
	"time"

	"gorm.io/gorm"

	"github.com/tributary/tributary/models"
)

// Key prefixes.
const (
	ISVKeyPrefix   = "trb_"
	AdminKeyPrefix = "trb_admin_"
)

// Principal is who an API key authenticates.
type Principal struct {
	Role      string // models.RoleISV or models.RoleAdmin
	AccountID string // empty for admin keys
	KeyID     string
}

// Service manages accounts and keys.
type Service struct {
	db       *gorm.DB
	now      func() time.Time
	adminMin time.Duration
}

// DefaultAdminMinPollInterval is the default smallest poll interval an admin
// may give an account (scheduler.min_admin_poll_interval).
const DefaultAdminMinPollInterval = time.Minute

// Option configures a Service.
type Option func(*Service)

// WithAdminMinPollInterval sets the deployment's smallest admin-set poll
// interval (scheduler.min_admin_poll_interval), which bounds an account's
// defaultPollInterval and minPollInterval.
func WithAdminMinPollInterval(d time.Duration) Option {
	return func(s *Service) {
		if d > 0 {
			s.adminMin = d
		}
	}
}

// New returns a Service on db.
func New(db *gorm.DB, opts ...Option) *Service {
	s := &Service{db: db, now: time.Now, adminMin: DefaultAdminMinPollInterval}
	for _, o := range opts {
		o(s)
	}
	return s
}

// WithClock sets the clock (tests).
func (s *Service) WithClock(now func() time.Time) *Service { s.now = now; return s }

// Create makes an account and its first API key, returned in clear once.
func (s *Service) Create(ctx context.Context, name string) (*models.Account, string, error) {
	name = strings.TrimSpace(name)
	if name == "" {
		return nil, "", models.FieldError("name", "name is required")
	}
	if len(name) > 200 {
		return nil, "", models.FieldError("name", "name is longer than 200 characters")
	}
	acc := &models.Account{ID: models.NewID(models.PrefixAccount), Name: name}
	var key string
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := tx.Create(acc).Error; err != nil {
			return fmt.Errorf("create account: %w", err)
		}
		var err error
		_, key, err = createKey(tx, models.RoleISV, &acc.ID, "default")
		return err
	})
	if err != nil {
		return nil, "", err
	}
	return acc, key, nil
}

// CreateAdminKey makes an operator key.
func (s *Service) CreateAdminKey(ctx context.Context) (string, error) {
	_, key, err := createKey(s.db.WithContext(ctx), models.RoleAdmin, nil, "admin")
	return key, err
}

func createKey(tx *gorm.DB, role string, accountID *string, name string) (*models.APIKey, string, error) {
	prefix := ISVKeyPrefix
	if role == models.RoleAdmin {
		prefix = AdminKeyPrefix
	}
	secret := prefix + randomBase62(40)
	row := models.APIKey{ID: models.NewID(models.PrefixAPIKey), AccountID: accountID, Role: role,
		Hash: Hash(secret), Prefix: secret[:len(prefix)+6], Name: name}
	if err := tx.Create(&row).Error; err != nil {
		return nil, "", fmt.Errorf("create api key: %w", err)
	}
	return &row, secret, nil
}

// Hash is the stored form of a key.
func Hash(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:])
}

// Authenticate resolves a bearer key. Unknown, malformed or revoked keys get
// an unauthorized error.
func (s *Service) Authenticate(ctx context.Context, key string) (Principal, error) {
	if !strings.HasPrefix(key, ISVKeyPrefix) || len(key) > 100 {
		return Principal{}, models.Errorf(models.ErrCodeUnauthorized, "invalid API key")
	}
	var row models.APIKey
	err := s.db.WithContext(ctx).Where("hash = ? AND revoked_at IS NULL", Hash(key)).Take(&row).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return Principal{}, models.Errorf(models.ErrCodeUnauthorized, "invalid API key")
	}
	if err != nil {
		return Principal{}, fmt.Errorf("authenticate: %w", err)
	}
	p := Principal{Role: row.Role, KeyID: row.ID}
	if row.AccountID != nil {
		p.AccountID = *row.AccountID
	}
	s.touch(ctx, &row)
	return p, nil
}

// Get returns an account.
func (s *Service) Get(ctx context.Context, id string) (*models.Account, error) {
	var acc models.Account
	err := s.db.WithContext(ctx).Where("id = ?", id).Take(&acc).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, models.Errorf(models.ErrCodeNotFound, "account %s not found", id)
	}
	if err != nil {
		return nil, fmt.Errorf("get account %s: %w", id, err)
	}
	return &acc, nil
}

// Update holds the admin-settable account fields; nil leaves a field as is.
type Update struct {
	DefaultPollInterval *time.Duration
	MinPollInterval     *time.Duration
	// AllowedRedirectOrigins replaces the origins connect sessions may
	// return to ("https://app.example.com"); empty allows any.
	AllowedRedirectOrigins *[]string
}

// Update changes an account's polling defaults (admin only).
func (s *Service) Update(ctx context.Context, id string, u Update) (*models.Account, error) {
	var acc *models.Account
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var row models.Account
		if err := tx.Where("id = ?", id).Take(&row).Error; err != nil {
			if errors.Is(err, gorm.ErrRecordNotFound) {
				return models.Errorf(models.ErrCodeNotFound, "account %s not found", id)
			}
			return err
		}
		if u.DefaultPollInterval != nil {
			if *u.DefaultPollInterval < s.adminMin {
				return models.FieldError("defaultPollInterval", "defaultPollInterval must be at least %s (the deployment's minimum for admin-set intervals, scheduler.min_admin_poll_interval)", s.adminMin)
			}
			row.DefaultPollInterval = *u.DefaultPollInterval
		}
		if u.MinPollInterval != nil {
			if *u.MinPollInterval < 0 || (*u.MinPollInterval > 0 && *u.MinPollInterval < s.adminMin) {
				return models.FieldError("minPollInterval", "minPollInterval must be 0 (the deployment's floor applies) or at least %s (the deployment's minimum for admin-set intervals, scheduler.min_admin_poll_interval)", s.adminMin)
			}
			row.MinPollInterval = *u.MinPollInterval
		}
		if u.AllowedRedirectOrigins != nil {
			origins, err := normalizeOrigins(*u.AllowedRedirectOrigins)
			if err != nil {
				return err
			}
			b, _ := json.Marshal(origins)
			row.AllowedRedirectOrigins = string(b)
		}
		if row.DefaultPollInterval != 0 && row.MinPollInterval > row.DefaultPollInterval {
			return models.FieldError("minPollInterval", "minPollInterval %s exceeds defaultPollInterval %s", row.MinPollInterval, row.DefaultPollInterval)
		}
		if err := tx.Save(&row).Error; err != nil {
			return fmt.Errorf("update account %s: %w", id, err)
		}
		acc = &row
		return nil
	})
	return acc, err
}

// normalizeOrigins checks each entry is an http(s) origin (no path, query
// or fragment) and lower-cases it.
func normalizeOrigins(in []string) ([]string, error) {
	if len(in) > 50 {
		return nil, models.FieldError("allowedRedirectOrigins", "at most 50 origins")
	}
	out := make([]string, 0, len(in))
	for _, o := range in {
		u, err := url.Parse(strings.TrimSpace(o))
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || (u.Path != "" && u.Path != "/") ||
			u.RawQuery != "" || u.Fragment != "" || u.User != nil {
			return nil, models.FieldError("allowedRedirectOrigins", "%q is not an origin like https://app.example.com", o)
		}
		out = append(out, strings.ToLower(u.Scheme+"://"+u.Host))
	}
	return out, nil
}

// RedirectOrigins returns the account's allowed redirect origins.
func RedirectOrigins(a *models.Account) []string {
	var out []string
	_ = json.Unmarshal([]byte(a.AllowedRedirectOrigins), &out)
	if out == nil {
		out = []string{}
	}
	return out
}

const base62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

func randomBase62(n int) string {
	var b strings.Builder
	max := big.NewInt(int64(len(base62)))
	for range n {
		i, err := rand.Int(rand.Reader, max)
		if err != nil {
			panic(err) // crypto/rand never fails on supported platforms
		}
		b.WriteByte(base62[i.Int64()])
	}
	return b.String()
}

package forwarding

import (
	"context"
	"time"

	"gorm.io/gorm"

	"github.com/tributary/tributary/models"
)

// MaxSecretOverlap bounds the overlap window of a secret rotation.
const MaxSecretOverlap = 7 * 24 * time.Hour

// previousAAD binds a sealed previous secret to its subscription and role.
func previousAAD(subID string) string { return subID + "/previous" }

// RotateSecret gives a standard or hmac subscription a new secret (newSecret,
// or a generated one) and keeps the current one signing beside it for
// overlap (signing.secret_overlap when 0, at most MaxSecretOverlap): during
// the window Standard Webhooks deliveries carry both signatures in
// webhook-signature (space-separated, as the specification allows) and hmac
// deliveries carry the previous secret's signature in
// X-Webhook-Signature-Previous. Rotating again inside a window replaces the
// previous secret with the current one.
func (s *Service) RotateSecret(ctx context.Context, accountID, id, newSecret string, overlap time.Duration) (*Subscription, error) {
	if overlap < 0 || overlap > MaxSecretOverlap {
		return nil, models.FieldError("overlap", "overlap must be a duration from 0 to %s", MaxSecretOverlap)
	}
	if overlap == 0 {
		overlap = s.keyCfg.SecretOverlap
	}
	var out *models.Subscription
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		row, err := s.loadSubscription(tx, accountID, id)
		if err != nil {
			return err
		}
		if row.Scheme != models.SchemeStandard && row.Scheme != models.SchemeHMAC {
			return models.Errorf(models.ErrCodeConflict, "webhook %s signs with the account's RSA key: rotate it with POST /v1/signing-keys/rotate", id)
		}
		old, err := s.box.OpenString(row.SecretEnc, row.ID)
		if err != nil {
			return err
		}
		if err := s.applySigning(row, SigningInput{Scheme: row.Scheme, Secret: newSecret}); err != nil {
			return err
		}
		now := s.Now()
		until := now.Add(overlap)
		row.PrevSecretEnc, row.PrevSecretUntil, row.UpdatedAt = s.box.SealString(old, previousAAD(row.ID)), &until, now
		out = row
		return tx.Model(row).Select("secret_enc", "prev_secret_enc", "prev_secret_until", "updated_at").Updates(row).Error
	})
	if err != nil {
		return nil, err
	}
	return s.view(out)
}

// previousSecret opens sub's previous secret while its overlap lasts ("" once
// it ended or when there is none).
func (s *Service) previousSecret(sub *models.Subscription, now time.Time) (string, error) {
	if len(sub.PrevSecretEnc) == 0 || sub.PrevSecretUntil == nil || !sub.PrevSecretUntil.After(now) {
		return "", nil
	}
	return s.box.OpenString(sub.PrevSecretEnc, previousAAD(sub.ID))
}

package forwarding

import (
	"context"
	"crypto/rsa"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"github.com/tributary/tributary/forwarding/signing"
	"github.com/tributary/tributary/models"
	"github.com/tributary/tributary/secrets"
	"github.com/tributary/tributary/storage/storagetest"
)

// Attack: RSA generation ran inside the rotation's transaction, so a
// rotation loop held SQLite's single write lock for tens of milliseconds at
// a time and other tenants' writes got SQLITE_BUSY 500s. Here key generation
// is held open: another tenant's write transaction must still commit
// meanwhile (on SQLite it could not if a write transaction were open).
func TestKeyGenerationHoldsNoTransaction(t *testing.T) {
	t.Parallel()
	storagetest.Each(t, func(t *testing.T, db *gorm.DB) {
		box, err := secrets.New(make([]byte, secrets.KeySize))
		require.NoError(t, err)
		s := New(Config{DB: db, Box: box})
		ctx := context.Background()
		_, err = s.SigningKeys(ctx, "acc_a") // first key, normal generation
		require.NoError(t, err)

		entered, release := make(chan struct{}), make(chan struct{})
		s.genKey = func() (*rsa.PrivateKey, error) {
			close(entered)
			<-release
			return signing.GenerateKey()
		}
		done := make(chan error, 1)
		go func() { _, err := s.RotateSigningKey(ctx, "acc_a"); done <- err }()
		<-entered
		// Another tenant writes while A's key is being generated.
		wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		err = db.WithContext(wctx).Transaction(func(tx *gorm.DB) error {
			return tx.Create(&models.Subscription{ID: "wh_other", AccountID: "acc_b", Address: "https://b.example",
				Topics: `["*"]`, Active: true, Scheme: models.SchemeRSA, TimeoutSeconds: 30}).Error
		})
		require.NoError(t, err, "a write commits while a key is generated")
		close(release)
		require.NoError(t, <-done)
	})
}

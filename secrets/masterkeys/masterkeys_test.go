package masterkeys_test

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"github.com/tributary/tributary/models"
	"github.com/tributary/tributary/secrets"
	"github.com/tributary/tributary/secrets/masterkeys"
	"github.com/tributary/tributary/storage/storagetest"
)

var t0 = time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)

func newKey(t *testing.T) []byte {
	t.Helper()
	k, err := secrets.ParseKey(secrets.GenerateKey())
	require.NoError(t, err)
	return k
}

func box(t *testing.T, primary []byte, extra ...[]byte) *secrets.Box {
	t.Helper()
	b, err := secrets.NewRing(primary, extra...)
	require.NoError(t, err)
	return b
}

func TestSealedColumnsListEveryEncField(t *testing.T) {
	listed := map[string]bool{}
	for _, c := range models.SealedColumns() {
		listed[c.Table+"."+c.Column] = true
	}
	db := storagetest.New(t, "sqlite")
	for _, m := range models.Tables() {
		stmt := &gorm.Statement{DB: db}
		require.NoError(t, stmt.Parse(m))
		for _, f := range stmt.Schema.Fields {
			if strings.HasSuffix(f.Name, "Enc") && f.FieldType == reflect.TypeOf([]byte(nil)) {
				require.True(t, listed[stmt.Schema.Table+"."+f.DBName], "%s.%s is sealed: list it in models.SealedColumns", stmt.Schema.Table, f.DBName)
				require.NotNil(t, stmt.Schema.LookUpField("id"), "%s: sealed values are bound to the id column", stmt.Schema.Table)
			}
		}
	}
}

func TestFirstStartRecordsTheKeyAndAWrongKeyIsRefused(t *testing.T) {
	storagetest.Each(t, func(t *testing.T, db *gorm.DB) {
		ctx := context.Background()
		a, b := newKey(t), newKey(t)
		require.NoError(t, masterkeys.Check(ctx, db, box(t, a)), "a fresh database accepts any key")
		require.NoError(t, masterkeys.Register(ctx, db, box(t, a), t0))
		require.NoError(t, masterkeys.Register(ctx, db, box(t, a), t0), "idempotent")
		keys, err := masterkeys.Keys(ctx, db)
		require.NoError(t, err)
		require.Len(t, keys, 1)
		require.Equal(t, secrets.KeyID(a), keys[0].ID)
		require.Equal(t, models.MasterKeyActive, keys[0].Status)
		require.NotContains(t, string(keys[0].CheckValue), "check", "the check value is sealed")

		err = masterkeys.Check(ctx, db, box(t, b))
		require.ErrorIs(t, err, masterkeys.ErrWrongKey)
		require.ErrorContains(t, err, secrets.KeyID(b))
		require.ErrorContains(t, err, secrets.KeyID(a)+" active")
		require.ErrorIs(t, masterkeys.Register(ctx, db, box(t, b), t0), masterkeys.ErrWrongKey)
		keys, err = masterkeys.Keys(ctx, db)
		require.NoError(t, err)
		require.Len(t, keys, 1, "a wrong key records nothing")

		// A tampered check value is refused too.
		require.NoError(t, db.Model(&models.MasterKey{}).Where("id = ?", keys[0].ID).Update("check_value", box(t, b).Seal([]byte("x"), nil)).Error)
		require.ErrorIs(t, masterkeys.Check(ctx, db, box(t, a)), masterkeys.ErrWrongKey)
	})
}

// TestDatabaseFromBeforeCheckValues: no key recorded, but secrets exist: a
// key that opens none of them is wrong.
func TestDatabaseFromBeforeCheckValues(t *testing.T) {
	storagetest.Each(t, func(t *testing.T, db *gorm.DB) {
		ctx := context.Background()
		a, b := newKey(t), newKey(t)
		sub := subscription("sub_1")
		sub.SecretEnc = box(t, a).SealString("whsec_x", sub.ID)
		require.NoError(t, db.Create(sub).Error)
		require.ErrorIs(t, masterkeys.Check(ctx, db, box(t, b)), masterkeys.ErrWrongKey)
		require.ErrorIs(t, masterkeys.Register(ctx, db, box(t, b), t0), masterkeys.ErrWrongKey)
		require.NoError(t, masterkeys.Register(ctx, db, box(t, a), t0))
		keys, err := masterkeys.Keys(ctx, db)
		require.NoError(t, err)
		require.Len(t, keys, 1)
	})
}

func subscription(id string) *models.Subscription {
	return &models.Subscription{ID: id, AccountID: "acc_1", Address: "https://example.com", Topics: `["*"]`, Active: true, Scheme: models.SchemeHMAC,
		MaxRetries: 1, BackoffMultiplier: 2, TimeoutSeconds: 5, CreatedAt: t0, UpdatedAt: t0}
}

// seed writes n rows in every sealed column, sealed under b, and returns the
// plaintext of each ("table.column id" → plaintext).
func seed(t *testing.T, db *gorm.DB, b *secrets.Box, n int) map[string]string {
	t.Helper()
	want := map[string]string{}
	for i := range n {
		id := fmt.Sprintf("%03d", i)
		pt := func(col string) string { return "secret-" + col + "-" + id }
		sub := subscription("sub_" + id)
		sub.SecretEnc = b.SealString(pt("s"), sub.ID)
		sub.PrevSecretEnc = b.SealString(pt("p"), sub.ID+"/previous")
		con := &models.Connection{ID: "con_" + id, AccountID: "acc_1", App: "hubspot", UserID: "u", Status: "active", NextSyncAt: t0,
			CredentialsEnc: b.SealString(pt("c"), "con_"+id), CreatedAt: t0, UpdatedAt: t0}
		cs := &models.ConnectSession{ID: "cs_" + id, AccountID: "acc_1", App: "hubspot", UserID: "u", RedirectURL: "https://x", State: "st" + id,
			VerifierEnc: b.SealString(pt("v"), "cs_"+id), ExpiresAt: t0, CreatedAt: t0}
		sk := &models.SigningKey{ID: "kid_" + id, AccountID: "acc_1", PrivateKeyEnc: b.SealString(pt("k"), "kid_"+id), PublicKeyPEM: "pem", CreatedAt: t0}
		for _, r := range []any{sub, con, cs, sk} {
			require.NoError(t, db.Create(r).Error)
		}
		want["subscriptions.secret_enc "+sub.ID] = pt("s")
		want["subscriptions.prev_secret_enc "+sub.ID] = pt("p")
		want["connections.credentials_enc "+con.ID] = pt("c")
		want["connect_sessions.verifier_enc "+cs.ID] = pt("v")
		want["signing_keys.private_key_enc "+sk.ID] = pt("k")
	}
	// A connection without credentials is left alone.
	require.NoError(t, db.Create(&models.Connection{ID: "con_none", AccountID: "acc_1", App: "sandbox", UserID: "u", Status: "active", NextSyncAt: t0}).Error)
	return want
}

// assertAllUnder checks every sealed value opens with only key k to its
// plaintext, and names k.
func assertAllUnder(t *testing.T, db *gorm.DB, k []byte, want map[string]string) {
	t.Helper()
	only := box(t, k)
	for _, c := range models.SealedColumns() {
		var rows []struct {
			ID    string
			Value []byte
		}
		require.NoError(t, db.Raw(fmt.Sprintf("SELECT id, %s AS value FROM %s WHERE %s IS NOT NULL", c.Column, c.Table, c.Column)).Scan(&rows).Error)
		for _, r := range rows {
			if len(r.Value) == 0 {
				continue // no secret (con_none)
			}
			id, ok := secrets.SealedKeyID(r.Value)
			require.True(t, ok, "%s.%s %s: %x", c.Table, c.Column, r.ID, r.Value)
			require.Equal(t, secrets.KeyID(k), id, "%s.%s %s", c.Table, c.Column, r.ID)
			pt, err := only.Open(r.Value, c.AAD(r.ID))
			require.NoError(t, err)
			require.Equal(t, want[c.Table+"."+c.Column+" "+r.ID], string(pt))
		}
	}
}

// TestRotateReencryptsEverySecretOnline follows docs/operations.md: replicas
// learn the new key, rotate runs while an old replica still seals with the
// old key, replicas switch, rotate runs again and retires the old key.
func TestRotateReencryptsEverySecretOnline(t *testing.T) {
	storagetest.Each(t, func(t *testing.T, db *gorm.DB) {
		ctx := context.Background()
		oldK, newK := newKey(t), newKey(t)
		require.NoError(t, masterkeys.Register(ctx, db, box(t, oldK), t0))
		want := seed(t, db, box(t, oldK), 7)

		// Step 1: replicas run with master_key=old, extra_master_keys=new.
		replica := box(t, oldK, newK)
		// Step 2: rotate, configured like them, in batches smaller than a table.
		rep, err := masterkeys.Rotate(ctx, db, replica, newK, masterkeys.Options{Batch: 3, Now: func() time.Time { return t0 }})
		require.NoError(t, err)
		require.Equal(t, 5*7, rep.Rewritten)
		require.Zero(t, rep.Remaining)
		require.Empty(t, rep.Failed)
		require.False(t, rep.Finished, "this process still seals with the old key")
		assertAllUnder(t, db, newK, want)
		status := keyStatus(t, db)
		require.Equal(t, models.MasterKeyActive, status[secrets.KeyID(newK)])
		require.Equal(t, models.MasterKeyPrevious, status[secrets.KeyID(oldK)])
		require.NoError(t, masterkeys.Check(ctx, db, replica), "replicas still on the old key keep running and restarting")

		// Meanwhile an old replica refreshes a token, sealed with the old key.
		var con models.Connection
		require.NoError(t, db.Where("id = ?", "con_003").Take(&con).Error)
		con.CredentialsEnc = replica.SealString("refreshed", con.ID)
		require.NoError(t, db.Model(&con).Update("credentials_enc", con.CredentialsEnc).Error)
		want["connections.credentials_enc con_003"] = "refreshed"

		// Step 3: replicas switch to master_key=new, extra_master_keys=old.
		switched := box(t, newK, oldK)
		require.NoError(t, masterkeys.Check(ctx, db, switched))
		// Step 4: rotate again finishes.
		rep, err = masterkeys.Rotate(ctx, db, switched, newK, masterkeys.Options{Now: func() time.Time { return t0 }})
		require.NoError(t, err)
		require.Equal(t, 1, rep.Rewritten, "only the value written meanwhile")
		require.True(t, rep.Finished)
		require.Equal(t, []string{secrets.KeyID(oldK)}, rep.Retired)
		assertAllUnder(t, db, newK, want)
		status = keyStatus(t, db)
		require.Equal(t, models.MasterKeyRetired, status[secrets.KeyID(oldK)])

		// Step 5: the old key alone is refused; the new one alone works.
		require.ErrorIs(t, masterkeys.Check(ctx, db, box(t, oldK)), masterkeys.ErrWrongKey)
		require.ErrorContains(t, masterkeys.Check(ctx, db, box(t, oldK)), "retired")
		require.NoError(t, masterkeys.Check(ctx, db, box(t, newK)))
		// Rotating back to a retired key is refused.
		_, err = masterkeys.Rotate(ctx, db, box(t, newK, oldK), oldK, masterkeys.Options{})
		require.ErrorIs(t, err, masterkeys.ErrWrongKey)
	})
}

func TestRotateReportsSecretsNoKeyOpens(t *testing.T) {
	storagetest.Each(t, func(t *testing.T, db *gorm.DB) {
		ctx := context.Background()
		oldK, newK, lost := newKey(t), newKey(t), newKey(t)
		require.NoError(t, masterkeys.Register(ctx, db, box(t, oldK), t0))
		seed(t, db, box(t, oldK), 2)
		sub := subscription("sub_lost")
		sub.SecretEnc = box(t, lost).SealString("x", sub.ID)
		require.NoError(t, db.Create(sub).Error)
		rep, err := masterkeys.Rotate(ctx, db, box(t, newK, oldK), newK, masterkeys.Options{})
		require.NoError(t, err)
		require.Equal(t, []string{"subscriptions.secret_enc sub_lost"}, rep.Failed)
		require.False(t, rep.Finished, "a key is never retired while a value is not under the new one")
		require.Equal(t, 1, rep.Remaining)
		require.Equal(t, models.MasterKeyPrevious, keyStatus(t, db)[secrets.KeyID(oldK)])
	})
}

func keyStatus(t *testing.T, db *gorm.DB) map[string]string {
	t.Helper()
	keys, err := masterkeys.Keys(context.Background(), db)
	require.NoError(t, err)
	out := map[string]string{}
	for _, k := range keys {
		out[k.ID] = k.Status
	}
	return out
}

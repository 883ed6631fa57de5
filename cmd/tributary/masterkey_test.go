package main

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"github.com/tributary/tributary/config"
	"github.com/tributary/tributary/models"
	"github.com/tributary/tributary/secrets"
	"github.com/tributary/tributary/storage"
	"github.com/tributary/tributary/storage/storagetest"
)

// runServe starts serve with c and stops it once it accepts connections.
func runServe(t *testing.T, c config.Config) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	ready := make(chan struct{})
	done := make(chan error, 1)
	go func() { done <- serve(ctx, &c, func(string) { close(ready) }) }()
	select {
	case <-ready:
		cancel()
		return <-done
	case err := <-done:
		return err
	}
}

// dumpAll reads every row of every table.
func dumpAll(t *testing.T, db *gorm.DB) map[string][]map[string]any {
	t.Helper()
	tables, err := db.Migrator().GetTables()
	require.NoError(t, err)
	out := map[string][]map[string]any{}
	for _, tb := range tables {
		var rows []map[string]any
		require.NoError(t, db.Table(tb).Find(&rows).Error, tb)
		out[tb] = rows
	}
	return out
}

// TestWrongMasterKeyExitsBeforeWritingAnything: a replica started with
// another key than the database's fails with a message naming master_key,
// and writes nothing — not even a pending migration.
func TestWrongMasterKeyExitsBeforeWritingAnything(t *testing.T) {
	for _, d := range storagetest.Dialects {
		t.Run(d, func(t *testing.T) {
			opts := storagetest.Options(t, d)
			c := config.Default()
			c.ListenAddr = "127.0.0.1:0"
			c.DataDir = opts.DataDir
			if c.DataDir == "" {
				c.DataDir = t.TempDir()
			}
			c.DatabaseURL = opts.URL
			c.MasterKey = secrets.GenerateKey()
			c.Log.Level = "error"
			require.NoError(t, runServe(t, c), "first start records the key")

			db, err := storage.Open(context.Background(), opts)
			require.NoError(t, err)
			defer storage.Close(db)
			var keys []models.MasterKey
			require.NoError(t, db.Find(&keys).Error)
			require.Len(t, keys, 1)
			// Leave a migration pending: a wrong key must not apply it.
			down, err := storage.MigrateDown(context.Background(), db)
			require.NoError(t, err)
			before := dumpAll(t, db)

			wrong := c
			wrong.MasterKey = secrets.GenerateKey()
			err = runServe(t, wrong)
			require.Error(t, err)
			require.ErrorContains(t, err, "master_key")
			require.ErrorContains(t, err, "wrong master key")
			require.Equal(t, before, dumpAll(t, db), "nothing written")
			pending, err := storage.Pending(context.Background(), db)
			require.NoError(t, err)
			require.Contains(t, pending, down)

			require.NoError(t, runServe(t, c), "the right key still starts")
			pending, err = storage.Pending(context.Background(), db)
			require.NoError(t, err)
			require.Empty(t, pending)
		})
	}
}

// TestCLIMasterKeyRotate runs the documented procedure through the CLI.
func TestCLIMasterKeyRotate(t *testing.T) {
	for _, d := range storagetest.Dialects {
		t.Run(d, func(t *testing.T) {
			opts := storagetest.Options(t, d)
			dir := opts.DataDir
			if dir == "" {
				dir = t.TempDir()
			}
			oldK, newK := secrets.GenerateKey(), secrets.GenerateKey()
			run := func(master, extra string, args ...string) (string, error) {
				root := newRoot()
				var out bytes.Buffer
				root.SetOut(&out)
				args = append(args, "--data-dir", dir, "--log-level", "error", "--master-key", master)
				if opts.URL != "" {
					args = append(args, "--database-url", opts.URL)
				}
				if extra != "" {
					args = append(args, "--extra-master-keys", extra)
				}
				root.SetArgs(args)
				err := root.ExecuteContext(context.Background())
				return out.String(), err
			}
			// A webhook with a secret, sealed with the old key.
			out, err := run(oldK, "", "webhooks", "test", "--help")
			require.NoError(t, err, out)
			c := config.Default()
			c.DataDir, c.DatabaseURL, c.MasterKey = dir, opts.URL, oldK
			box, _, err := c.MasterBox()
			require.NoError(t, err)
			db, err := openDBWithKey(context.Background(), &c, newLogger(&c, &bytes.Buffer{}), true, box)
			require.NoError(t, err)
			defer storage.Close(db)
			sub := &models.Subscription{ID: "sub_1", AccountID: "acc_1", Address: "https://example.com", Topics: `["*"]`, Active: true,
				Scheme: models.SchemeHMAC, SecretEnc: box.SealString("whsec_1", "sub_1"), MaxRetries: 1, BackoffMultiplier: 2, TimeoutSeconds: 5}
			require.NoError(t, db.Create(sub).Error)

			out, err = run(oldK, newK, "master-key", "rotate", "--new-key", newK)
			require.NoError(t, err, out)
			require.Contains(t, out, "1 secrets re-encrypted")
			require.Contains(t, out, "run this command again")
			_, err = run(newK, "", "master-key", "status")
			require.NoError(t, err, "the new key is known once rotate ran")

			out, err = run(newK, oldK, "master-key", "rotate", "--new-key", newK)
			require.NoError(t, err, out)
			require.Contains(t, out, "rotation finished")
			out, err = run(newK, "", "master-key", "status")
			require.NoError(t, err, out)
			require.Contains(t, out, "retired")
			_, err = run(oldK, "", "master-key", "status")
			require.ErrorContains(t, err, "retired")

			var got models.Subscription
			require.NoError(t, db.Take(&got, "id = ?", "sub_1").Error)
			nb, err := secrets.New(mustKey(t, newK))
			require.NoError(t, err)
			sec, err := nb.OpenString(got.SecretEnc, "sub_1")
			require.NoError(t, err)
			require.Equal(t, "whsec_1", sec)
		})
	}
}

func mustKey(t *testing.T, s string) []byte {
	t.Helper()
	k, err := secrets.ParseKey(s)
	require.NoError(t, err)
	return k
}

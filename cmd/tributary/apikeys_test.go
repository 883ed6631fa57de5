package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tributary/tributary/accounts"
	"github.com/tributary/tributary/storage"
)

// accounts list finds account ids again; api-keys create|list|revoke manage
// an account's keys, and a revoked key no longer authenticates.
func TestCLIAccountsAndAPIKeys(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	run := func(args ...string) (string, error) {
		root := newRoot()
		var out bytes.Buffer
		root.SetOut(&out)
		root.SetErr(&out)
		root.SetArgs(append(args, "--data-dir", dir, "--log-level", "error"))
		err := root.ExecuteContext(context.Background())
		return out.String(), err
	}
	must := func(args ...string) string {
		out, err := run(args...)
		require.NoError(t, err, out)
		return out
	}
	var acc struct{ AccountID string }
	require.NoError(t, json.Unmarshal([]byte(must("accounts", "create", "--name", "Acme", "--json")), &acc))
	must("accounts", "create", "--name", "Other")
	var list struct{ Data []struct{ ID, Name string } }
	require.NoError(t, json.Unmarshal([]byte(must("accounts", "list", "--json")), &list))
	require.Len(t, list.Data, 2)
	require.Contains(t, must("accounts", "list"), acc.AccountID+"\t")

	var key struct{ ID, APIKey string }
	require.NoError(t, json.Unmarshal([]byte(must("api-keys", "create", "--account", acc.AccountID, "--name", "deploy", "--json")), &key))
	require.True(t, strings.HasPrefix(key.APIKey, "trb_"))
	text := must("api-keys", "list", "--account", acc.AccountID)
	require.Contains(t, text, key.ID)
	require.Contains(t, text, `"deploy"`)
	require.NotContains(t, text, key.APIKey)

	db, err := storage.Open(context.Background(), storage.Options{DataDir: dir})
	require.NoError(t, err)
	defer storage.Close(db)
	_, err = accounts.New(db).Authenticate(context.Background(), key.APIKey)
	require.NoError(t, err)
	require.Contains(t, must("api-keys", "revoke", "--account", acc.AccountID, key.ID), "revoked")
	_, err = accounts.New(db).Authenticate(context.Background(), key.APIKey)
	require.Error(t, err)
	require.Contains(t, must("api-keys", "list", "--account", acc.AccountID), "revoked")

	_, err = run("api-keys", "revoke", "--account", "acc_nope", key.ID)
	require.Error(t, err)
	_, err = run("api-keys", "list")
	require.ErrorContains(t, err, "account")
}

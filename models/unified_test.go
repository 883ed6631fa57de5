package models_test

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tributary/tributary/models"
)

func TestWithRemoteData(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, payload, raw, want string
	}{
		{"adds", `{"remoteId":"1","email":"a@x"}`, `{"Email":"a@x","Id":"1"}`, `{"remoteId":"1","email":"a@x","remoteData":{"Email":"a@x","Id":"1"}}`},
		{"replaces", `{"remoteId":"1","remoteData":{"old":true}}`, `{"new":true}`, `{"remoteId":"1","remoteData":{"new":true}}`},
		{"no raw", `{"remoteId":"1"}`, ``, `{"remoteId":"1"}`},
		{"invalid raw", `{"remoteId":"1"}`, `{nope`, `{"remoteId":"1"}`},
	}
	for _, tc := range cases {
		got := models.WithRemoteData(json.RawMessage(tc.payload), json.RawMessage(tc.raw))
		require.JSONEq(t, tc.want, string(got), tc.name)
	}
	require.Equal(t, "[1]", string(models.WithRemoteData(json.RawMessage("[1]"), json.RawMessage(`{}`))), "not an object: unchanged")
}

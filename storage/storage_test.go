package storage_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tributary/tributary/storage"
)

func TestValidateURL(t *testing.T) {
	for _, tc := range []struct {
		url string
		ok  bool
	}{
		{"postgres://u@127.0.0.1:5432/db", true},
		{"postgresql://u@h/db?sslmode=disable", true},
		{"mysql://u@h/db", false},
		{"postgres://", false},
		{"::not a url", false},
	} {
		err := storage.ValidateURL(tc.url)
		require.Equal(t, tc.ok, err == nil, "%s: %v", tc.url, err)
	}
}

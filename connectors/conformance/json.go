package conformance

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"
)

func jsonOf(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return string(b)
}

func jsonValid(b []byte) bool { return json.Valid(b) }

package sandbox_test

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tributary/tributary/connectors/sandbox"
)

var update = flag.Bool("update", false, "rewrite testdata/golden")

// TestGolden normalizes every app record in testdata/records (one per object,
// plus variants named <object>_<case>.json) and compares with testdata/golden.
func TestGolden(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "records", "*.json"))
	require.NoError(t, err)
	seen := map[string]bool{}
	c := sandbox.New(nil, nil)
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".json")
		object, _, _ := strings.Cut(name, "_")
		seen[object] = true
		t.Run(name, func(t *testing.T) {
			raw, err := os.ReadFile(f)
			require.NoError(t, err)

			// The fixture is a valid app record: its fields pass the app's validation.
			var fields map[string]json.RawMessage
			require.NoError(t, json.Unmarshal(raw, &fields))
			for _, k := range []string{sandbox.FieldID, sandbox.FieldCreatedAt, sandbox.FieldUpdatedAt, sandbox.FieldDeleted} {
				delete(fields, k)
			}
			body, _ := json.Marshal(fields)
			require.NoError(t, sandbox.ValidateFields(object, body))

			rec, err := c.Normalize(object, raw)
			require.NoError(t, err)
			require.Equal(t, object, rec.Object)
			require.JSONEq(t, string(raw), string(rec.Raw), "Raw is the app JSON as received")
			got, err := json.MarshalIndent(map[string]any{
				"remoteId": rec.RemoteID, "remoteUpdatedAt": rec.RemoteUpdatedAt, "deleted": rec.Deleted, "data": rec.Data,
			}, "", "  ")
			require.NoError(t, err)
			got = append(got, '\n')
			golden := filepath.Join("testdata", "golden", name+".json")
			if *update {
				require.NoError(t, os.WriteFile(golden, got, 0o644))
			}
			want, err := os.ReadFile(golden)
			require.NoError(t, err)
			require.Equal(t, string(want), string(got))
		})
	}
	for _, o := range sandbox.Objects() {
		require.True(t, seen[o], "no golden record for %s", o)
	}
}

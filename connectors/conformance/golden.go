package conformance

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tributary/tributary/connectors"
)

// RequireGoldenFiles requires a golden normalization file
// testdata/golden/<object>.json (relative to the connector's package) for
// every object the app lists, each a non-empty JSON document. The
// connector's own golden test produces and compares them; this keeps a new
// object from shipping without one.
func RequireGoldenFiles(t *testing.T, app connectors.Connector) {
	t.Helper()
	for _, object := range app.Info().Objects {
		path := filepath.Join("testdata", "golden", object+".json")
		b, err := os.ReadFile(path)
		require.NoError(t, err, "%s: no golden normalization file for %s", app.Info().Name, object)
		require.True(t, len(b) > 2 && jsonValid(b), "%s is not a JSON document", path)
	}
}

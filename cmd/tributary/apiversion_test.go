package main

import (
	"bytes"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tributary/tributary/connectors"
	"github.com/tributary/tributary/connectors/shopify"
)

// TestWarnOutdatedAPIs: serve warns at start when a connector's pinned
// provider API version is past its end of support, and only then.
func TestWarnOutdatedAPIs(t *testing.T) {
	for _, tc := range []struct {
		name    string
		version string
		now     time.Time
		warn    bool
	}{
		{"default version inside its window", shopify.DefaultAPIVersion, time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC), false},
		{"default version past its window", shopify.DefaultAPIVersion, time.Date(2027, 10, 1, 0, 0, 0, 0, time.UTC), true},
		{"old pin", "2025-01", time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			log := slog.New(slog.NewTextHandler(&buf, nil))
			apps := connectors.NewRegistry(shopify.New(connectors.AppConfig{}, shopify.WithAPIVersion(tc.version)))
			warnOutdatedAPIs(log, apps, tc.now)
			if tc.warn {
				require.Contains(t, buf.String(), "level=WARN")
				require.Contains(t, buf.String(), "apiVersion="+tc.version)
			} else {
				require.Empty(t, buf.String())
			}
		})
	}
}

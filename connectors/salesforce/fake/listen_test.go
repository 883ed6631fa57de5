package fake

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestListenAndServeSeeded(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	type ready struct{ org, token, base string }
	readyc := make(chan ready, 1)
	done := make(chan error, 1)
	go func() {
		done <- ListenAndServe(ctx, "127.0.0.1:0", func(org, token, base string) { readyc <- ready{org, token, base} })
	}()
	var r ready
	select {
	case r = <-readyc:
	case err := <-done:
		t.Fatal(err)
	}
	get := func(path string) map[string]any {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.base+path, nil)
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer "+r.token)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, resp.StatusCode, string(b))
		var out map[string]any
		require.NoError(t, json.Unmarshal(b, &out))
		return out
	}
	q := get("/services/data/v60.0/query?q=" + url.QueryEscape("SELECT Id, Name FROM Opportunity ORDER BY SystemModstamp, Id"))
	require.EqualValues(t, 2, q["totalSize"])
	users := get("/services/data/v60.0/query?q=" + url.QueryEscape("SELECT Id FROM User"))
	userID := users["records"].([]any)[0].(map[string]any)["Id"].(string)
	id := get("/id/" + r.org + "/" + userID)
	require.Equal(t, r.org, id["organization_id"])
	cancel()
	require.NoError(t, <-done)
}

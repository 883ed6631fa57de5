package main

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
	"github.com/stretchr/testify/require"

	"github.com/tributary/tributary/forwarding/signing"
	"github.com/tributary/tributary/storage"
)

func TestListenForwardsPulledEventsSigned(t *testing.T) {
	t.Parallel()
	e := startEngine(t, storage.SQLite, allowPrivate)
	key := e.account(t, "Acme")
	secret, err := signing.NewStandardSecret()
	require.NoError(t, err)
	wh, err := standardwebhooks.NewWebhook(secret)
	require.NoError(t, err)
	var mu sync.Mutex
	var topics []string
	local := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		require.NoError(t, wh.Verify(body, r.Header), "signed with the local secret")
		mu.Lock()
		topics = append(topics, r.Header.Get("X-Tributary-Topic"))
		mu.Unlock()
	}))
	t.Cleanup(local.Close)

	// An event before listen starts is not forwarded ("latest").
	sink := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	t.Cleanup(sink.Close)
	st, sub := e.do(t, "POST", "/v1/webhooks", key, map[string]any{"address": sink.URL, "topic": []string{"*"}})
	require.Equal(t, 201, st)
	id := sub["id"].(string)
	st, _ = e.do(t, "POST", "/v1/webhooks/"+id+"/test", key, map[string]any{"topic": "crm/leads"})
	require.Equal(t, 200, st)

	l := &listener{api: e.url, key: key, to: local.URL, secret: secret, topics: []string{"crm/*"}, out: io.Discard, hc: http.DefaultClient}
	cursor, err := l.pull(context.Background(), "latest")
	require.NoError(t, err)
	for _, topic := range []string{"crm/contacts", "commerce/orders", "crm/notes"} {
		st, _ = e.do(t, "POST", "/v1/webhooks/"+id+"/test", key, map[string]any{"topic": topic})
		require.Equal(t, 200, st)
	}
	cursor, err = l.pull(context.Background(), cursor)
	require.NoError(t, err)
	_, err = l.pull(context.Background(), cursor) // nothing new: nothing forwarded twice
	require.NoError(t, err)
	mu.Lock()
	defer mu.Unlock()
	require.Equal(t, []string{"crm/contacts", "crm/notes"}, topics, "new events only, in order, filtered, once")
}

package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tributary/tributary/forwarding/signing"
)

// tributary receive --account B refuses a delivery signed for account A, both
// with B's own key set and (misconfigured) with A's; --account A accepts it.
func TestReceiveChecksTheAccount(t *testing.T) {
	t.Parallel()
	keyA, err := signing.GenerateKey()
	require.NoError(t, err)
	keyB, err := signing.GenerateKey()
	require.NoError(t, err)
	sA, err := signing.NewSigner(keyA)
	require.NoError(t, err)
	sB, err := signing.NewSigner(keyB)
	require.NoError(t, err)
	sets := map[string]signing.JWKS{
		"/.well-known/jwks/acc_a.json": {Keys: []signing.JWK{signing.PublicJWK(sA.PublicKey(), sA.KeyID())}},
		"/.well-known/jwks/acc_b.json": {Keys: []signing.JWK{signing.PublicJWK(sB.PublicKey(), sB.KeyID())}},
	}
	engine := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		set, ok := sets[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		_ = json.NewEncoder(w).Encode(set)
	}))
	t.Cleanup(engine.Close)

	body := []byte(`{"id":"evt_1","accountId":"acc_a","topic":"crm/contacts","userId":"victim"}`)
	now := time.Now()
	sig, err := sA.Sign("evt_1", now, body)
	require.NoError(t, err)
	h := signing.Headers("evt_1", "crm/contacts", now, sA.KeyID(), sig, 1)

	ctx := context.Background()
	require.NoError(t, (&jwksVerifier{url: receiveJWKSURL(engine.URL, "acc_a"), account: "acc_a"}).verify(ctx, h, body))
	require.ErrorIs(t, (&jwksVerifier{url: receiveJWKSURL(engine.URL, "acc_b"), account: "acc_b"}).verify(ctx, h, body), signing.ErrUnknownKey)
	require.ErrorIs(t, (&jwksVerifier{url: engine.URL + "/.well-known/jwks/acc_a.json", account: "acc_b"}).verify(ctx, h, body), signing.ErrWrongAccount)
	require.Equal(t, engine.URL+"/.well-known/jwks.json", receiveJWKSURL(engine.URL+"/", ""))
}

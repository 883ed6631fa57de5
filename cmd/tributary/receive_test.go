package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tributary/tributary/forwarding/signing"
	"github.com/tributary/tributary/storage"
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

// tributary receive verifies each scheme over a real socket: rsa with the
// account's JWKS, standard (whsec_ secret) and hmac with --secret; a wrong
// signature, a missing secret or a scheme other than --scheme is printed as
// NOT VERIFIED with the reason and answered 401.
func TestReceiveVerifiesEachScheme(t *testing.T) {
	t.Parallel()
	key, err := signing.GenerateKey()
	require.NoError(t, err)
	signer, err := signing.NewSigner(key)
	require.NoError(t, err)
	otherKey, err := signing.GenerateKey()
	require.NoError(t, err)
	other, err := signing.NewSigner(otherKey)
	require.NoError(t, err)
	engine := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_ = json.NewEncoder(w).Encode(signing.JWKS{Keys: []signing.JWK{signing.PublicJWK(signer.PublicKey(), signer.KeyID())}})
	}))
	t.Cleanup(engine.Close)
	secret, err := signing.NewStandardSecret()
	require.NoError(t, err)
	otherSecret, err := signing.NewStandardSecret()
	require.NoError(t, err)

	body := []byte(`{"id":"evt_1","accountId":"acc_a","topic":"crm/contacts","updateType":"updated"}`)
	now := time.Now()
	rsaSigned := func(s *signing.Signer, ts time.Time) http.Header {
		sig, err := s.Sign("evt_1", ts, body)
		require.NoError(t, err)
		return signing.Headers("evt_1", "crm/contacts", ts, s.KeyID(), sig, 1)
	}
	standardSigned := func(secret string, ts time.Time) http.Header {
		sig, err := signing.SignStandard(secret, "evt_1", ts, body)
		require.NoError(t, err)
		h := signing.StandardHeaders("evt_1", ts, sig)
		h.Set(signing.HeaderEventID, "evt_1")
		return h
	}
	hmacSigned := func(secret string) http.Header {
		h := http.Header{}
		h.Set(signing.HeaderEventID, "evt_1")
		h.Set(signing.HeaderHMACSignature, signing.SignHMAC(secret, body))
		return h
	}
	for _, tc := range []struct {
		name, scheme, secret string
		header               http.Header
		body                 []byte // nil = body
		wantStatus           int
		want                 string
	}{
		{"rsa", "auto", "", rsaSigned(signer, now), nil, 200, "verified (rsa)"},
		{"rsa other key", "auto", "", rsaSigned(other, now), nil, 401, "NOT VERIFIED (rsa: "},
		{"rsa tampered body", "auto", secret, rsaSigned(signer, now), []byte(`{"accountId":"acc_a","topic":"x"}`), 401, "rsa: wrong signature"},
		{"standard", "auto", secret, standardSigned(secret, now), nil, 200, "verified (standard)"},
		{"standard required", "standard", secret, standardSigned(secret, now), nil, 200, "verified (standard)"},
		{"standard other secret", "auto", secret, standardSigned(otherSecret, now), nil, 401, "NOT VERIFIED (standard: wrong signature)"},
		{"standard tampered body", "auto", secret, standardSigned(secret, now), []byte(`{"accountId":"acc_b"}`), 401, "standard: wrong signature"},
		{"standard stale", "auto", secret, standardSigned(secret, now.Add(-time.Hour)), nil, 401, "standard: unable to verify payload, err: message timestamp too old"},
		{"standard without secret", "auto", "", standardSigned(secret, now), nil, 401, "pass the webhook's secret with --secret whsec_"},
		{"hmac", "auto", secret, hmacSigned(secret), nil, 200, "verified (hmac)"},
		{"hmac required", "hmac", secret, hmacSigned(secret), nil, 200, "verified (hmac)"},
		{"hmac other secret", "auto", secret, hmacSigned(otherSecret), nil, 401, "NOT VERIFIED (hmac: wrong signature)"},
		{"hmac without secret", "auto", "", hmacSigned(secret), nil, 401, "hmac signature: pass the webhook's secret with --secret"},
		{"scheme mismatch", "hmac", secret, standardSigned(secret, now), nil, 401, "signed with standard, --scheme requires hmac"},
		{"unsigned", "auto", secret, http.Header{}, nil, 401, "NOT VERIFIED (no signature header"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			v, err := newDeliveryVerifier(tc.scheme, tc.secret, &jwksVerifier{url: receiveJWKSURL(engine.URL, "acc_a"), account: "acc_a"})
			require.NoError(t, err)
			var out syncBuffer
			srv := httptest.NewServer(receiveHandler(v, &out, http.StatusOK, false))
			t.Cleanup(srv.Close)
			b := body
			if tc.body != nil {
				b = tc.body
			}
			req, err := http.NewRequest(http.MethodPost, srv.URL+"/hook", bytes.NewReader(b))
			require.NoError(t, err)
			for k, vs := range tc.header {
				req.Header[k] = vs
			}
			resp, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			resp.Body.Close()
			require.Equal(t, tc.wantStatus, resp.StatusCode, out.String())
			require.Contains(t, out.String(), tc.want)
		})
	}
	for _, bad := range [][2]string{{"standard", ""}, {"hmac", ""}, {"standard", "not-whsec"}, {"ed25519", secret}} {
		_, err := newDeliveryVerifier(bad[0], bad[1], &jwksVerifier{})
		require.Error(t, err, "%v", bad)
	}
}

// Real standard and hmac deliveries from the engine (POST
// /v1/webhooks/{id}/test) verify in tributary receive with the secret the
// engine answered, and not with another.
func TestReceiveVerifiesEngineDeliveries(t *testing.T) {
	t.Parallel()
	e := startEngine(t, storage.SQLite, allowPrivate)
	key := e.account(t, "Acme")
	wrong, err := signing.NewStandardSecret()
	require.NoError(t, err)
	for _, scheme := range []string{"standard", "hmac"} {
		t.Run(scheme, func(t *testing.T) {
			var out syncBuffer
			var v *deliveryVerifier
			var mu sync.Mutex
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				h := receiveHandler(v, &out, http.StatusOK, false)
				mu.Unlock()
				h.ServeHTTP(w, r)
			}))
			t.Cleanup(srv.Close)
			st, wh := e.do(t, "POST", "/v1/webhooks", key, map[string]any{"address": srv.URL, "topic": []string{"*"},
				"signing": map[string]any{"scheme": scheme}})
			require.Equal(t, 201, st, "%v", wh)
			secret := wh["signing"].(map[string]any)["secret"].(string)
			for _, tc := range []struct {
				secret, want string
				status       float64
			}{{secret, "verified (" + scheme + ")", 200}, {wrong, "NOT VERIFIED (" + scheme + ": wrong signature)", 401}} {
				mu.Lock()
				v, err = newDeliveryVerifier(scheme, tc.secret, &jwksVerifier{})
				mu.Unlock()
				require.NoError(t, err)
				st, att := e.do(t, "POST", "/v1/webhooks/"+wh["id"].(string)+"/test", key, map[string]any{"topic": "crm/contacts"})
				require.Equal(t, 200, st, "%v", att)
				require.Equal(t, tc.status, att["statusCode"], "%v", att)
				require.Contains(t, out.String(), tc.want)
			}
		})
	}
}

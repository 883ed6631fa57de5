package signing_test

import (
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tributary/tributary/forwarding/signing"
	"github.com/tributary/tributary/forwarding/signing/signingtest"
)

var (
	keyOnce sync.Once
	keys    [2]*rsa.PrivateKey
	keyErr  error
)

// testKeys generates two RSA keys once per test binary (generation is slow under -race).
func testKeys(tb testing.TB) [2]*rsa.PrivateKey {
	tb.Helper()
	keyOnce.Do(func() {
		for i := range keys {
			if keys[i], keyErr = signing.GenerateKey(); keyErr != nil {
				return
			}
		}
	})
	require.NoError(tb, keyErr)
	return keys
}

func TestGenerateKeyAndPEMRoundTrip(t *testing.T) {
	t.Parallel()
	key := testKeys(t)[0]
	require.Equal(t, signing.KeyBits, key.N.BitLen())

	privPEM, err := signing.EncodePrivateKeyPEM(key)
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(string(privPEM), "-----BEGIN PRIVATE KEY-----"))
	gotPriv, err := signing.DecodePrivateKeyPEM(privPEM)
	require.NoError(t, err)
	require.True(t, key.Equal(gotPriv))

	pubPEM, err := signing.EncodePublicKeyPEM(&key.PublicKey)
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(string(pubPEM), "-----BEGIN PUBLIC KEY-----"))
	gotPub, err := signing.DecodePublicKeyPEM(pubPEM)
	require.NoError(t, err)
	require.True(t, key.PublicKey.Equal(gotPub))

	for _, bad := range [][]byte{nil, []byte("garbage"), pubPEM} {
		_, err := signing.DecodePrivateKeyPEM(bad)
		require.Error(t, err)
	}
	_, err = signing.DecodePublicKeyPEM(privPEM)
	require.Error(t, err)
}

func TestKeyID(t *testing.T) {
	t.Parallel()
	ks := testKeys(t)
	a, err := signing.KeyID(&ks[0].PublicKey)
	require.NoError(t, err)
	again, err := signing.KeyID(&ks[0].PublicKey)
	require.NoError(t, err)
	b, err := signing.KeyID(&ks[1].PublicKey)
	require.NoError(t, err)
	require.Equal(t, a, again)
	require.NotEqual(t, a, b)
	require.True(t, strings.HasPrefix(a, "kid_"))
	raw, err := base64.RawURLEncoding.DecodeString(strings.TrimPrefix(a, "kid_"))
	require.NoError(t, err)
	require.Len(t, raw, 16)
}

func TestHeaders(t *testing.T) {
	t.Parallel()
	ts := time.Unix(1763807014, 500)
	h := signing.Headers("evt_1", "crm/contacts", ts, "kid_x", "v1,abc", 3)
	want := map[string]string{
		"Content-Type":                 "application/json",
		"X-Tributary-Event-Id":         "evt_1",
		"X-Tributary-Topic":            "crm/contacts",
		"X-Tributary-Timestamp":        "1763807014",
		"X-Tributary-Key-Id":           "kid_x",
		"X-Tributary-Signature":        "v1,abc",
		"X-Tributary-Delivery-Attempt": "3",
	}
	require.Len(t, h, len(want))
	for k, v := range want {
		require.Equal(t, []string{v}, h.Values(k), k)
	}
}

// independentVerify knows only a JWKS JSON document (signingtest shares no
// code with this package).
func independentVerify(t *testing.T, jwksJSON []byte, h http.Header, body []byte) bool {
	t.Helper()
	ok, err := signingtest.VerifyWithJWKS(jwksJSON, h, body)
	require.NoError(t, err)
	return ok
}

func TestRSASignVerify(t *testing.T) {
	t.Parallel()
	ks := testKeys(t)
	signer, err := signing.NewSigner(ks[0])
	require.NoError(t, err)
	rotated, err := signing.NewSigner(ks[1])
	require.NoError(t, err)

	jwks := signing.JWKS{Keys: []signing.JWK{
		signing.PublicJWK(signer.PublicKey(), signer.KeyID()),
		signing.PublicJWK(rotated.PublicKey(), rotated.KeyID()),
	}}
	jwksJSON, err := json.Marshal(jwks)
	require.NoError(t, err)
	require.Contains(t, string(jwksJSON), `"kty":"RSA"`)
	require.Contains(t, string(jwksJSON), `"e":"AQAB"`)
	require.NotContains(t, string(jwksJSON), "=")

	now := time.Unix(1763807014, 0)
	// Raw bytes with spacing that a re-serialization would lose.
	body := []byte(`{"id": "evt_1",  "topic":"crm/contacts"}`)
	const tolerance = 5 * time.Minute

	sign := func(s *signing.Signer, ts time.Time) http.Header {
		sig, err := s.Sign("evt_1", ts, body)
		require.NoError(t, err)
		return signing.Headers("evt_1", "crm/contacts", ts, s.KeyID(), sig, 1)
	}

	tests := []struct {
		name        string
		header      func() http.Header
		body        []byte
		wantErr     error
		independent bool // expected result of the independent verifier
	}{
		{name: "valid", header: func() http.Header { return sign(signer, now) }, body: body, independent: true},
		{name: "valid with rotated key", header: func() http.Header { return sign(rotated, now) }, body: body, independent: true},
		{name: "valid at edge of tolerance", header: func() http.Header { return sign(signer, now.Add(-tolerance)) }, body: body, independent: true},
		{name: "tampered body", header: func() http.Header { return sign(signer, now) }, body: []byte(`{"id":"evt_1","topic":"crm/contacts"}`), wantErr: signing.ErrInvalidSignature},
		{name: "wrong kid", header: func() http.Header {
			h := sign(signer, now)
			h.Set("X-Tributary-Key-Id", rotated.KeyID())
			return h
		}, body: body, wantErr: signing.ErrInvalidSignature},
		{name: "unknown kid", header: func() http.Header {
			h := sign(signer, now)
			h.Set("X-Tributary-Key-Id", "kid_nope")
			return h
		}, body: body, wantErr: signing.ErrUnknownKey},
		{name: "old timestamp", header: func() http.Header { return sign(signer, now.Add(-tolerance-time.Second)) }, body: body, wantErr: signing.ErrTimestampSkew, independent: true},
		{name: "future timestamp", header: func() http.Header { return sign(signer, now.Add(tolerance+time.Second)) }, body: body, wantErr: signing.ErrTimestampSkew, independent: true},
		{name: "timestamp replaced after signing", header: func() http.Header {
			h := sign(signer, now.Add(-time.Minute))
			h.Set("X-Tributary-Timestamp", strconv.FormatInt(now.Unix(), 10))
			return h
		}, body: body, wantErr: signing.ErrInvalidSignature},
		{name: "event id replaced after signing", header: func() http.Header {
			h := sign(signer, now)
			h.Set("X-Tributary-Event-Id", "evt_2")
			return h
		}, body: body, wantErr: signing.ErrInvalidSignature},
		{name: "missing signature", header: func() http.Header {
			h := sign(signer, now)
			h.Del("X-Tributary-Signature")
			return h
		}, body: body, wantErr: signing.ErrMissingHeader},
		{name: "wrong version", header: func() http.Header {
			h := sign(signer, now)
			h.Set("X-Tributary-Signature", "v2,"+strings.TrimPrefix(h.Get("X-Tributary-Signature"), "v1,"))
			return h
		}, body: body, wantErr: signing.ErrInvalidSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := tt.header()
			err := signing.VerifyRSA(jwks, h, tt.body, tolerance, now)
			if tt.wantErr != nil {
				require.ErrorIs(t, err, tt.wantErr)
			} else {
				require.NoError(t, err)
			}
			if h.Get("X-Tributary-Signature") != "" && strings.HasPrefix(h.Get("X-Tributary-Signature"), "v1,") {
				require.Equal(t, tt.independent, independentVerify(t, jwksJSON, h, tt.body))
			}
		})
	}
}

func TestJWKRoundTrip(t *testing.T) {
	t.Parallel()
	key := testKeys(t)[0]
	jwk := signing.PublicJWK(&key.PublicKey, "kid_a")
	pub, err := jwk.RSAPublicKey()
	require.NoError(t, err)
	require.True(t, key.PublicKey.Equal(pub))

	bad := jwk
	bad.Kty = "EC"
	_, err = bad.RSAPublicKey()
	require.Error(t, err)
	bad = jwk
	bad.N = "!!"
	_, err = bad.RSAPublicKey()
	require.Error(t, err)
}

func TestSignHMAC(t *testing.T) {
	t.Parallel()
	tests := []struct {
		secret, body, want string
	}{
		// Well-known HMAC-SHA256 example value.
		{"key", "The quick brown fox jumps over the lazy dog", "sha256=f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8"},
		// RFC 4231 test case 2.
		{"Jefe", "what do ya want for nothing?", "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"},
	}
	for _, tt := range tests {
		require.Equal(t, tt.want, signing.SignHMAC(tt.secret, []byte(tt.body)))
	}
}

func BenchmarkRSASign(b *testing.B) {
	signer, err := signing.NewSigner(testKeys(b)[0])
	require.NoError(b, err)
	body := []byte(`{"id":"evt_1","topic":"crm/contacts","dataPayload":{"email":"a@example.com"}}`)
	ts := time.Unix(1763807014, 0)
	start := time.Now()
	n := 0
	for b.Loop() {
		if _, err := signer.Sign("evt_1", ts, body); err != nil {
			b.Fatal(err)
		}
		n++
	}
	b.ReportMetric(float64(n)/time.Since(start).Seconds(), "signs/s")
}

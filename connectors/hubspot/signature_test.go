package hubspot

import (
	"encoding/json"
	"net/http"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tributary/tributary/connectors"
)

type vectors struct {
	V3 []struct {
		ClientSecret      string `json:"client_secret"`
		Method            string `json:"method"`
		URI               string `json:"uri"`
		Body              string `json:"body"`
		Timestamp         string `json:"timestamp"`
		ExpectedSignature string `json:"expected_signature"`
	} `json:"v3"`
	V2 []struct {
		ClientSecret string `json:"client_secret"`
		Method       string `json:"method"`
		URI          string `json:"uri"`
		Body         string `json:"body"`
		Expected     string `json:"expected_signature_hex"`
	} `json:"v2"`
	V1 []struct {
		ClientSecret string `json:"client_secret"`
		Body         string `json:"body"`
		Expected     string `json:"expected_signature_hex"`
	} `json:"v1"`
}

func loadVectors(t *testing.T) vectors {
	t.Helper()
	data, err := os.ReadFile("testdata/signature_test_vectors.json")
	require.NoError(t, err)
	var v vectors
	require.NoError(t, json.Unmarshal(data, &v))
	require.NotEmpty(t, v.V3)
	return v
}

func atMillis(t *testing.T, ts string) func() time.Time {
	t.Helper()
	ms, err := strconv.ParseInt(ts, 10, 64)
	require.NoError(t, err)
	return func() time.Time { return time.UnixMilli(ms) }
}

func TestSignatureVectorsV3(t *testing.T) {
	for _, v := range loadVectors(t).V3 {
		t.Run(v.Timestamp, func(t *testing.T) {
			require.Equal(t, v.ExpectedSignature, SignV3(v.ClientSecret, v.Method, v.URI, []byte(v.Body), v.Timestamp))
			c := New(connectors.AppConfig{ClientSecret: v.ClientSecret}, WithClock(atMillis(t, v.Timestamp)))
			req := &connectors.InboundRequest{Method: v.Method, URL: v.URI, Body: []byte(v.Body), Header: http.Header{
				// Spelled as HubSpot's docs do; lookup is case-insensitive.
				"X-HubSpot-Signature-v3":      {v.ExpectedSignature},
				"X-HubSpot-Request-Timestamp": {v.Timestamp},
			}}
			require.NoError(t, c.VerifyWebhook(req))

			// WebhookSecret wins over ClientSecret when set.
			other := New(connectors.AppConfig{ClientSecret: "wrong", WebhookSecret: v.ClientSecret}, WithClock(atMillis(t, v.Timestamp)))
			require.NoError(t, other.VerifyWebhook(req))
			wrong := New(connectors.AppConfig{ClientSecret: v.ClientSecret, WebhookSecret: "wrong"}, WithClock(atMillis(t, v.Timestamp)))
			require.ErrorIs(t, wrong.VerifyWebhook(req), connectors.ErrBadSignature)
		})
	}
}

func TestSignatureVectorsV1V2(t *testing.T) {
	v := loadVectors(t)
	for _, x := range v.V1 {
		require.Equal(t, x.Expected, signV1(x.ClientSecret, []byte(x.Body)))
	}
	for _, x := range v.V2 {
		require.Equal(t, x.Expected, signV2(x.ClientSecret, x.Method, x.URI, []byte(x.Body)))
	}
	raw, err := os.ReadFile("testdata/webhook_delivery_v1_docs_example.raw.json")
	require.NoError(t, err)
	require.Equal(t, v.V1[1].Body, string(raw), "raw fixture is the v1 vector's body")
}

func TestVerifyWebhookRejects(t *testing.T) {
	const secret = "yyyyyyyy-yyyy-yyyy-yyyy-yyyyyyyyyyyy"
	now := time.UnixMilli(1700000300000)
	body := []byte(`[{"objectId":1}]`)
	uri := "https://tributary.example.com/inbound/hubspot"
	signed := func(ts time.Time, u string) *connectors.InboundRequest {
		s := strconv.FormatInt(ts.UnixMilli(), 10)
		return &connectors.InboundRequest{Method: "POST", URL: u, Body: body, Header: http.Header{
			"X-Hubspot-Signature-V3":      {SignV3(secret, "POST", DecodeSignedURI(u), body, s)},
			"X-Hubspot-Request-Timestamp": {s},
		}}
	}
	c := New(connectors.AppConfig{ClientSecret: secret}, WithClock(func() time.Time { return now }))
	cases := []struct {
		name string
		req  *connectors.InboundRequest
		ok   bool
	}{
		{"fresh", signed(now, uri), true},
		{"exactly 5 minutes old", signed(now.Add(-5*time.Minute), uri), true},
		{"older than 5 minutes", signed(now.Add(-5*time.Minute-time.Millisecond), uri), false},
		{"5 minutes ahead", signed(now.Add(5*time.Minute), uri), true},
		{"more than 5 minutes ahead", signed(now.Add(5*time.Minute+time.Millisecond), uri), false},
		{"decoded escapes in query", signed(now, uri+"?since=2024-01-01T00%3A00%3A00Z&tag=%28a%29"), true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := c.VerifyWebhook(tc.req)
			if tc.ok {
				require.NoError(t, err)
			} else {
				require.ErrorIs(t, err, connectors.ErrBadSignature)
			}
		})
	}

	base := signed(now, uri)
	mutate := map[string]func(r *connectors.InboundRequest){
		"no signature":  func(r *connectors.InboundRequest) { r.Header.Del("X-Hubspot-Signature-V3") },
		"no timestamp":  func(r *connectors.InboundRequest) { r.Header.Del("X-Hubspot-Request-Timestamp") },
		"bad timestamp": func(r *connectors.InboundRequest) { r.Header.Set("X-Hubspot-Request-Timestamp", "soon") },
		"other timestamp": func(r *connectors.InboundRequest) {
			r.Header.Set("X-Hubspot-Request-Timestamp", strconv.FormatInt(now.UnixMilli()+1, 10))
		},
		"not base64":    func(r *connectors.InboundRequest) { r.Header.Set("X-Hubspot-Signature-V3", "%%%") },
		"other method":  func(r *connectors.InboundRequest) { r.Method = "PUT" },
		"other url":     func(r *connectors.InboundRequest) { r.URL += "?x=1" },
		"tampered body": func(r *connectors.InboundRequest) { r.Body = []byte(`[{"objectId":2}]`) },
		"v1 only (no v3)": func(r *connectors.InboundRequest) {
			r.Header.Del("X-Hubspot-Signature-V3")
			r.Header.Set("X-HubSpot-Signature", signV1(secret, body))
		},
	}
	for name, m := range mutate {
		t.Run(name, func(t *testing.T) {
			r := *base
			r.Header = base.Header.Clone()
			m(&r)
			require.ErrorIs(t, c.VerifyWebhook(&r), connectors.ErrBadSignature)
		})
	}
	require.ErrorIs(t, New(connectors.AppConfig{}, WithClock(func() time.Time { return now })).VerifyWebhook(base), connectors.ErrBadSignature, "no secret configured")
	require.ErrorIs(t, c.VerifyWebhook(nil), connectors.ErrBadSignature)
}

func TestDecodeSignedURI(t *testing.T) {
	in := "https://h.example/p%2Fq?a=%3A%2F%3F%40%21%24%27%28%29%2A%2C%3B&b=%20%25"
	require.Equal(t, "https://h.example/p/q?a=:/?@!$'()*,;&b=%20%25", DecodeSignedURI(in), "only the 12 listed escapes are decoded")
}

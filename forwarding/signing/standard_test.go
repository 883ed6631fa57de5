package signing_test

import (
	"encoding/base64"
	"encoding/json"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	// The official Standard Webhooks Go library lives in the "go" directory of
	// module github.com/standard-webhooks/standard-webhooks/libraries; its
	// package name is standardwebhooks.
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
	"github.com/stretchr/testify/require"

	"github.com/tributary/tributary/forwarding/signing"
)

// vectors mirrors testdata/test_vectors.json (copied from
// the Standard Webhooks project's published test vectors).
type vectors struct {
	SignVector struct {
		Secret               string `json:"secret"`
		SecretKeyBytesBase64 string `json:"secret_key_bytes_base64"`
		MsgID                string `json:"msg_id"`
		Timestamp            int64  `json:"timestamp"`
		Payload              string `json:"payload"`
		SignedContent        string `json:"signed_content"`
		ExpectedSignature    string `json:"expected_signature"`
	} `json:"sign_vector"`
	KnownInvalidSignature string `json:"known_invalid_signature_used_in_tests"`
	MultiSignatureHeader  string `json:"multi_signature_header_example_from_tests"`
	SecretPrefix          string `json:"secret_prefix"`
	ToleranceSeconds      int64  `json:"tolerance_seconds"`
	SpecExampleHeaders    struct {
		ID        string `json:"webhook-id"`
		Timestamp string `json:"webhook-timestamp"`
	} `json:"spec_example_headers"`
	SpecExampleSignedContent string          `json:"spec_example_signed_content"`
	SpecExamplePayload       json.RawMessage `json:"spec_example_payload"`
}

func loadVectors(t *testing.T) vectors {
	t.Helper()
	data, err := os.ReadFile("testdata/test_vectors.json")
	require.NoError(t, err)
	var v vectors
	require.NoError(t, json.Unmarshal(data, &v))
	return v
}

func TestStandardSignVector(t *testing.T) {
	t.Parallel()
	v := loadVectors(t)
	sv := v.SignVector
	ts := time.Unix(sv.Timestamp, 0)

	require.Equal(t, v.SecretPrefix, signing.StandardSecretPrefix)
	require.Equal(t, sv.SecretKeyBytesBase64, strings.TrimPrefix(sv.Secret, signing.StandardSecretPrefix))
	require.Equal(t, sv.SignedContent, string(signing.SignedContent(sv.MsgID, ts, []byte(sv.Payload))))

	got, err := signing.SignStandard(sv.Secret, sv.MsgID, ts, []byte(sv.Payload))
	require.NoError(t, err)
	require.Equal(t, sv.ExpectedSignature, got)
	require.NotEqual(t, v.KnownInvalidSignature, got)

	// The official library agrees on the vector.
	wh, err := standardwebhooks.NewWebhook(sv.Secret)
	require.NoError(t, err)
	libSig, err := wh.Sign(sv.MsgID, ts, []byte(sv.Payload))
	require.NoError(t, err)
	require.Equal(t, libSig, got)

	// A secret that is not base64 is rejected.
	_, err = signing.SignStandard("whsec_!!!", sv.MsgID, ts, []byte(sv.Payload))
	require.Error(t, err)
}

func TestStandardSpecExampleSignedContent(t *testing.T) {
	t.Parallel()
	v := loadVectors(t)
	// The spec example publishes no secret, so only the signed content is checked.
	prefix := v.SpecExampleHeaders.ID + "." + v.SpecExampleHeaders.Timestamp + "."
	body, ok := strings.CutPrefix(v.SpecExampleSignedContent, prefix)
	require.True(t, ok)
	require.JSONEq(t, string(v.SpecExamplePayload), body)
	sec, err := strconv.ParseInt(v.SpecExampleHeaders.Timestamp, 10, 64)
	require.NoError(t, err)
	require.Equal(t, v.SpecExampleSignedContent,
		string(signing.SignedContent(v.SpecExampleHeaders.ID, time.Unix(sec, 0), []byte(body))))
}

// TestStandardOfficialVerify checks our headers and signatures with the
// official library's verifier, which uses the wall clock and a 5 minute tolerance.
func TestStandardOfficialVerify(t *testing.T) {
	t.Parallel()
	v := loadVectors(t)
	require.Equal(t, int64(300), v.ToleranceSeconds)
	tolerance := time.Duration(v.ToleranceSeconds) * time.Second

	secret, err := signing.NewStandardSecret()
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(secret, "whsec_"))
	raw, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	require.NoError(t, err)
	require.Len(t, raw, 24)

	wh, err := standardwebhooks.NewWebhook(secret)
	require.NoError(t, err)
	body := []byte(`{"id": "evt_1", "topic":"crm/contacts"}`)
	const msgID = "evt_1"

	tests := []struct {
		name     string
		offset   time.Duration
		mutate   func(h map[string]string, body []byte) []byte
		ignoreTS bool
		wantOK   bool
	}{
		{name: "now", offset: 0, wantOK: true},
		{name: "1m ago", offset: -time.Minute, wantOK: true},
		// The Unix-second timestamp is truncated, so it is strictly older than 5m by the time the library checks.
		{name: "exactly tolerance in the past", offset: -tolerance, wantOK: false},
		{name: "tolerance plus 1s in the future", offset: tolerance + time.Second, wantOK: false},
		{name: "tampered body", mutate: func(_ map[string]string, b []byte) []byte { return append([]byte(nil), append(b, ' ')...) }},
		{name: "known invalid signature", mutate: func(h map[string]string, b []byte) []byte {
			h["webhook-signature"] = v.KnownInvalidSignature
			return b
		}},
		{name: "multi-signature header containing ours", wantOK: true, mutate: func(h map[string]string, b []byte) []byte {
			h["webhook-signature"] = strings.Replace(v.MultiSignatureHeader, "<valid-sig>", h["webhook-signature"], 1)
			return b
		}},
		{name: "timestamp 2000-01-01 substituted, tolerance disabled", ignoreTS: true, mutate: func(h map[string]string, b []byte) []byte {
			h["webhook-timestamp"] = "946684800"
			return b
		}},
		{name: "other message id", mutate: func(h map[string]string, b []byte) []byte {
			h["webhook-id"] = "evt_2"
			return b
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ts := time.Now().Add(tt.offset)
			sig, err := signing.SignStandard(secret, msgID, ts, body)
			require.NoError(t, err)
			h := signing.StandardHeaders(msgID, ts, sig)
			require.Equal(t, "application/json", h.Get("Content-Type"))
			fields := map[string]string{
				"webhook-id":        h.Get("webhook-id"),
				"webhook-timestamp": h.Get("webhook-timestamp"),
				"webhook-signature": h.Get("webhook-signature"),
			}
			require.Equal(t, strconv.FormatInt(ts.Unix(), 10), fields["webhook-timestamp"])
			b := body
			if tt.mutate != nil {
				b = tt.mutate(fields, b)
			}
			for k, val := range fields {
				h.Set(k, val)
			}
			if tt.ignoreTS {
				err = wh.VerifyIgnoringTimestamp(b, h)
			} else {
				err = wh.Verify(b, h)
			}
			if tt.wantOK {
				require.NoError(t, err)
			} else {
				require.Error(t, err)
			}
		})
	}
}

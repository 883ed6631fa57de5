package signing

import (
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Verification errors returned (wrapped) by VerifyRSA.
var (
	ErrMissingHeader    = errors.New("missing signature header")
	ErrTimestampSkew    = errors.New("timestamp outside tolerance")
	ErrInvalidSignature = errors.New("invalid signature")
)

// VerifyRSA checks a delivery as a receiver would: the key named by
// X-Tributary-Key-Id must be in jwks, X-Tributary-Timestamp must be within
// tolerance of now (either direction), and one "v1," entry of the
// space-separated X-Tributary-Signature must verify over the raw body.
func VerifyRSA(jwks JWKS, header http.Header, body []byte, tolerance time.Duration, now time.Time) error {
	eventID := header.Get(HeaderEventID)
	tsStr := header.Get(HeaderTimestamp)
	kid := header.Get(HeaderKeyID)
	sigHeader := header.Get(HeaderSignature)
	for _, h := range [][2]string{{HeaderEventID, eventID}, {HeaderTimestamp, tsStr}, {HeaderKeyID, kid}, {HeaderSignature, sigHeader}} {
		if h[1] == "" {
			return fmt.Errorf("verify: %w %s", ErrMissingHeader, h[0])
		}
	}
	sec, err := strconv.ParseInt(tsStr, 10, 64)
	if err != nil {
		return fmt.Errorf("verify: %w: bad timestamp %q", ErrTimestampSkew, tsStr)
	}
	ts := time.Unix(sec, 0)
	if d := now.Sub(ts); d > tolerance || d < -tolerance {
		return fmt.Errorf("verify: %w: %s off", ErrTimestampSkew, d)
	}
	jwk, err := jwks.Key(kid)
	if err != nil {
		return fmt.Errorf("verify: %w", err)
	}
	pub, err := jwk.RSAPublicKey()
	if err != nil {
		return fmt.Errorf("verify: %w", err)
	}
	sum := sha256.Sum256(SignedContent(eventID, ts, body))
	for _, entry := range strings.Fields(sigHeader) {
		version, b64, ok := strings.Cut(entry, ",")
		if !ok || version != SignatureVersion {
			continue
		}
		sig, err := base64.StdEncoding.DecodeString(b64)
		if err != nil {
			continue
		}
		if rsa.VerifyPKCS1v15(pub, crypto.SHA256, sum[:], sig) == nil {
			return nil
		}
	}
	return fmt.Errorf("verify: %w", ErrInvalidSignature)
}

// ErrWrongAccount is returned when a delivery's body names another account
// than the receiver's.
var ErrWrongAccount = errors.New("event belongs to another account")

// CheckAccount checks that the body's "accountId" is accountID. A receiver
// must do it beside the signature check: the signature proves Tributary
// signed the bytes, the accountId that they were meant for this account.
func CheckAccount(body []byte, accountID string) error {
	var ev struct {
		AccountID string `json:"accountId"`
	}
	if err := json.Unmarshal(body, &ev); err != nil {
		return fmt.Errorf("verify: %w: body is not a JSON event", ErrWrongAccount)
	}
	if ev.AccountID == "" || ev.AccountID != accountID {
		return fmt.Errorf("verify: %w: body accountId %q, expected %q", ErrWrongAccount, ev.AccountID, accountID)
	}
	return nil
}

// VerifyDelivery is the complete receiver check: accountJWKS must be the
// receiver's own account key set (GET /.well-known/jwks/{accountId}.json),
// the RSA signature must verify with it (VerifyRSA) and the body's accountId
// must be accountID (CheckAccount). A delivery signed for another account
// fails both ways: its key is not in the set and its body names the other
// account.
func VerifyDelivery(accountJWKS JWKS, accountID string, header http.Header, body []byte, tolerance time.Duration, now time.Time) error {
	if err := VerifyRSA(accountJWKS, header, body, tolerance, now); err != nil {
		return err
	}
	return CheckAccount(body, accountID)
}

// DefaultTolerance is the timestamp window receivers should accept.
const DefaultTolerance = 5 * time.Minute

package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/tributary/tributary/forwarding/signing"
	"github.com/tributary/tributary/receiver"
)

// newReceive is a development receiver: it prints each delivery and checks
// it as an ISV's endpoint must — rsa against the account's own JWKS with the
// body's accountId checked (--account), standard and hmac with the webhook's
// secret (--secret) — and answers 401 to a delivery that does not verify.
func newReceive() *cobra.Command {
	var listen, jwksURL, engine, account, secret, scheme string
	var status int
	var showBody bool
	cmd := &cobra.Command{
		Use:   "receive --listen ADDR (--account ACC | --secret SECRET)",
		Short: "Run a local webhook receiver that verifies (rsa, standard, hmac) and prints deliveries",
		Long: `Run a local webhook receiver that verifies and prints each delivery.

The scheme is read from each delivery's headers (or fixed with --scheme):
  rsa       X-Tributary-Signature, checked with the account's JWKS from the engine;
            with --account the body's accountId must be that account
  standard  webhook-signature (Standard Webhooks), checked with --secret whsec_…
  hmac      X-Webhook-Signature: sha256=<hex>, checked with --secret

A delivery that verifies gets --status; one that does not (wrong signature,
stale timestamp, unknown key, missing secret) is printed as NOT VERIFIED
with the reason and answered 401, so the engine retries it.`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if jwksURL == "" {
				jwksURL = receiveJWKSURL(engine, account)
			}
			v, err := newDeliveryVerifier(scheme, secret, &jwksVerifier{url: jwksURL, account: account})
			if err != nil {
				return err
			}
			ln, err := net.Listen("tcp", listen)
			if err != nil {
				return fmt.Errorf("listen: %w", err)
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "receiving on http://%s/ (any path), %s\n", ln.Addr(), v.describe())
			if account == "" && (scheme == "auto" || scheme == "rsa") {
				fmt.Fprintln(out, "WARNING: no --account: rsa deliveries signed for any account of this engine verify (see docs/security.md)")
			}
			srv := &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: receiveHandler(v, out, status, showBody)}
			go func() { <-cmd.Context().Done(); _ = srv.Close() }()
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				return err
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&listen, "listen", "127.0.0.1:9000", "address to receive on")
	cmd.Flags().StringVar(&engine, "engine", "http://127.0.0.1:8080", "the engine's base URL (rsa: where the JWKS is)")
	cmd.Flags().StringVar(&account, "account", "", "your account id (acc_…): only its keys are trusted and each body's accountId must match (rsa)")
	cmd.Flags().StringVar(&jwksURL, "jwks-url", "", "JWKS document to verify rsa with (default: <engine>/.well-known/jwks/<account>.json)")
	cmd.Flags().StringVar(&secret, "secret", "", "the webhook's signing secret (standard: whsec_…; hmac)")
	cmd.Flags().StringVar(&scheme, "scheme", "auto", "signing scheme to require: auto (from the headers), rsa, standard or hmac")
	cmd.Flags().IntVar(&status, "status", http.StatusOK, "HTTP status to answer a verified delivery")
	cmd.Flags().BoolVar(&showBody, "body", false, "print each body")
	return cmd
}

// receiveHandler prints each delivery with v's verdict and answers status,
// or 401 when it does not verify.
func receiveHandler(v *deliveryVerifier, out io.Writer, status int, showBody bool) http.Handler {
	var mu sync.Mutex // one delivery's lines together
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, 10<<20))
		if err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		code := status
		scheme, err := v.verify(r.Context(), r.Header, body)
		verdict := "verified (" + scheme + ")"
		if err != nil {
			verdict = "NOT VERIFIED (" + err.Error() + ")"
			code = http.StatusUnauthorized
		}
		var ev struct {
			Topic, UpdateType, ConnectionID, Source string
		}
		_ = json.Unmarshal(body, &ev)
		mu.Lock()
		fmt.Fprintf(out, "%s %s %s %s via %s (connection %s, attempt %s): %s\n", time.Now().Format(time.TimeOnly),
			r.Header.Get(signing.HeaderEventID), ev.Topic, ev.UpdateType, ev.Source, ev.ConnectionID,
			r.Header.Get(signing.HeaderDeliveryAttempt), verdict)
		if showBody {
			fmt.Fprintf(out, "%s\n", body)
		}
		mu.Unlock()
		w.WriteHeader(code)
	})
}

// Schemes a delivery may be signed with (models.Scheme*), as read from its
// headers.
const (
	schemeRSA      = "rsa"
	schemeStandard = "standard"
	schemeHMAC     = "hmac"
)

// errWrongSignature reports a signature that does not match (as opposed to
// a missing header, a stale timestamp or an unknown key).
var errWrongSignature = errors.New("wrong signature")

// deliveryVerifier checks a delivery with the scheme its headers name (or
// the one required): rsa with the JWKS, standard with the official Standard
// Webhooks library, hmac with the shared secret.
type deliveryVerifier struct {
	scheme      string // "auto" or one scheme
	secret      string
	standard    *standardwebhooks.Webhook // nil: secret is not whsec_<base64>
	standardErr error
	rsa         *jwksVerifier
}

func newDeliveryVerifier(scheme, secret string, rsa *jwksVerifier) (*deliveryVerifier, error) {
	v := &deliveryVerifier{scheme: scheme, secret: secret, rsa: rsa}
	switch scheme {
	case "auto", schemeRSA:
	case schemeStandard, schemeHMAC:
		if secret == "" {
			return nil, fmt.Errorf("--scheme %s needs --secret (the webhook's signing secret)", scheme)
		}
	default:
		return nil, fmt.Errorf("--scheme %q: want auto, rsa, standard or hmac", scheme)
	}
	if secret != "" {
		if !strings.HasPrefix(secret, signing.StandardSecretPrefix) {
			v.standardErr = fmt.Errorf("--secret is not a Standard Webhooks secret (%s<base64>)", signing.StandardSecretPrefix)
		} else if v.standard, v.standardErr = standardwebhooks.NewWebhook(secret); v.standardErr != nil {
			v.standardErr = fmt.Errorf("--secret: %w", v.standardErr)
		}
		if scheme == schemeStandard && v.standardErr != nil {
			return nil, v.standardErr
		}
	}
	return v, nil
}

// describe says what v checks, for the start-up line.
func (v *deliveryVerifier) describe() string {
	var parts []string
	if v.scheme == "auto" || v.scheme == schemeRSA {
		parts = append(parts, "rsa with "+v.rsa.url)
	}
	if v.secret != "" && (v.scheme == "auto" || v.scheme == schemeStandard) && v.standardErr == nil {
		parts = append(parts, "standard with --secret")
	}
	if v.secret != "" && (v.scheme == "auto" || v.scheme == schemeHMAC) {
		parts = append(parts, "hmac with --secret")
	}
	return "verifying " + strings.Join(parts, ", ")
}

// headerScheme names the scheme h is signed with, "" for none.
func headerScheme(h http.Header) string {
	switch {
	case h.Get(signing.HeaderStandardSignature) != "":
		return schemeStandard
	case h.Get(signing.HeaderHMACSignature) != "":
		return schemeHMAC
	case h.Get(signing.HeaderSignature) != "":
		return schemeRSA
	}
	return ""
}

// verify returns the scheme of the delivery and nil when it verifies.
func (v *deliveryVerifier) verify(ctx context.Context, h http.Header, body []byte) (string, error) {
	scheme := headerScheme(h)
	switch {
	case scheme == "":
		return "", errors.New("no signature header (X-Tributary-Signature, webhook-signature or X-Webhook-Signature)")
	case v.scheme != "auto" && scheme != v.scheme:
		return scheme, fmt.Errorf("signed with %s, --scheme requires %s", scheme, v.scheme)
	}
	var err error
	switch scheme {
	case schemeStandard:
		switch {
		case v.secret == "":
			return scheme, errors.New("standard signature: pass the webhook's secret with --secret whsec_…")
		case v.standardErr != nil:
			return scheme, v.standardErr
		}
		err = v.standard.Verify(body, h)
		if errors.Is(err, standardwebhooks.ErrNoMatchingSignature) {
			err = errWrongSignature
		}
	case schemeHMAC:
		if v.secret == "" {
			return scheme, errors.New("hmac signature: pass the webhook's secret with --secret")
		}
		err = receiver.VerifyHMAC(v.secret, h, body)
		if errors.Is(err, receiver.ErrSignature) {
			err = errWrongSignature
		}
	default:
		err = v.rsa.verify(ctx, h, body)
		if errors.Is(err, signing.ErrInvalidSignature) {
			err = fmt.Errorf("%w (%w)", errWrongSignature, err)
		}
	}
	if err != nil {
		return scheme, fmt.Errorf("%s: %w", scheme, err)
	}
	return scheme, nil
}

// receiveJWKSURL is the account's own key set, or the engine-wide one (weaker)
// without an account.
func receiveJWKSURL(engine, account string) string {
	engine = strings.TrimRight(engine, "/")
	if account == "" {
		return engine + "/.well-known/jwks.json"
	}
	return engine + "/.well-known/jwks/" + url.PathEscape(account) + ".json"
}

// jwksVerifier caches the JWKS document and refetches it for an unknown kid
// (at most once every few seconds, so forged key ids cannot make it hammer
// the engine). With account set it also checks each body's accountId.
type jwksVerifier struct {
	url       string
	account   string
	mu        sync.Mutex
	jwks      signing.JWKS
	fetchedAt time.Time
}

func (v *jwksVerifier) verify(ctx context.Context, h http.Header, body []byte) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	if _, err := v.jwks.Key(h.Get(signing.HeaderKeyID)); err != nil && time.Since(v.fetchedAt) > 5*time.Second {
		v.fetchedAt = time.Now()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, v.url, nil)
		if err != nil {
			return err
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return fmt.Errorf("fetch JWKS: %w", err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("fetch JWKS %s: status %d", v.url, resp.StatusCode)
		}
		var set signing.JWKS
		if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&set); err != nil {
			return fmt.Errorf("decode JWKS: %w", err)
		}
		v.jwks = set
	}
	if v.account == "" {
		return signing.VerifyRSA(v.jwks, h, body, 5*time.Minute, time.Now())
	}
	return signing.VerifyDelivery(v.jwks, v.account, h, body, 5*time.Minute, time.Now())
}

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

	"github.com/tributary/tributary/forwarding/signing"
)

// newReceive is a development receiver: it prints each delivery and checks
// it as an ISV's endpoint must — the RSA signature against the account's own
// JWKS and the body's accountId against the account (--account).
func newReceive() *cobra.Command {
	var listen, jwksURL, engine, account string
	var status int
	var showBody bool
	cmd := &cobra.Command{
		Use:   "receive --listen ADDR --account ACC [--engine URL]",
		Short: "Run a local webhook receiver that verifies and prints deliveries",
		RunE: func(cmd *cobra.Command, _ []string) error {
			if jwksURL == "" {
				jwksURL = receiveJWKSURL(engine, account)
			}
			ln, err := net.Listen("tcp", listen)
			if err != nil {
				return fmt.Errorf("listen: %w", err)
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "receiving on http://%s/ (any path), verifying with %s\n", ln.Addr(), jwksURL)
			if account == "" {
				fmt.Fprintln(out, "WARNING: no --account: deliveries signed for any account of this engine verify (see docs/security.md)")
			}
			v := &jwksVerifier{url: jwksURL, account: account}
			srv := &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				body, err := io.ReadAll(io.LimitReader(r.Body, 10<<20))
				if err != nil {
					w.WriteHeader(http.StatusBadRequest)
					return
				}
				verdict := "verified"
				if err := v.verify(r.Context(), r.Header, body); err != nil {
					verdict = "NOT VERIFIED (" + err.Error() + ")"
				}
				var ev struct {
					Topic, UpdateType, ConnectionID, Source string
				}
				_ = json.Unmarshal(body, &ev)
				fmt.Fprintf(out, "%s %s %s %s via %s (connection %s, attempt %s): %s\n", time.Now().Format(time.TimeOnly),
					r.Header.Get(signing.HeaderEventID), ev.Topic, ev.UpdateType, ev.Source, ev.ConnectionID,
					r.Header.Get(signing.HeaderDeliveryAttempt), verdict)
				if showBody {
					fmt.Fprintf(out, "%s\n", body)
				}
				w.WriteHeader(status)
			})}
			go func() { <-cmd.Context().Done(); _ = srv.Close() }()
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				return err
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&listen, "listen", "127.0.0.1:9000", "address to receive on")
	cmd.Flags().StringVar(&engine, "engine", "http://127.0.0.1:8080", "the engine's base URL")
	cmd.Flags().StringVar(&account, "account", "", "your account id (acc_…): only its keys are trusted and each body's accountId must match")
	cmd.Flags().StringVar(&jwksURL, "jwks-url", "", "JWKS document to verify with (default: <engine>/.well-known/jwks/<account>.json)")
	cmd.Flags().IntVar(&status, "status", http.StatusOK, "HTTP status to answer")
	cmd.Flags().BoolVar(&showBody, "body", false, "print each body")
	return cmd
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

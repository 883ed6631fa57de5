package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/tributary/tributary/forwarding/signing"
)

// newReceive is a development receiver: it prints each delivery and checks
// its RSA signature against the engine's JWKS, as an ISV's endpoint would.
func newReceive() *cobra.Command {
	var listen, jwksURL string
	var status int
	var showBody bool
	cmd := &cobra.Command{
		Use:   "receive --listen ADDR --jwks-url URL",
		Short: "Run a local webhook receiver that verifies and prints deliveries",
		RunE: func(cmd *cobra.Command, _ []string) error {
			ln, err := net.Listen("tcp", listen)
			if err != nil {
				return fmt.Errorf("listen: %w", err)
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "receiving on http://%s/ (any path), verifying with %s\n", ln.Addr(), jwksURL)
			v := &jwksVerifier{url: jwksURL}
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
	cmd.Flags().StringVar(&jwksURL, "jwks-url", "http://127.0.0.1:8080/.well-known/jwks.json", "the engine's JWKS document")
	cmd.Flags().IntVar(&status, "status", http.StatusOK, "HTTP status to answer")
	cmd.Flags().BoolVar(&showBody, "body", false, "print each body")
	return cmd
}

// jwksVerifier caches the JWKS document and refetches it for an unknown kid.
type jwksVerifier struct {
	url  string
	mu   sync.Mutex
	jwks signing.JWKS
}

func (v *jwksVerifier) verify(ctx context.Context, h http.Header, body []byte) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	if _, err := v.jwks.Key(h.Get(signing.HeaderKeyID)); err != nil {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, v.url, nil)
		if err != nil {
			return err
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return fmt.Errorf("fetch JWKS: %w", err)
		}
		defer resp.Body.Close()
		if err := json.NewDecoder(resp.Body).Decode(&v.jwks); err != nil {
			return fmt.Errorf("decode JWKS: %w", err)
		}
	}
	return signing.VerifyRSA(v.jwks, h, body, 5*time.Minute, time.Now())
}

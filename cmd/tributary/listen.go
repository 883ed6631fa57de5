package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/tributary/tributary/forwarding/signing"
)

// newListen streams the account's events from the pull API to a local URL,
// signed with a local Standard Webhooks secret, so a developer receives
// events without exposing anything publicly.
func newListen() *cobra.Command {
	var apiURL, apiKey, forwardTo, secret, from string
	var topics []string
	var every time.Duration
	cmd := &cobra.Command{
		Use:   "listen --forward-to URL [--topic T]…",
		Short: "Stream the account's events to a local URL, signed (Standard Webhooks)",
		RunE: func(cmd *cobra.Command, _ []string) error {
			if apiKey == "" {
				apiKey = os.Getenv("TRIBUTARY_API_KEY") // read here: a default would print it in --help
			}
			if apiKey == "" || forwardTo == "" {
				return fmt.Errorf("--api-key (or TRIBUTARY_API_KEY) and --forward-to are required")
			}
			if secret == "" {
				var err error
				if secret, err = signing.NewStandardSecret(); err != nil {
					return err
				}
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "forwarding events of %s to %s\nverify with the Standard Webhooks secret %s\n", apiURL, forwardTo, secret)
			l := &listener{api: strings.TrimRight(apiURL, "/"), key: apiKey, to: forwardTo, secret: secret, topics: topics,
				out: out, hc: &http.Client{Timeout: 30 * time.Second}}
			return l.run(cmd.Context(), from, every)
		},
	}
	cmd.Flags().StringVar(&apiURL, "api-url", "http://127.0.0.1:8080", "the engine's URL")
	cmd.Flags().StringVar(&apiKey, "api-key", "", "an ISV API key (default: env TRIBUTARY_API_KEY)")
	cmd.Flags().StringVar(&forwardTo, "forward-to", "", "local URL receiving the events")
	cmd.Flags().StringArrayVar(&topics, "topic", nil, "topic or pattern to forward (repeatable; default all)")
	cmd.Flags().StringVar(&secret, "secret", "", "whsec_ secret to sign with (default: a new one, printed)")
	cmd.Flags().StringVar(&from, "from", "latest", `cursor to start after ("latest" = only new events, "" = all)`)
	cmd.Flags().DurationVar(&every, "interval", time.Second, "how often to pull")
	return cmd
}

// errKeyRefused is the engine refusing the API key (401/403): listen stops,
// since pulling again with the same key cannot succeed.
var errKeyRefused = errors.New("the engine refused the API key")

// apiErrorMessage is the message of an API error body
// ({"error":{"code","message"}}), or the start of the raw body.
func apiErrorMessage(raw []byte) string {
	var e struct {
		Error struct{ Code, Message string } `json:"error"`
	}
	if json.Unmarshal(raw, &e) == nil && e.Error.Message != "" {
		return e.Error.Code + ": " + e.Error.Message
	}
	if len(raw) > 200 {
		raw = raw[:200]
	}
	return strings.TrimSpace(string(raw))
}

type listener struct {
	api, key, to, secret string
	topics               []string
	out                  io.Writer
	hc                   *http.Client
}

func (l *listener) run(ctx context.Context, cursor string, every time.Duration) error {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		next, err := l.pull(ctx, cursor)
		if errors.Is(err, errKeyRefused) {
			return err
		}
		if err != nil {
			fmt.Fprintf(l.out, "pull: %v (retrying)\n", err)
		} else {
			cursor = next
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// pull forwards every event after cursor and returns the new cursor; an
// event is passed only once the local URL answered (2xx or not), in order.
func (l *listener) pull(ctx context.Context, cursor string) (string, error) {
	for {
		q := url.Values{"after": {cursor}, "limit": {"100"}}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, l.api+"/v1/events?"+q.Encode(), nil)
		req.Header.Set("Authorization", "Bearer "+l.key)
		resp, err := l.hc.Do(req)
		if err != nil {
			return cursor, err
		}
		raw, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
		resp.Body.Close()
		if err != nil {
			return cursor, fmt.Errorf("GET /v1/events: %w", err)
		}
		if resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden {
			return cursor, fmt.Errorf("%w (GET /v1/events answered %d: %s); check --api-key or TRIBUTARY_API_KEY: the key may be mistyped or revoked",
				errKeyRefused, resp.StatusCode, apiErrorMessage(raw))
		}
		var page struct {
			Data       []json.RawMessage `json:"data"`
			NextCursor *string           `json:"nextCursor"`
		}
		if resp.StatusCode != http.StatusOK {
			return cursor, fmt.Errorf("GET /v1/events: status %d: %s", resp.StatusCode, apiErrorMessage(raw))
		}
		if err := json.Unmarshal(raw, &page); err != nil {
			return cursor, fmt.Errorf("GET /v1/events: decode: %w", err)
		}
		for _, raw := range page.Data {
			l.forward(ctx, raw)
		}
		if page.NextCursor == nil || *page.NextCursor == cursor {
			return cursor, nil
		}
		cursor = *page.NextCursor
		if len(page.Data) == 0 {
			return cursor, nil
		}
	}
}

func (l *listener) forward(ctx context.Context, raw json.RawMessage) {
	var ev struct{ ID, Topic, UpdateType string }
	_ = json.Unmarshal(raw, &ev)
	if len(l.topics) > 0 && !matchesAny(l.topics, ev.Topic) {
		return
	}
	now := time.Now()
	sig, err := signing.SignStandard(l.secret, ev.ID, now, raw)
	if err != nil {
		fmt.Fprintf(l.out, "%s sign: %v\n", ev.ID, err)
		return
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, l.to, bytes.NewReader(raw))
	req.Header = signing.StandardHeaders(ev.ID, now, sig)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(signing.HeaderEventID, ev.ID)
	req.Header.Set(signing.HeaderTopic, ev.Topic)
	resp, err := l.hc.Do(req)
	if err != nil {
		fmt.Fprintf(l.out, "%s %s %s → %v\n", ev.ID, ev.Topic, ev.UpdateType, err)
		return
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	fmt.Fprintf(l.out, "%s %s %s → %d\n", ev.ID, ev.Topic, ev.UpdateType, resp.StatusCode)
}

func matchesAny(patterns []string, topic string) bool {
	for _, p := range patterns {
		if p == "*" || p == topic || (strings.HasSuffix(p, "/*") && strings.HasPrefix(topic, strings.TrimSuffix(p, "*"))) {
			return true
		}
	}
	return false
}

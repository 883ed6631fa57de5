package conformance

import (
	"net/http"
	"sync"
)

// Bearer is a test RoundTripper that sends "Authorization: Bearer <token>"
// with a token a harness's Conn.Refresh can swap.
type Bearer struct {
	mu    sync.Mutex
	token string
}

// NewBearer returns a Bearer sending token.
func NewBearer(token string) *Bearer { return &Bearer{token: token} }

// Set replaces the token (after a refresh).
func (b *Bearer) Set(token string) {
	b.mu.Lock()
	b.token = token
	b.mu.Unlock()
}

// Token returns the current token.
func (b *Bearer) Token() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.token
}

// RoundTrip adds the current token and sends r with the default transport.
func (b *Bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	b.mu.Lock()
	tok := b.token
	b.mu.Unlock()
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+tok)
	return http.DefaultTransport.RoundTrip(r)
}

package forwarding

import (
	"sync"
	"time"

	"github.com/tributary/tributary/forwarding/signing"
)

// signCache shares one RSA signature among the subscriptions of an event
// within the same second (DESIGN.md §3: signing is the CPU ceiling).
type signCache struct {
	mu  sync.Mutex
	sec int64
	by  map[string]*signEntry
}

type signEntry struct {
	once sync.Once
	sig  string
	err  error
}

func newSignCache() *signCache { return &signCache{by: map[string]*signEntry{}} }

func (c *signCache) sign(s *signing.Signer, eventID string, ts time.Time, body []byte) (string, error) {
	key := s.KeyID() + "/" + eventID
	c.mu.Lock()
	if sec := ts.Unix(); sec != c.sec {
		if sec > c.sec {
			c.by, c.sec = map[string]*signEntry{}, sec
		} else {
			c.mu.Unlock()
			return s.Sign(eventID, ts, body) // an older second: no sharing
		}
	}
	e, ok := c.by[key]
	if !ok {
		e = &signEntry{}
		c.by[key] = e
	}
	c.mu.Unlock()
	e.once.Do(func() { e.sig, e.err = s.Sign(eventID, ts, body) })
	return e.sig, e.err
}

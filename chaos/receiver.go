// Package chaos holds Tributary's fault-injection tests and their small
// helpers: a misbehaving ISV receiver that verifies signatures with the JWKS
// alone, an audit of its log against the changes a test made, and a driver
// for `tributary serve` subprocesses that tests kill with SIGKILL.
//
// The fast variants run in `make test`; the long ones run when
// TRIBUTARY_CHAOS=1 is set (`make chaos`). The package owns no tables and
// touches other packages only through their public APIs, the HTTP API and,
// to fast-forward leases of a dead process, the database.
package chaos

import (
	"crypto/rsa"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"time"

	"github.com/tributary/tributary/forwarding/signing/signingtest"
)

// Fault is what the receiver does with one request.
type Fault string

// Faults the receiver chooses from.
const (
	FaultOK          Fault = "ok"           // 200 at once
	FaultServerError Fault = "5xx"          // 500, 502, 503 or 504
	FaultRateLimit   Fault = "429"          // 429 with Retry-After: 1
	FaultHang        Fault = "hang"         // no answer until past the timeout
	FaultReset       Fault = "reset"        // TCP RST after reading the request
	FaultTrickle     Fault = "trickle"      // 200, then a body trickled byte by byte
	FaultSlowTimeout Fault = "trickle-long" // 200, then a body trickled past the timeout
	// FaultUnverified is not chosen: the JWKS could not be fetched, 503.
	FaultUnverified Fault = "jwks-unavailable"
)

// Weights sets how often each fault is chosen (relative weights).
type Weights map[Fault]int

// DefaultWeights fails about half of the requests, in every way.
var DefaultWeights = Weights{FaultOK: 50, FaultServerError: 12, FaultRateLimit: 8, FaultHang: 8,
	FaultReset: 10, FaultTrickle: 7, FaultSlowTimeout: 5}

// Entry is one request the receiver got, as logged.
type Entry struct {
	EventID      string
	Topic        string
	UpdateType   string
	ConnectionID string
	RemoteID     string
	// Payload is the raw dataPayload; BodyHash the SHA-256 of the whole body.
	Payload  json.RawMessage
	BodyHash string
	Attempt  string
	Fault    Fault
	// SignatureOK is the RSA check against the JWKS; Unverified marks a
	// request answered 503 because the JWKS could not be fetched (the engine
	// was down): neither good nor bad. Acked reports that a 2xx reached a
	// client still listening.
	SignatureOK bool
	Unverified  bool
	Acked       bool
}

// Receiver is an ISV endpoint on a real socket that misbehaves at random
// (seeded) and verifies every delivery with the engine's JWKS document only.
type Receiver struct {
	*httptest.Server
	// JWKSURL is the engine's /.well-known/jwks.json.
	JWKSURL string
	// Timeout is the subscription's timeoutSeconds: hangs last past it.
	Timeout time.Duration
	// Seed seeded the fault choices (printed in the audit).
	Seed uint64

	mu      sync.Mutex
	rnd     *rand.Rand
	weights Weights
	keys    map[string]*rsa.PublicKey
	log     []Entry
}

// NewReceiver starts a receiver choosing faults with weights from a
// math/rand source seeded with seed (nil weights: always 200).
func NewReceiver(jwksURL string, seed uint64, timeout time.Duration, weights Weights) *Receiver {
	rc := &Receiver{JWKSURL: jwksURL, Timeout: timeout, Seed: seed, rnd: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		weights: weights, keys: map[string]*rsa.PublicKey{}}
	rc.Server = httptest.NewServer(http.HandlerFunc(rc.serve))
	return rc
}

// SetWeights changes the fault mix (nil: always 200), e.g. to let a run drain.
func (rc *Receiver) SetWeights(w Weights) {
	rc.mu.Lock()
	rc.weights = w
	rc.mu.Unlock()
}

// SetJWKSURL points the receiver at a restarted engine's JWKS.
func (rc *Receiver) SetJWKSURL(u string) {
	rc.mu.Lock()
	rc.JWKSURL = u
	rc.mu.Unlock()
}

// Log returns a copy of every request logged so far.
func (rc *Receiver) Log() []Entry {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]Entry(nil), rc.log...)
}

func (rc *Receiver) pick() Fault {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	total := 0
	for _, w := range rc.weights {
		total += w
	}
	if total == 0 {
		return FaultOK
	}
	n := rc.rnd.IntN(total)
	// Iterate in a fixed order so a seed always gives the same sequence.
	for _, f := range []Fault{FaultOK, FaultServerError, FaultRateLimit, FaultHang, FaultReset, FaultTrickle, FaultSlowTimeout} {
		if n < rc.weights[f] {
			return f
		}
		n -= rc.weights[f]
	}
	return FaultOK
}

func (rc *Receiver) intn(n int) int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return rc.rnd.IntN(n)
}

func (rc *Receiver) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	e := Entry{EventID: r.Header.Get("X-Tributary-Event-Id"), Attempt: r.Header.Get("X-Tributary-Delivery-Attempt"),
		Fault: rc.pick()}
	var err error
	e.SignatureOK, err = rc.verify(r.Header, body)
	if err != nil {
		e.Unverified, e.Fault = true, FaultUnverified
	}
	sum := sha256.Sum256(body)
	e.BodyHash = hex.EncodeToString(sum[:])
	var ev struct {
		ID           string          `json:"id"`
		Topic        string          `json:"topic"`
		UpdateType   string          `json:"updateType"`
		ConnectionID string          `json:"connectionId"`
		DataPayload  json.RawMessage `json:"dataPayload"`
	}
	_ = json.Unmarshal(body, &ev)
	var p struct {
		RemoteID string `json:"remoteId"`
	}
	_ = json.Unmarshal(ev.DataPayload, &p)
	e.Topic, e.UpdateType, e.ConnectionID, e.RemoteID, e.Payload = ev.Topic, ev.UpdateType, ev.ConnectionID, p.RemoteID, ev.DataPayload
	if ev.ID != e.EventID {
		e.SignatureOK = false // the header and the body disagree
	}
	if e.Unverified {
		w.WriteHeader(http.StatusServiceUnavailable)
	} else {
		e.Acked = rc.answer(w, r, e.Fault)
	}
	rc.mu.Lock()
	rc.log = append(rc.log, e)
	rc.mu.Unlock()
}

// answer misbehaves as f says and reports whether a 2xx reached the client.
func (rc *Receiver) answer(w http.ResponseWriter, r *http.Request, f Fault) bool {
	switch f {
	case FaultServerError:
		w.WriteHeader([]int{500, 502, 503, 504}[rc.intn(4)])
		return false
	case FaultRateLimit:
		w.Header().Set("Retry-After", "1")
		w.WriteHeader(http.StatusTooManyRequests)
		return false
	case FaultHang:
		select {
		case <-r.Context().Done():
		case <-time.After(rc.Timeout + time.Second):
		}
		return false
	case FaultReset:
		hj, ok := w.(http.Hijacker)
		if !ok {
			panic("chaos receiver: cannot hijack")
		}
		conn, _, err := hj.Hijack()
		if err != nil {
			return false
		}
		if tc, ok := conn.(*net.TCPConn); ok {
			_ = tc.SetLinger(0) // close sends RST
		}
		_ = conn.Close()
		return false
	case FaultTrickle, FaultSlowTimeout:
		// The 200 is the receiver's acknowledgement: once its header is out
		// the event is accepted, however slowly (or never) the body follows.
		step := 20 * time.Millisecond
		if f == FaultSlowTimeout {
			step = rc.Timeout/8 + 50*time.Millisecond
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		if err := http.NewResponseController(w).Flush(); err != nil {
			return false
		}
		for _, b := range []byte(`{"ok":true}`) {
			if _, err := w.Write([]byte{b}); err != nil {
				break
			}
			_ = http.NewResponseController(w).Flush()
			select {
			case <-r.Context().Done():
				return true
			case <-time.After(step):
			}
		}
		return true
	}
	w.WriteHeader(http.StatusOK)
	return true
}

// verify checks the RSA signature with the key named in X-Tributary-Key-Id,
// fetched from the JWKS document (cached by kid: the engine may be down). An
// error means the JWKS could not be fetched, so nothing could be checked.
func (rc *Receiver) verify(h http.Header, body []byte) (bool, error) {
	pub, err := rc.key(h.Get("X-Tributary-Key-Id"))
	if err != nil {
		return false, err
	}
	if pub == nil {
		return false, nil // no such kid in the JWKS
	}
	return signingtest.Verify(pub, h, body), nil
}

// Prefetch loads every key of the JWKS document into the cache, so that
// deliveries keep verifying while the engine is down.
func (rc *Receiver) Prefetch() error {
	_, err := rc.key("")
	return err
}

func (rc *Receiver) key(kid string) (*rsa.PublicKey, error) {
	rc.mu.Lock()
	k := rc.keys[kid]
	rc.mu.Unlock()
	if k != nil {
		return k, nil
	}
	rc.mu.Lock()
	u := rc.JWKSURL
	rc.mu.Unlock()
	resp, err := http.Get(u)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", u, resp.Status)
	}
	doc, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	keys, err := signingtest.PublicKeys(doc)
	if err != nil {
		return nil, err
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	maps.Copy(rc.keys, keys)
	return rc.keys[kid], nil
}

package chaos

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"gorm.io/gorm"

	"github.com/tributary/tributary/connectors/sandbox"
	"github.com/tributary/tributary/models"
)

// API is how a World reaches an engine: an HTTP call answering the status
// and the decoded JSON object, or a transport error when it is down.
type API interface {
	Do(method, path, key string, body any) (int, map[string]any, error)
}

// World drives sandbox connections of one account through the HTTP API and
// records every change it makes, for Audit. Writes that fail in an unclear
// way (engine down, database connection dropped) are resolved by reading
// the sandbox app's table: a change counts when it was saved.
type World struct {
	API API
	DB  *gorm.DB
	Key string
	// Conns are the connection ids; Mode says webhook or polling.
	Conns []string
	Mode  map[string]string

	// StuckAfter, when set, is how long Settle lets a connection stay
	// "syncing" before it calls Unstick: a poll whose lease was never ended
	// (its finish failed even after retries) would otherwise hold it until
	// the lease expires (5 min). Stuck counts those calls.
	StuckAfter time.Duration
	Unstick    func(connectionID string)
	Stuck      int

	mu      sync.Mutex
	rnd     *rand.Rand
	changes []Change
	live    map[string][]string // connection → live contact remote ids
	seq     int
}

// NewWorld returns a World for the account key, choosing writes with seed.
func NewWorld(api API, db *gorm.DB, key string, seed uint64) *World {
	return &World{API: api, DB: db, Key: key, Mode: map[string]string{}, live: map[string][]string{},
		rnd: rand.New(rand.NewPCG(seed, 7))}
}

// Changes returns the changes made so far.
func (w *World) Changes() []Change {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.changes)
}

// Record adds a change made outside the World's own writes.
func (w *World) Record(c Change) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.changes = append(w.changes, c)
	switch c.Kind {
	case "created":
		w.live[c.ConnectionID] = append(w.live[c.ConnectionID], c.RemoteID)
	case "deleted":
		w.live[c.ConnectionID] = slices.DeleteFunc(w.live[c.ConnectionID], func(s string) bool { return s == c.RemoteID })
	}
}

// Connect creates a sandbox connection in mode and waits for its silent
// first sync.
func (w *World) Connect(mode string) (string, error) {
	st, body, err := w.API.Do("POST", "/v1/connections", w.Key, map[string]any{"app": "sandbox",
		"userId": fmt.Sprintf("u-%s-%d", mode, len(w.Conns)), "userName": "Chaos " + mode,
		"credentials": map[string]any{"mode": mode}})
	if err != nil || st != 201 {
		return "", fmt.Errorf("create %s connection: %d %v %v", mode, st, body, err)
	}
	id := body["id"].(string)
	w.Conns = append(w.Conns, id)
	w.Mode[id] = mode
	return id, w.wait(60*time.Second, func() (bool, error) {
		_, c, err := w.API.Do("GET", "/v1/connections/"+id, w.Key, nil)
		return err == nil && c["lastSyncAt"] != nil && c["status"] == "active", nil
	})
}

func (w *World) wait(limit time.Duration, done func() (bool, error)) error {
	deadline := time.Now().Add(limit)
	for {
		ok, err := done()
		if err != nil || ok {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not done after %s", limit)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// Marker returns a fresh unique email, the value an event must carry.
func (w *World) Marker() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.seq++
	return fmt.Sprintf("m%06d@chaos.test", w.seq)
}

// Round makes n random changes spread over the connections — creates,
// updates and deletes of contacts, each record changed at most once — and
// returns how many were saved.
func (w *World) Round(n int) (int, error) {
	touched := map[string]bool{}
	saved := 0
	for range n {
		w.mu.Lock()
		conn := w.Conns[w.rnd.IntN(len(w.Conns))]
		var free []string
		for _, id := range w.live[conn] {
			if !touched[id] {
				free = append(free, id)
			}
		}
		op := w.rnd.IntN(10)
		var rid string
		if len(free) > 0 {
			rid = free[w.rnd.IntN(len(free))]
		}
		w.mu.Unlock()
		var c Change
		var err error
		switch {
		case rid == "" || op < 4:
			c, err = w.Create(conn)
		case op < 8:
			c, err = w.Update(conn, rid)
		default:
			c, err = w.Delete(conn, rid)
		}
		if err != nil {
			return saved, err
		}
		if c.RemoteID != "" {
			touched[c.RemoteID] = true
			saved++
		}
	}
	return saved, nil
}

// Create writes a new contact; the zero Change means it was not saved.
func (w *World) Create(conn string) (Change, error) {
	m := w.Marker()
	st, body, err := w.API.Do("POST", "/v1/sandbox/"+conn+"/contacts", w.Key,
		map[string]any{"first_name": "Chaos", "email": m})
	c := Change{ConnectionID: conn, Topic: "crm/contacts", Kind: "created", Marker: m}
	if err == nil && st == 201 {
		c.RemoteID = body["remoteId"].(string)
	} else if c.RemoteID, err = w.savedWith(conn, m); err != nil {
		return Change{}, fmt.Errorf("create (answer %d %v): %w", st, body, err)
	}
	if c.RemoteID != "" {
		w.Record(c)
	}
	return c, nil
}

// Update gives a contact a new email.
func (w *World) Update(conn, rid string) (Change, error) {
	m := w.Marker()
	st, body, err := w.API.Do("PATCH", "/v1/sandbox/"+conn+"/contacts/"+rid, w.Key, map[string]any{"email": m})
	c := Change{ConnectionID: conn, Topic: "crm/contacts", RemoteID: rid, Kind: "updated", Marker: m}
	if err != nil || st != 200 {
		got, err := w.savedWith(conn, m)
		if err != nil {
			return Change{}, fmt.Errorf("update (answer %d %v): %w", st, body, err)
		}
		if got == "" {
			return Change{}, nil
		}
	}
	w.Record(c)
	return c, nil
}

// Delete deletes a contact.
func (w *World) Delete(conn, rid string) (Change, error) {
	st, body, err := w.API.Do("DELETE", "/v1/sandbox/"+conn+"/contacts/"+rid, w.Key, nil)
	c := Change{ConnectionID: conn, Topic: "crm/contacts", RemoteID: rid, Kind: "deleted"}
	if err != nil || st != 204 {
		var rec models.SandboxRecord
		if err := w.retryDB(func() error {
			return w.DB.Where("connection_id = ? AND object = ? AND remote_id = ?", conn, "contacts", rid).Take(&rec).Error
		}); err != nil {
			return Change{}, fmt.Errorf("delete (answer %d %v): %w", st, body, err)
		}
		if !rec.Deleted {
			return Change{}, nil
		}
	}
	w.Record(c)
	return c, nil
}

// savedWith finds the contact whose stored data carries marker ("" if none).
func (w *World) savedWith(conn, marker string) (string, error) {
	var recs []models.SandboxRecord
	err := w.retryDB(func() error {
		return w.DB.Where("connection_id = ? AND object = ? AND data LIKE ?", conn, "contacts", "%\""+marker+"\"%").Find(&recs).Error
	})
	if err != nil || len(recs) == 0 {
		return "", err
	}
	return recs[0].RemoteID, nil
}

func (w *World) retryDB(fn func() error) error {
	var err error
	for range 20 {
		if err = fn(); err == nil {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return err
}

// Settle is the barrier between rounds: every connection completes a poll
// requested after the writes, so no record changes again before its change
// was captured (a poll sees every change; a webhook still queued is late
// and must then emit nothing).
// A transport error (the engine died) is returned for the caller to restart.
func (w *World) Settle(limit time.Duration) error {
	asked := map[string]time.Time{} // connection → when a sync now was accepted
	err := w.settle(limit, asked)
	if err != nil && !IsTransport(err) {
		for _, id := range w.Conns {
			_, c, _ := w.API.Do("GET", "/v1/connections/"+id, w.Key, nil)
			err = fmt.Errorf("%w; %s asked %s: status %v lastSyncAt %v nextSyncAt %v lastError %v", err, id,
				asked[id].Format(time.RFC3339Nano), c["status"], c["lastSyncAt"], c["nextSyncAt"], c["lastError"])
		}
	}
	return err
}

func (w *World) settle(limit time.Duration, asked map[string]time.Time) error {
	syncingSince := map[string]time.Time{}
	return w.wait(limit, func() (bool, error) {
		done := true
		for _, id := range w.Conns {
			st, c, err := w.API.Do("GET", "/v1/connections/"+id, w.Key, nil)
			if err != nil {
				return false, err
			}
			if st != 200 {
				done = false // a dropped database connection: ask again
				continue
			}
			s, _ := c["lastSyncAt"].(string)
			last, _ := time.Parse(time.RFC3339Nano, s)
			t0, ok := asked[id]
			if ok && last.After(t0) && c["status"] == "active" {
				continue
			}
			done = false
			if c["status"] != "syncing" {
				delete(syncingSince, id)
			} else if since, ok := syncingSince[id]; !ok {
				syncingSince[id] = time.Now()
			} else if w.StuckAfter > 0 && time.Since(since) > w.StuckAfter {
				w.Unstick(id)
				w.Stuck++
				delete(syncingSince, id)
			}
			// Ask, and ask again when the asked-for poll failed or was
			// deferred (a database error): those retry only minutes later.
			if !ok || (c["status"] != "syncing" && time.Since(t0) > time.Second) {
				t0 := time.Now()
				st, body, err := w.API.Do("POST", "/v1/connections/"+id+"/sync", w.Key, nil)
				if err != nil {
					return false, err
				}
				switch {
				case st == 202:
					// No poll was running: the next lastSyncAt after t0
					// belongs to a poll that started after the writes.
					asked[id] = t0
				case st != 409 && st < 500:
					return false, fmt.Errorf("sync %s: %d %v", id, st, body)
				}
			}
		}
		return done, nil
	})
}

// Drain waits until nothing is in flight (see Engine.Idle) or ctx ends.
// With hurry, inbound webhooks waiting out a retry backoff (30 s, doubling)
// and inbound and delivery claims whose holder surely gave up are made due
// at once, as the passing of time would.
func Drain(ctx context.Context, e *Engine, hurry bool) error {
	for {
		if hurry {
			now := time.Now().UTC()
			_ = e.DB.Exec(`UPDATE inbox_items SET next_attempt_at = ? WHERE processed_at IS NULL AND lease_token = ''`, now).Error
			// An inbound claim (lease 2 min) held for more than 10 s: its
			// outcome was never recorded (a dropped connection).
			_ = e.DB.Exec(`UPDATE inbox_items SET next_attempt_at = ? WHERE processed_at IS NULL AND lease_token <> '' AND next_attempt_at < ?`,
				now, now.Add(110*time.Second)).Error
			// A delivery claim (lease max_timeout + 30 s = 33 s) held for
			// more than 5 s outlived its 1 s HTTP timeout: its flush failed.
			_ = e.DB.Exec(`UPDATE deliveries SET next_attempt_at = ? WHERE status IN ? AND lease_token <> '' AND next_attempt_at < ?`,
				now, []string{models.DeliveryPending, models.DeliveryFailed}, now.Add(28*time.Second)).Error
		}
		if ok, err := e.Idle(); err == nil && ok {
			return nil
		}
		select {
		case <-ctx.Done():
			var inbox, queued, syncing int64
			_ = e.DB.Model(&models.InboxItem{}).Where("processed_at IS NULL").Count(&inbox).Error
			_ = e.DB.Model(&models.Delivery{}).Where("status IN ?", []string{models.DeliveryPending, models.DeliveryFailed}).Count(&queued).Error
			_ = e.DB.Model(&models.Connection{}).Where("status = ?", models.ConnectionSyncing).Count(&syncing).Error
			return fmt.Errorf("drain: %w (inbox unprocessed %d, deliveries queued %d, connections syncing %d, dead letters %d)",
				ctx.Err(), inbox, queued, syncing, e.Dead())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Seed inserts n new contacts straight into the sandbox app's table in one
// transaction — as a provider fake seeds its data — keeping the app's
// invariants (version 1, modification times strictly increasing per
// connection, microsecond precision); only a poll can find them.
func (w *World) Seed(conn string, n int) error {
	var newest []models.SandboxRecord
	if err := w.DB.Select("modified_at").Where("connection_id = ?", conn).Order("modified_at DESC").Limit(1).Find(&newest).Error; err != nil {
		return fmt.Errorf("seed: newest change: %w", err)
	}
	t := time.Now().UTC().Truncate(time.Microsecond)
	if len(newest) > 0 && !t.After(newest[0].ModifiedAt) {
		t = newest[0].ModifiedAt.UTC().Add(time.Microsecond)
	}
	rows := make([]models.SandboxRecord, 0, n)
	var changes []Change
	for i := range n {
		m := w.Marker()
		data, _, err := sandbox.MergeFields("contacts", nil, []byte(fmt.Sprintf(`{"first_name":"Seed","email":%q}`, m)))
		if err != nil {
			return fmt.Errorf("seed: %w", err)
		}
		mod := t.Add(time.Duration(i) * time.Microsecond)
		r := models.SandboxRecord{ConnectionID: conn, Object: "contacts", RemoteID: models.NewID(models.PrefixSandboxRecord),
			Data: string(data), Version: 1, ModifiedAt: mod, CreatedAt: mod}
		rows = append(rows, r)
		changes = append(changes, Change{ConnectionID: conn, Topic: "crm/contacts", RemoteID: r.RemoteID, Kind: "created", Marker: m})
	}
	if err := w.DB.CreateInBatches(rows, 500).Error; err != nil {
		return fmt.Errorf("seed %d contacts: %w", n, err)
	}
	for _, c := range changes {
		w.Record(c)
	}
	return nil
}

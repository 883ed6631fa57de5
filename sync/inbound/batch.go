package inbound

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/tributary/tributary/connectors"
	"github.com/tributary/tributary/models"
	"github.com/tributary/tributary/storage"
)

// connBatch is what one connection gets from a batch: its records in item
// order (items in received order, each item's notices in occurred order).
type connBatch struct {
	conn models.Connection
	info connectors.Info
	recs []models.Record
	// received queues, per record, the arrival times of the items that
	// carried it, in order: a change's detectedAt.
	received map[recKey][]time.Time
}

// commit reconciles the records of every item of ws, publishes their changes
// and marks the items processed, in one transaction fenced by the items'
// lease token: an item whose lease was lost (another processor re-claimed it)
// is left out; when none is left, errLeaseLost.
func (p *Processor) commit(ctx context.Context, ws []*work) error {
	now := p.now()
	published := false
	err := p.DB.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		// The fence goes first: on PostgreSQL it also locks the items.
		ids := make([]string, len(ws))
		for i, w := range ws {
			ids[i] = w.item.ID
		}
		var fenced []string
		// The token alone fences: committing or failing an item clears it,
		// a new claim replaces it. (A "processed_at IS NULL" here would lead
		// a planner without statistics to the pending-items index instead
		// of the primary key.)
		err := tx.Raw(`UPDATE inbox_items SET processed_at = ?, attempts = attempts + 1, last_error = '', lease_token = ''
WHERE id IN ? AND lease_token = ? RETURNING id`, now, ids, ws[0].item.LeaseToken).Scan(&fenced).Error
		if err != nil {
			return fmt.Errorf("mark processed: %w", err)
		}
		if len(fenced) == 0 {
			return errLeaseLost
		}
		own := make(map[string]bool, len(fenced))
		for _, id := range fenced {
			own[id] = true
		}
		// Records per connection, in item order.
		byConn := map[string]*connBatch{}
		var order []string
		for _, w := range ws {
			if !own[w.item.ID] {
				p.log().WarnContext(ctx, "inbound item lease lost; another processor owns it", "inbox", w.item.ID)
				continue
			}
			for _, t := range w.targets {
				if len(t.recs) == 0 {
					continue
				}
				cb := byConn[t.conn.ID]
				if cb == nil {
					cb = &connBatch{conn: t.conn, info: w.info, received: map[recKey][]time.Time{}}
					byConn[t.conn.ID] = cb
					order = append(order, t.conn.ID)
				}
				cb.recs = append(cb.recs, t.recs...)
				for _, r := range t.recs {
					k := recKey{r.Object, r.RemoteID}
					cb.received[k] = append(cb.received[k], w.item.ReceivedAt)
				}
			}
		}
		// Connections in id order, so concurrent batches lock alike.
		slices.Sort(order)
		envs := map[string][]*models.Envelope{} // account → events
		var accounts []string
		for _, id := range order {
			cb := byConn[id]
			conn, evs, err := p.reconcileConn(tx, cb)
			if err != nil {
				return err
			}
			if conn == nil || len(evs) == 0 {
				continue
			}
			if _, ok := envs[conn.AccountID]; !ok {
				accounts = append(accounts, conn.AccountID)
			}
			envs[conn.AccountID] = append(envs[conn.AccountID], evs...)
		}
		// Accounts in id order: each Publish locks its account's counter.
		slices.Sort(accounts)
		for _, acc := range accounts {
			if err := p.Publisher.Publish(ctx, tx, acc, envs[acc]...); err != nil {
				return fmt.Errorf("account %s: publish: %w", acc, err)
			}
			published = true
			p.Metrics.events(len(envs[acc]))
		}
		return nil
	})
	if err == nil && published && p.Committed != nil {
		p.Committed()
	}
	return err
}

// reconcileConn applies one connection's records and returns the connection
// (nil when it was deleted meanwhile) and the events of its changes.
func (p *Processor) reconcileConn(tx *gorm.DB, cb *connBatch) (*models.Connection, []*models.Envelope, error) {
	// FOR SHARE: a full scan bumps the generation under a row lock, so this
	// read either precedes the bump (and the scan, which starts after this
	// commit, sees the record) or sees the new one.
	var conn models.Connection
	q := tx
	if storage.IsPostgres(tx) {
		q = tx.Clauses(clause.Locking{Strength: "SHARE"})
	}
	err := q.Where("id = ?", cb.conn.ID).Take(&conn).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, nil, nil // deleted meanwhile: nothing to do
	}
	if err != nil {
		return nil, nil, fmt.Errorf("connection %s: %w", cb.conn.ID, err)
	}
	changes, err := p.reconciler().ApplyPage(tx, conn.ID, cb.recs, conn.Generation)
	if err != nil {
		return nil, nil, fmt.Errorf("connection %s: %w", conn.ID, err)
	}
	if len(changes) == 0 {
		return &conn, nil, nil
	}
	raw := map[recKey]json.RawMessage{}
	if conn.IncludeRaw {
		for _, r := range cb.recs {
			raw[recKey{r.Object, r.RemoteID}] = r.Raw
		}
	}
	evs := make([]*models.Envelope, 0, len(changes))
	for _, ch := range changes {
		if r := raw[recKey{ch.Object, ch.RemoteID}]; len(r) > 0 {
			ch.Payload = models.WithRemoteData(ch.Payload, r)
		}
		// A record changed by several items of the batch: its changes come
		// in item order; each takes the earliest arrival not yet used.
		k := recKey{ch.Object, ch.RemoteID}
		var received time.Time
		if q := cb.received[k]; len(q) > 0 {
			received = q[0]
			if len(q) > 1 {
				cb.received[k] = q[1:]
			}
		}
		evs = append(evs, envelope(&conn, cb.info, ch, received))
	}
	return &conn, evs, nil
}

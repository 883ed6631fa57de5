package main

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"gorm.io/gorm"

	"github.com/tributary/tributary/connectors"
	"github.com/tributary/tributary/connectors/hubspot"
	"github.com/tributary/tributary/models"
	"github.com/tributary/tributary/sync/poll"
)

// hubspotContact is a CRM v3 contact as the search API returns it.
func hubspotContact(i, version int) []byte {
	ts := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(i)*time.Second + time.Duration(version)*time.Hour).Format("2006-01-02T15:04:05.000Z")
	return fmt.Appendf(nil, `{"id":"%d","archived":false,"createdAt":"2025-11-03T09:00:00.000Z","updatedAt":"%s","properties":{"hs_object_id":"%d","firstname":"First%d","lastname":"Last%d","email":"c%d.v%d@example.com","phone":"+1 555 %04d","jobtitle":"Engineer","associatedcompanyid":"%d","hubspot_owner_id":"1001","city":"Springfield","country":"USA","createdate":"2025-11-03T09:00:00.000Z","lastmodifieddate":"%s"}}`,
		i, ts, i, i, i, i, version, i%10000, i%97, ts)
}

// rawCRM is an in-memory provider of n HubSpot-shaped raw contacts that
// normalizes them with the real HubSpot connector page by page, like a
// connector does after each HTTP page; version(i) picks each record's state.
// It cannot list deletions, so every later poll is a full scan.
type rawCRM struct {
	n       int
	page    int
	version func(i int) int
	norm    connectors.Normalizer
}

func (a *rawCRM) Info() connectors.Info {
	return connectors.Info{Name: "rawcrm", DisplayName: "Raw CRM", Category: "crm", Objects: []string{models.ObjectContacts},
		Capture: []string{connectors.CapturePolling}, Auth: connectors.AuthNone}
}

func (a *rawCRM) ListChanges(ctx context.Context, _ *connectors.Conn, req connectors.ListRequest, fn func(connectors.Page) error) error {
	for start := 0; start < a.n; start += a.page {
		recs := make([]models.Record, 0, a.page)
		for i := start; i < min(a.n, start+a.page); i++ {
			rec, err := a.norm.Normalize(req.Object, hubspotContact(i, a.version(i)))
			if err != nil {
				return err
			}
			recs = append(recs, rec)
		}
		if err := fn(connectors.Page{Records: recs, Cursor: strconv.Itoa(start + len(recs))}); err != nil {
			return err
		}
	}
	return nil
}

func (a *rawCRM) ListDeleted(context.Context, *connectors.Conn, string, time.Time, time.Time) ([]connectors.Deletion, error) {
	return nil, connectors.ErrWindowExpired
}

type oneApp struct{ app connectors.Connector }

func (o oneApp) Get(string) (connectors.Connector, bool) { return o.app, true }

type plainOpener struct{}

func (plainOpener) Open(_ context.Context, c *models.Connection) (*connectors.Conn, error) {
	return &connectors.Conn{ID: c.ID}, nil
}
func (plainOpener) MarkNeedsReauth(context.Context, string, string) error { return nil }

// normalizeReconcile runs two polls of one connection through the real poll
// runner (normalize → reconcile → publish → cursor, one transaction per page
// of 1,000, next page normalized while the previous commits) with the real
// forwarding Publish: a silent first sync of n raw contacts, then a full
// re-scan with every 100th record changed.
func normalizeReconcile(ctx context.Context, db *gorm.DB, n int) (first, repoll float64, updated int, err error) {
	fwd, err := newForwarding(db)
	if err != nil {
		return 0, 0, 0, err
	}
	app := &rawCRM{n: n, page: 1000, version: func(int) int { return 0 }, norm: hubspot.New(connectors.AppConfig{})}
	runner := &poll.Runner{DB: db, Apps: oneApp{app}, Opener: plainOpener{}, Publisher: fwd, PageSize: 1000}
	now := time.Now().UTC()
	conn := models.Connection{ID: models.NewID(models.PrefixConnection), AccountID: models.NewID(models.PrefixAccount), App: "rawcrm",
		UserID: "u1", Status: models.ConnectionSyncing, Metadata: "{}", Cursors: "{}", NextSyncAt: now, CreatedAt: now, UpdatedAt: now}
	if err := db.WithContext(ctx).Create(&conn).Error; err != nil {
		return 0, 0, 0, err
	}
	pass := func() (float64, poll.Result, error) {
		var c models.Connection
		if err := db.WithContext(ctx).Take(&c, "id = ?", conn.ID).Error; err != nil {
			return 0, poll.Result{}, err
		}
		start := time.Now()
		res, err := runner.Run(ctx, &c)
		if err == nil && res.Status != poll.RunCompleted {
			err = fmt.Errorf("run %s: %s", res.Status, res.Error)
		}
		return float64(n) / time.Since(start).Seconds(), res, err
	}
	if first, _, err = pass(); err != nil {
		return 0, 0, 0, fmt.Errorf("normalize+reconcile first sync: %w", err)
	}
	app.version = func(i int) int {
		if i%100 == 0 {
			return 1
		}
		return 0
	}
	var res poll.Result
	if repoll, res, err = pass(); err != nil {
		return 0, 0, 0, fmt.Errorf("normalize+reconcile re-poll: %w", err)
	}
	return first, repoll, res.Counts.Updated, nil
}

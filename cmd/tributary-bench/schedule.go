package main

import (
	"context"
	"fmt"
	"time"

	"gorm.io/gorm"

	"github.com/tributary/tributary/models"
	"github.com/tributary/tributary/sync/poll"
	"github.com/tributary/tributary/sync/schedule"
)

// noopRunner completes every poll at once, so the scenario measures the
// scheduler's claim and finish statements alone.
type noopRunner struct{}

func (noopRunner) Run(context.Context, *models.Connection) (poll.Result, error) {
	return poll.Result{Status: poll.RunCompleted}, nil
}

type claimResult struct {
	connections, claimed int
	elapsed              time.Duration
	perSec               float64
}

// schedulerClaims stores n connections, all due, and measures how fast one
// scheduler claims, runs (no-op) and reschedules them.
func schedulerClaims(ctx context.Context, db *gorm.DB, n int) (claimResult, error) {
	now := time.Now().UTC()
	account := models.NewID(models.PrefixAccount)
	rows := make([]models.Connection, 0, 1000)
	for i := range n {
		rows = append(rows, models.Connection{ID: models.NewID(models.PrefixConnection), AccountID: account, App: "sandbox",
			UserID: fmt.Sprintf("u%d", i), Status: models.ConnectionActive, Metadata: "{}", Cursors: "{}",
			NextSyncAt: now.Add(-time.Duration(i%600) * time.Second), InitialSyncDone: true, CreatedAt: now, UpdatedAt: now})
		if len(rows) == cap(rows) || i == n-1 {
			if err := db.WithContext(ctx).CreateInBatches(rows, 1000).Error; err != nil {
				return claimResult{}, fmt.Errorf("seed connections: %w", err)
			}
			rows = rows[:0]
		}
	}
	s, err := schedule.New(schedule.Config{DB: db, Runner: noopRunner{}, Concurrency: 200, Jitter: -1})
	if err != nil {
		return claimResult{}, err
	}
	start := time.Now()
	claimed := 0
	for claimed < n {
		k, err := s.Tick(ctx)
		if err != nil {
			return claimResult{}, err
		}
		if k == 0 {
			break
		}
		claimed += k
	}
	el := time.Since(start)
	return claimResult{connections: n, claimed: claimed, elapsed: el, perSec: float64(claimed) / el.Seconds()}, nil
}

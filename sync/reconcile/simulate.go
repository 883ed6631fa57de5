package reconcile

import (
	"context"
	"fmt"
	"math/rand/v2"
	"runtime"
	"time"

	"gorm.io/gorm"

	"github.com/tributary/tributary/models"
)

// SimResult is what Simulate measured.
type SimResult struct {
	// Records, PageSize and ChangedFraction echo the parameters.
	Records         int
	PageSize        int
	ChangedFraction float64
	// FirstSync is the phase that reconciled every record for the first time.
	FirstSync SimPhase
	// Repoll is the full re-scan with ChangedFraction of the records changed,
	// including MarkUnseenDeleted at its end.
	Repoll SimPhase
}

// SimPhase is one phase of a simulation.
type SimPhase struct {
	// Elapsed is the wall time of the phase (record generation included).
	Elapsed time.Duration
	// RecordsPerSec is Records / Elapsed.
	RecordsPerSec float64
	// Generated is how many records the phase generated; Changed how many of
	// them differ from what the previous phase stored.
	Generated, Changed int
	// Created, Updated and Deleted count the changes reconcile returned.
	Created, Updated, Deleted int
	// HeapInuse samples runtime.MemStats.HeapInuse (bytes) at the start, at
	// each quarter and at the end of the phase; PeakHeapInuse is their maximum.
	HeapInuse     []uint64
	PeakHeapInuse uint64
}

// simSeed fixes the generated records, so every run reconciles the same data.
const simSeed = 0x7269627574617279

// Simulate runs a benchmark of reconcile on db for the harness: it first
// syncs records generated contacts (full scan generation 1) and then re-polls
// all of them (generation 2, ending with MarkUnseenDeleted) with
// changedFraction of them changed. Records are generated deterministically
// (fixed seed) one page at a time, each page reconciled in its own
// transaction, so memory does not grow with records. connectionID should be
// fresh: its snapshots are not removed afterwards (DeleteSnapshots does that).
func Simulate(ctx context.Context, db *gorm.DB, connectionID string, records int, changedFraction float64, pageSize int) (SimResult, error) {
	res := SimResult{Records: records, PageSize: pageSize, ChangedFraction: changedFraction}
	if records < 0 || pageSize <= 0 || changedFraction < 0 || changedFraction > 1 {
		return res, fmt.Errorf("simulate: invalid parameters (records %d, page size %d, changed fraction %g)", records, pageSize, changedFraction)
	}
	r := &Reconciler{}
	g := simGen{fraction: changedFraction}
	var err error
	if res.FirstSync, err = simPhase(ctx, db, r, connectionID, g, records, pageSize, 0, 1); err != nil {
		return res, fmt.Errorf("simulate first sync: %w", err)
	}
	if res.Repoll, err = simPhase(ctx, db, r, connectionID, g, records, pageSize, 1, 2); err != nil {
		return res, fmt.Errorf("simulate re-poll: %w", err)
	}
	return res, nil
}

func simPhase(ctx context.Context, db *gorm.DB, r *Reconciler, conn string, g simGen, records, pageSize, pass int, generation int64) (SimPhase, error) {
	var ph SimPhase
	sample := func() {
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		ph.HeapInuse = append(ph.HeapInuse, ms.HeapInuse)
		ph.PeakHeapInuse = max(ph.PeakHeapInuse, ms.HeapInuse)
	}
	sample()
	start := time.Now()
	page := make([]models.Record, 0, pageSize)
	nextQuarter := 1
	tx := db.WithContext(ctx)
	for first := 0; first < records; first += pageSize {
		page = page[:0]
		for i := first; i < min(first+pageSize, records); i++ {
			variant := 0
			if g.changedIn(i, pass) {
				variant = pass
				ph.Changed++
			}
			page = append(page, g.record(i, variant))
		}
		ph.Generated += len(page)
		err := tx.Transaction(func(tx *gorm.DB) error {
			cs, err := r.ApplyPage(tx, conn, page, generation)
			ph.count(cs)
			return err
		})
		if err != nil {
			return ph, err
		}
		for nextQuarter < 4 && ph.Generated*4 >= nextQuarter*records {
			sample()
			nextQuarter++
		}
	}
	if pass > 0 {
		err := tx.Transaction(func(tx *gorm.DB) error {
			cs, err := r.MarkUnseenDeleted(tx, conn, "contacts", generation)
			ph.count(cs)
			return err
		})
		if err != nil {
			return ph, err
		}
	}
	ph.Elapsed = time.Since(start)
	if s := ph.Elapsed.Seconds(); s > 0 {
		ph.RecordsPerSec = float64(ph.Generated) / s
	}
	sample()
	return ph, nil
}

func (ph *SimPhase) count(cs []Change) {
	for _, c := range cs {
		switch c.Kind {
		case Created:
			ph.Created++
		case Updated:
			ph.Updated++
		case Deleted:
			ph.Deleted++
		}
	}
}

// simGen generates realistic CRM contacts from their index alone.
type simGen struct{ fraction float64 }

var (
	simFirst  = []string{"Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Frances", "Ken", "Radia", "Niklaus", "Margaret", "John"}
	simLast   = []string{"Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Knuth", "Allen", "Thompson", "Perlman", "Wirth", "Hamilton", "Backus"}
	simTitle  = []string{"VP Sales", "Head of Engineering", "CFO", "Account Executive", "Office Manager", "CTO", "Procurement Lead"}
	simCity   = []string{"Berlin", "Lisbon", "Austin", "Toronto", "Lyon", "Osaka", "Dublin", "Denver"}
	simState  = []string{"BE", "LX", "TX", "ON", "ARA", "OS", "D", "CO"}
	simStreet = []string{"Main St", "Harbour Rd", "Elm Ave", "Station Sq", "Mill Lane", "Park Blvd"}
	simT0     = time.Date(2025, 6, 1, 9, 0, 0, 0, time.UTC)
)

// changedIn reports whether contact i changes in pass (never in pass 0, the
// first sync).
func (g simGen) changedIn(i, pass int) bool {
	if pass == 0 {
		return false
	}
	return rand.New(rand.NewPCG(simSeed^uint64(pass), uint64(i))).Float64() < g.fraction
}

// record returns contact i with the content it has after its last change,
// made in pass variant (0: never changed since the first sync).
func (g simGen) record(i, variant int) models.Record {
	rng := rand.New(rand.NewPCG(simSeed, uint64(i)))
	id := fmt.Sprintf("sim-%09d", i)
	created := simT0.Add(time.Duration(rng.IntN(365*24*3600)) * time.Second)
	updated := created.Add(time.Duration(rng.IntN(30*24*3600)) * time.Second)
	first, last := simFirst[rng.IntN(len(simFirst))], simLast[rng.IntN(len(simLast))]
	city := rng.IntN(len(simCity))
	c := &models.Contact{
		Common:    models.Common{RemoteID: id, RemoteCreatedAt: &created},
		FirstName: first,
		LastName:  last,
		Email:     fmt.Sprintf("%s.%s.%d@example.com", first, last, i),
		Phone:     fmt.Sprintf("+1 555 %03d %04d", rng.IntN(1000), rng.IntN(10000)),
		Title:     simTitle[rng.IntN(len(simTitle))],
		AccountID: fmt.Sprintf("acct-%06d", rng.IntN(100000)),
		OwnerID:   fmt.Sprintf("owner-%03d", rng.IntN(200)),
		Address: &models.Address{
			Street:     fmt.Sprintf("%d %s", 1+rng.IntN(999), simStreet[rng.IntN(len(simStreet))]),
			City:       simCity[city],
			State:      simState[city],
			PostalCode: fmt.Sprintf("%05d", rng.IntN(100000)),
			Country:    "US",
		},
	}
	if variant > 0 {
		prng := rand.New(rand.NewPCG(simSeed^uint64(variant)^0x5a5a, uint64(i)))
		c.Title = fmt.Sprintf("%s (promoted in pass %d)", c.Title, variant)
		c.Phone = fmt.Sprintf("+1 555 %03d %04d", prng.IntN(1000), prng.IntN(10000))
		updated = updated.Add(time.Duration(variant) * 24 * time.Hour)
	}
	c.RemoteUpdatedAt = &updated
	return models.Record{Object: "contacts", RemoteID: id, RemoteUpdatedAt: updated, Data: c}
}

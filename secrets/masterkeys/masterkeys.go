// Package masterkeys keeps the master keys a database knows (table
// master_keys): it checks a process's key before anything is written, records
// the first key, and rotates every sealed column to a new key while other
// replicas keep running.
package masterkeys

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"gorm.io/gorm"

	"github.com/tributary/tributary/models"
	"github.com/tributary/tributary/secrets"
	"github.com/tributary/tributary/storage"
)

// ErrWrongKey is returned when the configured master key is not one the
// database knows, or a key retired by a rotation.
var ErrWrongKey = errors.New("wrong master key")

// checkPlaintext is sealed with each key as its check value.
const checkPlaintext = "tributary master key check"

const table = "master_keys"

func checkAAD(id string) []byte { return []byte("master-key:" + id) }

// Check verifies, reading only, that box's primary key belongs to db: it
// opens the key's check value and refuses a retired or unknown key. On a
// database that records no key yet (a fresh one, or one from a release before
// check values) it tries a few stored secrets instead: when there are some
// and none opens, the key is wrong.
func Check(ctx context.Context, db *gorm.DB, box *secrets.Box) error {
	db = db.WithContext(ctx)
	var keys []models.MasterKey
	if db.Migrator().HasTable(table) {
		if err := db.Order("created_at").Find(&keys).Error; err != nil {
			return fmt.Errorf("read master keys: %w", err)
		}
	}
	if len(keys) == 0 {
		return checkSample(db, box)
	}
	id := box.PrimaryID()
	for _, k := range keys {
		if k.ID != id {
			continue
		}
		if _, err := box.Open(k.CheckValue, checkAAD(k.ID)); err != nil {
			return fmt.Errorf("%w: the check value of key %s does not open (%v)", ErrWrongKey, id, err)
		}
		if k.Status == models.MasterKeyRetired {
			return fmt.Errorf("%w: master key %s was retired by a rotation; configure the active key (%s)", ErrWrongKey, id, describe(keys))
		}
		return nil
	}
	return fmt.Errorf("%w: the configured master key (id %s) is not a key of this database (%s); refusing to start, since secrets written under it could not be read with the right one: set master_key (TRIBUTARY_MASTER_KEY) to the database's key", ErrWrongKey, id, describe(keys))
}

// checkAny verifies that at least one key of box is a known, unretired key
// of db (rotate may run before or after its configuration switched keys).
func checkAny(ctx context.Context, db *gorm.DB, box *secrets.Box) error {
	keys, err := Keys(ctx, db)
	if err != nil {
		return fmt.Errorf("read master keys: %w", err)
	}
	if len(keys) == 0 {
		return Check(ctx, db, box)
	}
	for _, k := range keys {
		if k.Status == models.MasterKeyRetired || !slices.Contains(box.IDs(), k.ID) {
			continue
		}
		if _, err := box.Open(k.CheckValue, checkAAD(k.ID)); err == nil {
			return nil
		}
	}
	return fmt.Errorf("%w: none of the configured keys (%s) is a key of this database (%s)", ErrWrongKey, strings.Join(box.IDs(), ", "), describe(keys))
}

func describe(keys []models.MasterKey) string {
	var parts []string
	for _, k := range keys {
		parts = append(parts, k.ID+" "+k.Status)
	}
	return "known keys: " + strings.Join(parts, ", ")
}

// checkSample opens a few stored secrets; ok when there are none.
func checkSample(db *gorm.DB, box *secrets.Box) error {
	found := 0
	var lastErr error
	for _, c := range models.SealedColumns() {
		if !db.Migrator().HasTable(c.Table) {
			continue
		}
		var rows []struct {
			ID    string
			Value []byte
		}
		if err := db.Raw(fmt.Sprintf("SELECT id, %s AS value FROM %s WHERE %s IS NOT NULL ORDER BY id LIMIT 3", c.Column, c.Table, c.Column)).Scan(&rows).Error; err != nil {
			return fmt.Errorf("read %s.%s: %w", c.Table, c.Column, err)
		}
		for _, r := range rows {
			if len(r.Value) == 0 {
				continue
			}
			found++
			if _, err := box.Open(r.Value, c.AAD(r.ID)); err == nil {
				return nil
			} else {
				lastErr = err
			}
		}
	}
	if found == 0 {
		return nil
	}
	return fmt.Errorf("%w: none of %d stored secrets opens with the configured master key (id %s): %v", ErrWrongKey, found, box.PrimaryID(), lastErr)
}

// Register checks box (as Check) and, on a database that records no key yet,
// records box's primary key as the active one. Call it after migrating,
// before writing any secret.
func Register(ctx context.Context, db *gorm.DB, box *secrets.Box, now time.Time) error {
	return db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := storage.TxLock(tx, "tributary.master-keys"); err != nil {
			return err
		}
		if err := Check(ctx, tx, box); err != nil {
			return err
		}
		var n int64
		if err := tx.Model(&models.MasterKey{}).Count(&n).Error; err != nil {
			return fmt.Errorf("read master keys: %w", err)
		}
		if n > 0 {
			return nil
		}
		return tx.Create(newRow(box, box.PrimaryID(), models.MasterKeyActive, now)).Error
	})
}

func newRow(box *secrets.Box, id, status string, now time.Time) *models.MasterKey {
	return &models.MasterKey{ID: id, CheckValue: box.Seal([]byte(checkPlaintext), checkAAD(id)), Status: status, CreatedAt: now.UTC()}
}

// Keys lists the keys the database knows, oldest first.
func Keys(ctx context.Context, db *gorm.DB) ([]models.MasterKey, error) {
	var keys []models.MasterKey
	err := db.WithContext(ctx).Order("created_at").Find(&keys).Error
	return keys, err
}

// Report tells what a rotation did.
type Report struct {
	NewKeyID string
	// Rewritten counts values re-encrypted under the new key.
	Rewritten int
	// Remaining counts values still sealed under another key after the last
	// pass: written meanwhile by replicas still sealing with the old key.
	Remaining int
	// Finished is true when the old keys were retired.
	Finished bool
	// Failed lists values no key opens ("table.column id").
	Failed []string
	// Retired lists the keys retired (no value left under them).
	Retired []string
}

// Options tune Rotate.
type Options struct {
	// Batch is how many rows one transaction rewrites (default 200).
	Batch int
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Rotate makes newKey the active key and re-encrypts every sealed column
// under it, in batches of small transactions, each row with a
// compare-and-swap on its old value, so replicas keep reading and writing
// meanwhile (they must hold newKey among their extra keys first: see
// docs/operations.md). box is the process's ring (its primary must be a
// known key). Run by a process already configured with newKey as its
// master key, and finding no value left under another key, it retires the
// other keys: the second run of the procedure finishes the rotation.
func Rotate(ctx context.Context, db *gorm.DB, box *secrets.Box, newKey []byte, o Options) (Report, error) {
	if o.Batch <= 0 {
		o.Batch = 200
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if err := checkAny(ctx, db, box); err != nil {
		return Report{}, err
	}
	ring, err := box.WithPrimary(newKey)
	if err != nil {
		return Report{}, fmt.Errorf("new key: %w", err)
	}
	rep := Report{NewKeyID: ring.PrimaryID()}
	if err := activate(ctx, db, ring, o.Now()); err != nil {
		return rep, err
	}
	// Pass 2 catches values written meanwhile under an old key.
	for pass := 0; pass < 2; pass++ {
		rewritten, failed, err := rewriteAll(ctx, db, ring, o.Batch)
		if err != nil {
			return rep, err
		}
		rep.Rewritten += rewritten
		rep.Failed = failed
	}
	left, err := countNotUnder(ctx, db, ring.PrimaryID())
	if err != nil {
		return rep, err
	}
	rep.Remaining = left
	// Retire the other keys only once this process itself is configured with
	// the new key (so every replica was switched, per the procedure) and no
	// value is left under them.
	if box.PrimaryID() != ring.PrimaryID() || left > 0 || len(rep.Failed) > 0 {
		return rep, nil
	}
	now := o.Now().UTC()
	var others []models.MasterKey
	if err := db.WithContext(ctx).Where("id <> ? AND status <> ?", ring.PrimaryID(), models.MasterKeyRetired).Find(&others).Error; err != nil {
		return rep, err
	}
	for _, k := range others {
		if err := db.WithContext(ctx).Model(&models.MasterKey{}).Where("id = ?", k.ID).
			Updates(map[string]any{"status": models.MasterKeyRetired, "retired_at": now}).Error; err != nil {
			return rep, fmt.Errorf("retire key %s: %w", k.ID, err)
		}
		rep.Retired = append(rep.Retired, k.ID)
	}
	rep.Finished = true
	return rep, nil
}

// activate records ring's primary as the active key (the others that were
// active become previous).
func activate(ctx context.Context, db *gorm.DB, ring *secrets.Box, now time.Time) error {
	id := ring.PrimaryID()
	return db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := storage.TxLock(tx, "tributary.master-keys"); err != nil {
			return err
		}
		var k models.MasterKey
		err := tx.Where("id = ?", id).Take(&k).Error
		switch {
		case errors.Is(err, gorm.ErrRecordNotFound):
			if err := tx.Create(newRow(ring, id, models.MasterKeyActive, now)).Error; err != nil {
				return fmt.Errorf("record new key: %w", err)
			}
		case err != nil:
			return err
		case k.Status == models.MasterKeyRetired:
			return fmt.Errorf("%w: key %s was retired; rotate to a fresh key", ErrWrongKey, id)
		default:
			if err := tx.Model(&models.MasterKey{}).Where("id = ?", id).Update("status", models.MasterKeyActive).Error; err != nil {
				return err
			}
		}
		return tx.Model(&models.MasterKey{}).Where("id <> ? AND status = ?", id, models.MasterKeyActive).
			Update("status", models.MasterKeyPrevious).Error
	})
}

// rewriteAll re-encrypts, under ring's primary, every sealed value that is
// under another key. It returns how many it rewrote and which none opens.
func rewriteAll(ctx context.Context, db *gorm.DB, ring *secrets.Box, batch int) (int, []string, error) {
	total := 0
	var failed []string
	for _, c := range models.SealedColumns() {
		after := ""
		for {
			var rows []struct {
				ID    string
				Value []byte
			}
			q := fmt.Sprintf("SELECT id, %s AS value FROM %s WHERE id > ? AND %s IS NOT NULL ORDER BY id LIMIT ?", c.Column, c.Table, c.Column)
			if err := db.WithContext(ctx).Raw(q, after, batch).Scan(&rows).Error; err != nil {
				return total, failed, fmt.Errorf("read %s.%s: %w", c.Table, c.Column, err)
			}
			if len(rows) == 0 {
				break
			}
			after = rows[len(rows)-1].ID
			n := 0
			err := db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
				for _, r := range rows {
					if id, ok := secrets.SealedKeyID(r.Value); (ok && id == ring.PrimaryID()) || len(r.Value) == 0 {
						continue
					}
					pt, err := ring.Open(r.Value, c.AAD(r.ID))
					if err != nil {
						failed = append(failed, c.Table+"."+c.Column+" "+r.ID)
						continue
					}
					// Compare-and-swap: a row changed since it was read (a
					// token refresh) is left to the next pass.
					res := tx.Exec(fmt.Sprintf("UPDATE %s SET %s = ? WHERE id = ? AND %s = ?", c.Table, c.Column, c.Column),
						ring.Seal(pt, c.AAD(r.ID)), r.ID, r.Value)
					if res.Error != nil {
						return fmt.Errorf("rewrite %s.%s %s: %w", c.Table, c.Column, r.ID, res.Error)
					}
					n += int(res.RowsAffected)
				}
				return nil
			})
			if err != nil {
				return total, failed, err
			}
			total += n
		}
	}
	slices.Sort(failed)
	return total, failed, nil
}

// countNotUnder counts sealed values not under key id.
func countNotUnder(ctx context.Context, db *gorm.DB, id string) (int, error) {
	n := 0
	for _, c := range models.SealedColumns() {
		after := ""
		for {
			var rows []struct {
				ID    string
				Value []byte
			}
			q := fmt.Sprintf("SELECT id, %s AS value FROM %s WHERE id > ? AND %s IS NOT NULL ORDER BY id LIMIT 1000", c.Column, c.Table, c.Column)
			if err := db.WithContext(ctx).Raw(q, after).Scan(&rows).Error; err != nil {
				return n, err
			}
			if len(rows) == 0 {
				break
			}
			after = rows[len(rows)-1].ID
			for _, r := range rows {
				if got, ok := secrets.SealedKeyID(r.Value); len(r.Value) > 0 && (!ok || got != id) {
					n++
				}
			}
		}
	}
	return n, nil
}

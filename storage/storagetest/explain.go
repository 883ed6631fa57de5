package storagetest

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/logger"
)

// Recorder keeps the SQL statements (values inlined) that a gorm session
// ran, so a test can EXPLAIN exactly the queries the code under test sends.
type Recorder struct {
	mu    sync.Mutex
	stmts []string
}

// Record returns a session of db whose statements are recorded.
func Record(db *gorm.DB) (*gorm.DB, *Recorder) {
	r := &Recorder{}
	return db.Session(&gorm.Session{Logger: r}), r
}

// Statements returns the distinct statements recorded so far, in first-run
// order.
func (r *Recorder) Statements() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	seen := map[string]bool{}
	var out []string
	for _, s := range r.stmts {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

// Reset forgets what was recorded.
func (r *Recorder) Reset() {
	r.mu.Lock()
	r.stmts = nil
	r.mu.Unlock()
}

// LogMode implements logger.Interface.
func (r *Recorder) LogMode(logger.LogLevel) logger.Interface { return r }

// Info implements logger.Interface.
func (r *Recorder) Info(context.Context, string, ...any) {}

// Warn implements logger.Interface.
func (r *Recorder) Warn(context.Context, string, ...any) {}

// Error implements logger.Interface.
func (r *Recorder) Error(context.Context, string, ...any) {}

// Trace implements logger.Interface: it records the statement.
func (r *Recorder) Trace(_ context.Context, _ time.Time, fc func() (string, int64), _ error) {
	sql, _ := fc()
	r.mu.Lock()
	r.stmts = append(r.stmts, sql)
	r.mu.Unlock()
}

// Plan is one statement and its PostgreSQL plan.
type Plan struct {
	SQL  string
	Plan string
}

var (
	seqScan   = regexp.MustCompile(`Seq Scan on (\w+)`)
	indexScan = regexp.MustCompile(`(?:Index|Index Only|Bitmap Index) Scan(?: Backward)? (?:using|on) (\w+)(?: on (\w+))?`)
)

// wholeIndexScans returns the indexes a plan reads without an index
// condition (from end to end, or until a LIMIT is met), except those in ok.
func wholeIndexScans(plan string, ok []string) []string {
	lines := strings.Split(plan, "\n")
	var out []string
	for i, l := range lines {
		m := indexScan.FindStringSubmatch(l)
		if m == nil || slices.Contains(ok, m[1]) {
			continue
		}
		cond := false
		for _, next := range lines[i+1:] {
			if strings.Contains(next, "->") {
				break
			}
			if strings.Contains(next, "Index Cond:") {
				cond = true
				break
			}
		}
		if !cond {
			out = append(out, m[1])
		}
	}
	return out
}

// RequireIndexed EXPLAINs (without running) every recorded SELECT, UPDATE
// and DELETE on PostgreSQL that touches one of tables, and fails the test for
// any plan that reads one of tables with a sequential scan, or reads an index
// without an index condition (an index used only for its order reads every
// row before the ones wanted) unless that index is in wholeOK (partial
// indexes that hold only the rows wanted). It returns the plans, for a test
// to log. db must be PostgreSQL.
func RequireIndexed(t testing.TB, db *gorm.DB, stmts []string, tables, wholeOK []string) []Plan {
	t.Helper()
	var plans []Plan
	for _, s := range stmts {
		verb := strings.ToUpper(strings.Fields(strings.TrimSpace(s) + " x")[0])
		if verb != "SELECT" && verb != "UPDATE" && verb != "DELETE" && verb != "WITH" {
			continue
		}
		if !mentions(s, tables) {
			continue
		}
		var lines []string
		// gorm inlines a zero time as a date PostgreSQL refuses.
		q := strings.ReplaceAll(s, "'0000-00-00 00:00:00'", "'0001-01-01 00:00:00'")
		if err := db.Raw("EXPLAIN " + q).Scan(&lines).Error; err != nil {
			t.Fatalf("EXPLAIN %s: %v", s, err)
		}
		plan := strings.Join(lines, "\n")
		plans = append(plans, Plan{SQL: s, Plan: plan})
		for _, idx := range wholeIndexScans(plan, wholeOK) {
			t.Errorf("index %s read without a condition:\n%s\n%s", idx, s, plan)
		}
		for _, m := range seqScan.FindAllStringSubmatch(plan, -1) {
			for _, tb := range tables {
				if m[1] == tb {
					t.Errorf("sequential scan of %s without statistics:\n%s\n%s", tb, s, plan)
				}
			}
		}
	}
	return plans
}

func mentions(s string, tables []string) bool {
	for _, tb := range tables {
		if strings.Contains(s, tb) || strings.Contains(s, fmt.Sprintf("%q", tb)) {
			return true
		}
	}
	return false
}

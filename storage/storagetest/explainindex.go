package storagetest

import (
	"strings"
	"testing"

	"gorm.io/gorm"

	"github.com/tributary/tributary/storage"
)

// Explain returns PostgreSQL's plan (EXPLAIN, text format) of query with
// args; it does not run the query.
func Explain(t testing.TB, db *gorm.DB, query string, args ...any) string {
	t.Helper()
	if !storage.IsPostgres(db) {
		t.Fatalf("Explain needs PostgreSQL, not %s", db.Dialector.Name())
	}
	var lines []string
	rows, err := db.Raw("EXPLAIN "+query, args...).Rows()
	if err != nil {
		t.Fatalf("explain %s: %v", query, err)
	}
	defer rows.Close()
	for rows.Next() {
		var l string
		if err := rows.Scan(&l); err != nil {
			t.Fatalf("explain: %v", err)
		}
		lines = append(lines, l)
	}
	return strings.Join(lines, "\n")
}

// RequireIndexScan fails unless PostgreSQL plans query with index (by name)
// and reads none of tables sequentially. Run it on a schema that was never
// analyzed — what a new deployment has — where the planner works from
// default estimates.
func RequireIndexScan(t testing.TB, db *gorm.DB, index string, tables []string, query string, args ...any) {
	t.Helper()
	plan := Explain(t, db, query, args...)
	if !strings.Contains(plan, " "+index+" ") && !strings.HasSuffix(plan, " "+index) && !strings.Contains(plan, " "+index+"\n") {
		t.Fatalf("plan does not use index %s:\n%s\nquery: %s", index, plan, query)
	}
	for _, tb := range tables {
		if strings.Contains(plan, "Seq Scan on "+tb+" ") || strings.HasSuffix(plan, "Seq Scan on "+tb) || strings.Contains(plan, "Seq Scan on "+tb+"\n") {
			t.Fatalf("plan reads %s sequentially:\n%s\nquery: %s", tb, plan, query)
		}
	}
}

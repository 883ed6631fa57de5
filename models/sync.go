package models

// syncTables lists the tables owned by the sync packages.
func syncTables() []any { return []any{} }

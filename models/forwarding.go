package models

// forwardingTables lists the tables owned by package forwarding.
func forwardingTables() []any { return []any{} }

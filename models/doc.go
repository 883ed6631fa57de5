// Package models is the bottom of Tributary's import graph. It holds the gorm
// row structs of every table, the unified data model that connectors
// normalize into, the topic catalogue, identifiers, coded errors and the
// versioned migrations. It runs no queries of its own: each domain package
// (accounts, forwarding, sync/...) owns the queries on its tables.
package models

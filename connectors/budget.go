package connectors

import (
	"net/http"
)

// RateBudget is one request budget a provider documents for one provider
// account (HubSpot portal, Shopify shop, Salesforce org), expressed as a
// token bucket: Burst requests at once, refilled at Rate per second. Sync
// paces every request a connection sends within the budgets its app
// declares, shared by all connections to that provider account and across
// replicas. Declare a bucket no provider window can overflow: for "N per T"
// windows, Burst + Rate×T ≤ N.
type RateBudget struct {
	// Name identifies the budget within the app ("search", "burst").
	Name string
	// Rate is the sustained requests per second.
	Rate float64
	// Burst is how many requests may go at once.
	Burst float64
	// Source says where the figure comes from (the provider's docs).
	Source string
}

// Budgeted is implemented by apps whose provider limits request rates.
type Budgeted interface {
	// RateBudgets lists the provider's budgets.
	RateBudgets() []RateBudget
	// BudgetsOf names the budgets a request draws from (none: unpaced).
	BudgetsOf(r *http.Request) []string
}

package hubspot

import (
	"net/http"
	"strings"

	"github.com/tributary/tributary/connectors"
)

// Budget names.
const (
	BudgetSearch = "search"
	BudgetBurst  = "burst"
)

// RateBudgets are HubSpot's documented per-account limits
// (developers.hubspot.com, "API usage guidelines" and the CRM search
// changelog): the CRM search endpoints take 4 requests per second per
// account; every request counts against the burst limit of 100 requests per
// 10 seconds (the smallest tier; Professional and Enterprise allow 190).
// Paced as buckets no rolling window can overflow: search 1 + 3/s ≤ 4 per
// second, burst 10 + 9/s × 10 s ≤ 100 per 10 seconds.
func (c *Connector) RateBudgets() []connectors.RateBudget {
	return []connectors.RateBudget{
		{Name: BudgetSearch, Rate: 3, Burst: 1, Source: "HubSpot CRM search: 4 requests/second per account"},
		{Name: BudgetBurst, Rate: 9, Burst: 10, Source: "HubSpot burst limit: 100 requests/10 seconds per account (free/starter)"},
	}
}

// BudgetsOf: every API request draws from the burst budget; POST
// /crm/v3/objects/{type}/search from the search budget too.
func (c *Connector) BudgetsOf(r *http.Request) []string {
	if r.Method == http.MethodPost && strings.HasPrefix(r.URL.Path, "/crm/v3/objects/") && strings.HasSuffix(r.URL.Path, "/search") {
		return []string{BudgetBurst, BudgetSearch}
	}
	return []string{BudgetBurst}
}

var _ connectors.Budgeted = (*Connector)(nil)

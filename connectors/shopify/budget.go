package shopify

import (
	"net/http"

	"github.com/tributary/tributary/connectors"
)

// BudgetREST names Shopify's REST Admin API bucket.
const BudgetREST = "rest"

// RateBudgets is Shopify's REST Admin API leaky bucket
// (shopify.dev/docs/api/admin-rest/usage/rate-limits): per app and store, a
// bucket of 40 requests leaking 2 per second on the standard plan (Advanced
// 4/s, Plus 20/s). Paced at the standard figures with 2 requests of margin,
// so a request in flight while the bucket refills never overflows it.
func (k *Connector) RateBudgets() []connectors.RateBudget {
	return []connectors.RateBudget{
		{Name: BudgetREST, Rate: 2, Burst: 38, Source: "Shopify REST Admin API: bucket of 40, leaking 2 requests/second (standard plan)"},
	}
}

// BudgetsOf: every Admin API request fills the REST bucket.
func (k *Connector) BudgetsOf(r *http.Request) []string { return []string{BudgetREST} }

var _ connectors.Budgeted = (*Connector)(nil)

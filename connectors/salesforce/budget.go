package salesforce

import (
	"net/http"

	"github.com/tributary/tributary/connectors"
)

// BudgetDaily names the org's rolling 24-hour API request allocation.
const BudgetDaily = "daily"

// RateBudgets is Salesforce's total API request allocation
// (developer.salesforce.com, "API Request Limits and Allocations"): per org,
// a rolling 24 hours of 100,000 requests plus a per-licence allowance (1,000
// per Enterprise licence). Paced at the base allocation so Tributary alone
// never exhausts an org: 100,000 per day on average, at most an hour's
// share (about 4,166) at once. There is no per-second limit; long requests
// (20 s or more) are limited to 25 at once per production org, which one
// poll per connection never approaches.
func (c *Connector) RateBudgets() []connectors.RateBudget {
	return []connectors.RateBudget{
		{Name: BudgetDaily, Rate: 100000.0 / 86400, Burst: 100000.0 / 24, Source: "Salesforce total API request allocation: 100,000 per rolling 24 hours (base)"},
	}
}

// BudgetsOf: every REST request counts against the allocation.
func (c *Connector) BudgetsOf(r *http.Request) []string { return []string{BudgetDaily} }

var _ connectors.Budgeted = (*Connector)(nil)

// Package pollinterval is the one rule deciding how often a connection is
// polled, shared by the scheduler (which applies it), the connections service
// (which validates what ISVs and admins set, and shows the effective
// interval) and the admin API. It reads rows; it never queries or writes.
//
// The rule:
//   - An override set with an admin key is applied as given, down to the
//     deployment's AdminMin (scheduler.min_admin_poll_interval) — below the
//     account's floor too: that is the account rep's lever.
//   - An override set by the ISV is at least the ISV floor: the account's
//     minPollInterval when an admin set one, else the deployment's Floor
//     (scheduler.min_poll_interval).
//   - Without an override, the account's defaultPollInterval (admin-set,
//     applied as given down to AdminMin), else the deployment's Default.
package pollinterval

import (
	"cmp"
	"time"

	"github.com/tributary/tributary/models"
)

// Defaults of Policy.
const (
	DefaultInterval = 12 * time.Hour
	DefaultFloor    = 5 * time.Minute
	DefaultAdminMin = time.Minute
)

// Policy holds the deployment's poll interval settings. Zero fields get the
// defaults above.
type Policy struct {
	// Default applies when neither the account nor the connection sets one.
	Default time.Duration
	// Floor is the deployment floor of ISV-set intervals, unless the
	// account has its own.
	Floor time.Duration
	// AdminMin is the smallest interval anyone, an admin included, may set.
	AdminMin time.Duration
}

// Limit is a bound an interval is checked against, with the name an error
// message gives it.
type Limit struct {
	Min  time.Duration
	Name string
}

func (p Policy) filled() Policy {
	p.Default = cmp.Or(p.Default, DefaultInterval)
	p.Floor = cmp.Or(p.Floor, DefaultFloor)
	p.AdminMin = cmp.Or(p.AdminMin, DefaultAdminMin)
	return p
}

// AdminLimit bounds intervals set with an admin key.
func (p Policy) AdminLimit() Limit {
	return Limit{Min: p.filled().AdminMin, Name: "the deployment's minimum for admin-set intervals, scheduler.min_admin_poll_interval"}
}

// ISVLimit bounds intervals an ISV sets on its connections: the account's
// floor when it has one, else the deployment's. acc may be nil.
func (p Policy) ISVLimit(acc *models.Account) Limit {
	if acc != nil && acc.MinPollInterval > 0 {
		return Limit{Min: acc.MinPollInterval, Name: "this account's floor, minPollInterval"}
	}
	return Limit{Min: p.filled().Floor, Name: "the deployment's floor, scheduler.min_poll_interval"}
}

// AccountDefault is the interval of an account's connections without an
// override. acc may be nil.
func (p Policy) AccountDefault(acc *models.Account) time.Duration {
	p = p.filled()
	if acc != nil && acc.DefaultPollInterval > 0 {
		return max(acc.DefaultPollInterval, p.AdminMin)
	}
	return p.Default
}

// Effective is the interval the scheduler applies to c. acc may be nil.
func (p Policy) Effective(c *models.Connection, acc *models.Account) time.Duration {
	switch {
	case c.PollInterval <= 0:
		return p.AccountDefault(acc)
	case c.PollIntervalByAdmin:
		return max(c.PollInterval, p.AdminLimit().Min)
	default:
		return max(c.PollInterval, p.ISVLimit(acc).Min)
	}
}

package forwarding

import (
	"cmp"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/tributary/tributary/models"
)

// inflight counts, per account, subscription and endpoint origin, the jobs
// this dispatcher claimed and has not yet finished, for fair claiming.
type inflight struct {
	mu        sync.Mutex
	accounts  map[string]int
	subs      map[string]int
	origins   map[string]int
	subOrigin map[string]string // subscription → origin of its address, as last seen
	// held is set when the last claim left due work behind because of a cap.
	held atomic.Bool
}

func newInflight() inflight {
	return inflight{accounts: map[string]int{}, subs: map[string]int{}, origins: map[string]int{},
		subOrigin: map[string]string{}}
}

func (f *inflight) add(j *job) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.accounts[j.d.AccountID]++
	f.subs[j.d.SubscriptionID]++
	if j.sub != nil {
		o := originOf(j.sub.Address)
		f.subOrigin[j.d.SubscriptionID] = o
		f.origins[o]++
	}
}

// done ends a job added by add; jobs never added (test sends, samples) are ignored.
func (f *inflight) done(j *job) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.subs[j.d.SubscriptionID] == 0 {
		return
	}
	if f.accounts[j.d.AccountID]--; f.accounts[j.d.AccountID] <= 0 {
		delete(f.accounts, j.d.AccountID)
	}
	if f.subs[j.d.SubscriptionID]--; f.subs[j.d.SubscriptionID] <= 0 {
		delete(f.subs, j.d.SubscriptionID)
	}
	if j.sub != nil {
		o := originOf(j.sub.Address)
		if f.origins[o]--; f.origins[o] <= 0 {
			delete(f.origins, o)
		}
	}
}

// saturated lists the accounts and subscriptions at their in-flight caps
// (sorted, so the claim statement is stable).
func (f *inflight) saturated(perAccount, perSub int) (accounts, subs []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for a, n := range f.accounts {
		if perAccount > 0 && n >= perAccount {
			accounts = append(accounts, a)
		}
	}
	for s, n := range f.subs {
		if perSub > 0 && n >= perSub {
			subs = append(subs, s)
		}
	}
	if perSub > 0 && len(f.origins) > 0 {
		// Subscriptions known to share a saturated origin.
		for s, o := range f.subOrigin {
			if f.origins[o] >= perSub && f.subs[s] < perSub {
				subs = append(subs, s)
			}
		}
	}
	slices.Sort(accounts)
	slices.Sort(subs)
	return accounts, subs
}

// capped reports whether the last claim left due work behind for a cap.
func (f *inflight) capped() bool { return f.held.Load() }

// claimPerEndpoint is how many jobs of one subscription or origin a
// dispatcher holds at most: twice its concurrency cap, so that behind the
// requests in flight the next ones are ready to go.
func claimPerEndpoint(maxPerEndpoint int) int { return 2 * maxPerEndpoint }

// claimWindow is how many of the oldest due deliveries a claim of limit
// reads to choose from.
func claimWindow(limit int) int { return limit * 2 }

// fairPick chooses up to limit of window (oldest first) round-robin: one
// per account in turn, and within an account one per subscription in turn,
// never taking an account or subscription past its in-flight cap. Within a
// subscription the oldest go first.
func (f *inflight) fairPick(window []models.Delivery, limit, perAccount, perSub int) []models.Delivery {
	if len(window) == 0 {
		return nil
	}
	type subQ struct {
		id   string
		rows []models.Delivery
	}
	type accQ struct {
		id    string
		subs  []*subQ
		next  int
		taken int
	}
	var accs []*accQ
	byAcc := map[string]*accQ{}
	bySub := map[string]*subQ{}
	for _, r := range window {
		a := byAcc[r.AccountID]
		if a == nil {
			a = &accQ{id: r.AccountID}
			byAcc[r.AccountID] = a
			accs = append(accs, a)
		}
		sq := bySub[r.SubscriptionID]
		if sq == nil {
			sq = &subQ{id: r.SubscriptionID}
			bySub[r.SubscriptionID] = sq
			a.subs = append(a.subs, sq)
		}
		sq.rows = append(sq.rows, r)
	}
	if len(accs) == 1 && len(accs[0].subs) == 1 && perAccount <= 0 && perSub <= 0 {
		return window[:min(limit, len(window))]
	}
	f.mu.Lock()
	accBusy := make(map[string]int, len(accs))
	subBusy := make(map[string]int, len(bySub))
	originBusy := map[string]int{}
	subOrigin := make(map[string]string, len(bySub))
	for id := range byAcc {
		accBusy[id] = f.accounts[id]
	}
	for id := range bySub {
		subBusy[id] = f.subs[id]
		if o, ok := f.subOrigin[id]; ok {
			subOrigin[id] = o
			originBusy[o] = f.origins[o]
		}
	}
	f.mu.Unlock()
	full := func(sub string) bool {
		if perSub <= 0 {
			return false
		}
		if subBusy[sub] >= perSub {
			return true
		}
		o, ok := subOrigin[sub]
		return ok && originBusy[o] >= perSub
	}

	out := make([]models.Delivery, 0, min(limit, len(window)))
	for len(out) < limit {
		progress := false
		for _, a := range accs {
			if len(out) == limit {
				break
			}
			if perAccount > 0 && accBusy[a.id] >= perAccount {
				continue
			}
			// The account's next subscription with work and room.
			for k := 0; k < len(a.subs); k++ {
				sq := a.subs[(a.next+k)%len(a.subs)]
				if len(sq.rows) == 0 || full(sq.id) {
					continue
				}
				out = append(out, sq.rows[0])
				sq.rows = sq.rows[1:]
				accBusy[a.id]++
				subBusy[sq.id]++
				if o, ok := subOrigin[sq.id]; ok {
					originBusy[o]++
				}
				a.next = (a.next + k + 1) % len(a.subs)
				progress = true
				break
			}
		}
		if !progress {
			break
		}
	}
	// Lock and lease in a stable order.
	slices.SortFunc(out, func(a, b models.Delivery) int { return cmp.Compare(a.ID, b.ID) })
	return out
}

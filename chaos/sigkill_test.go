package chaos

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tributary/tributary/storage/storagetest"
)

// TestSIGKILL kills `tributary serve` (API, poller and dispatcher in one
// process) with SIGKILL at random moments — polls requested, inbound
// webhooks queued, deliveries hanging at a misbehaving receiver — and
// restarts it on the same database, round after round. Between kills it
// writes while the engine is down too (a webhook-mode write whose webhook
// fails: only a poll can catch it). The audit must find every change
// delivered once as one stable event id.
func TestSIGKILL(t *testing.T) {
	t.Parallel()
	rounds, writes := 4, 12
	if long() {
		rounds, writes = 20, 40
	}
	for i, d := range storagetest.Dialects {
		t.Run(d, func(t *testing.T) {
			t.Parallel()
			s := seed(20261124 + uint64(i))
			e, rc, w := setup(t, d, s, DefaultWeights)
			rnd := rand.New(rand.NewPCG(s, 3))
			kills := 0
			kill := func() {
				e.Kill()
				kills++
			}
			for round := range rounds {
				_, err := w.Round(writes)
				require.NoError(t, err)
				// Ask for polls, then die while they, the inbound
				// processor and the dispatcher are busy.
				for _, c := range w.Conns {
					_, _, _ = e.Do("POST", "/v1/connections/"+c+"/sync", w.Key, nil)
				}
				time.Sleep(time.Duration(rnd.IntN(400)) * time.Millisecond)
				kill()
				if round%2 == 0 {
					writeWhileDown(t, e, w)
				}
				e.ExpireLeases()
				e.Start()
				if long() && rnd.IntN(2) == 0 {
					// A second kill soon after a restart, mid-recovery.
					time.Sleep(time.Duration(50+rnd.IntN(300)) * time.Millisecond)
					kill()
					e.ExpireLeases()
					e.Start()
				}
				require.NoError(t, w.Settle(60*time.Second), "round %d", round)
			}
			// A last kill with deliveries in flight, then drain.
			time.Sleep(time.Duration(rnd.IntN(300)) * time.Millisecond)
			kill()
			e.ExpireLeases()
			e.Start()
			finish(t, e, rc, w, false, func(r *Report) { r.Kills = kills })
		})
	}
}

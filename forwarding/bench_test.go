package forwarding_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tributary/tributary/forwarding"
	"github.com/tributary/tributary/models"
	"github.com/tributary/tributary/storage/storagetest"
)

// BenchmarkDispatch measures the dispatcher alone: deliveries queued for
// subs hmac (or rsa) subscriptions of accounts accounts are sent by Run to
// a local receiver and recorded. It reports deliveries/s.
func BenchmarkDispatch(b *testing.B) {
	for _, tc := range []struct {
		name           string
		scheme         string
		accounts, subs int
	}{
		{"hmac/1x1", "hmac", 1, 1},
		{"hmac/4x8", "hmac", 4, 8},
		{"rsa/1x1", "rsa", 1, 1},
	} {
		for _, dialect := range storagetest.Dialects {
			b.Run(tc.name+"/"+dialect, func(b *testing.B) {
				db := storagetest.New(b, dialect)
				bd := setup(b, db, func(c *forwarding.Config) { c.Now = time.Now })
				var got atomic.Int64
				srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { got.Add(1) }))
				b.Cleanup(srv.Close)
				var accounts []string
				for a := range tc.accounts {
					acc := "acc_" + strconv.Itoa(a)
					accounts = append(accounts, acc)
					for range tc.subs {
						bd.subscribe(b, acc, srv.URL, []string{"*"}, func(in *forwarding.SubscriptionInput) {
							in.Signing = &forwarding.SigningInput{Scheme: tc.scheme}
							if tc.scheme == "hmac" {
								in.Signing.Secret = "0123456789abcdef0123"
							}
						})
					}
				}
				const events = 2000
				per := events / tc.accounts / tc.subs
				b.ResetTimer()
				for range b.N {
					b.StopTimer()
					got.Store(0)
					for _, acc := range accounts {
						for i := 0; i < per; i += 100 {
							var evs []*models.Envelope
							for j := i; j < min(i+100, per); j++ {
								evs = append(evs, contactEvent(strconv.Itoa(j)))
							}
							require.NoError(b, bd.svc.Publish(context.Background(), db, acc, evs...))
						}
					}
					want := int64(per * tc.subs * tc.accounts)
					ctx, stop := context.WithCancel(context.Background())
					done := make(chan error, 1)
					b.StartTimer()
					start := time.Now()
					go func() { done <- bd.disp.Run(ctx) }()
					for got.Load() < want {
						time.Sleep(time.Millisecond)
					}
					stop()
					require.NoError(b, <-done)
					el := time.Since(start)
					b.ReportMetric(float64(want)/el.Seconds(), "deliveries/s")
					b.Logf("%s: %.0f deliveries/s", b.Name(), float64(want)/el.Seconds())
				}
			})
		}
	}
}

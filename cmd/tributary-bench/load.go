package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"gorm.io/gorm"

	"github.com/tributary/tributary/accounts"
	"github.com/tributary/tributary/api"
	"github.com/tributary/tributary/config"
	"github.com/tributary/tributary/models"
	"github.com/tributary/tributary/storage"
)

type loadResult struct {
	requests, errors int64
	perSec           float64
	p50, p99         time.Duration
}

// apiLoad runs clients concurrent clients (one account each) for dur against
// the subscription and delivery-list endpoints over loopback HTTP.
func apiLoad(ctx context.Context, db *gorm.DB, clients int, dur time.Duration) (loadResult, error) {
	c := config.Default()
	c.API.RateLimit, c.API.RateBurst = 1e6, 1e6 // measure the API, not the limiter
	fwd, err := newForwarding(db)
	if err != nil {
		return loadResult{}, err
	}
	accts := accounts.New(db)
	srv := api.New(api.Deps{Config: &c, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Registry: prometheus.NewRegistry(),
		Ready: func(ctx context.Context) error { return storage.Ping(ctx, db) }, Accounts: accts, Forwarding: fwd})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return loadResult{}, err
	}
	hs := &http.Server{Handler: srv.Handler()}
	go hs.Serve(ln)
	defer hs.Close()
	base := "http://" + ln.Addr().String()

	type client struct{ key, webhook string }
	cs := make([]client, clients)
	for i := range cs {
		acc, key, err := accts.Create(ctx, fmt.Sprintf("load-%d", i))
		if err != nil {
			return loadResult{}, err
		}
		addr, topics := "https://load.example.com/hook", []string{"crm/*"}
		for range 3 {
			sub, err := fwd.CreateSubscription(ctx, acc.ID, subscriptionInput(addr, topics))
			if err != nil {
				return loadResult{}, err
			}
			cs[i].webhook = sub.ID
		}
		evs := make([]*models.Envelope, 100)
		for j := range evs {
			evs[j] = benchEvent(j)
		}
		if err := fwd.PublishNow(ctx, acc.ID, evs...); err != nil {
			return loadResult{}, err
		}
		cs[i].key = key
	}
	tr := &http.Transport{MaxIdleConnsPerHost: clients}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	var reqs, errs atomic.Int64
	var mu sync.Mutex
	var lat []time.Duration
	stop := time.Now().Add(dur)
	var wg sync.WaitGroup
	for _, cl := range cs {
		wg.Go(func() {
			var local []time.Duration
			for i := 0; time.Now().Before(stop); i++ {
				var method, path, body string
				switch i % 4 {
				case 0:
					method, path = "GET", "/v1/webhooks"
				case 1:
					method, path = "GET", "/v1/webhooks/"+cl.webhook+"/deliveries?limit=50"
				case 2:
					method, path = "GET", "/v1/webhooks/"+cl.webhook+"/stats"
				case 3:
					method, path, body = "PATCH", "/v1/webhooks/"+cl.webhook, `{"timeoutSeconds": 20}`
				}
				req, _ := http.NewRequestWithContext(ctx, method, base+path, strings.NewReader(body))
				req.Header.Set("Authorization", "Bearer "+cl.key)
				t0 := time.Now()
				resp, err := hc.Do(req)
				if err == nil {
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
				local = append(local, time.Since(t0))
				reqs.Add(1)
				if err != nil || resp.StatusCode >= 300 {
					errs.Add(1)
				}
			}
			mu.Lock()
			lat = append(lat, local...)
			mu.Unlock()
		})
	}
	wg.Wait()
	slices.Sort(lat)
	r := loadResult{requests: reqs.Load(), errors: errs.Load(), perSec: float64(reqs.Load()) / dur.Seconds()}
	if len(lat) > 0 {
		r.p50, r.p99 = lat[len(lat)/2], lat[len(lat)*99/100]
	}
	return r, nil
}

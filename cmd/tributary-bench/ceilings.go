package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"gorm.io/gorm"

	"github.com/tributary/tributary/forwarding/signing"
	"github.com/tributary/tributary/storage"
)

// rsaSignsPerSecond signs on one goroutine for d: the CPU ceiling of rsa.
func rsaSignsPerSecond(d time.Duration) float64 {
	key, err := signing.GenerateKey()
	if err != nil {
		panic(err)
	}
	s, _ := signing.NewSigner(key)
	body := []byte(strings.Repeat("x", 300))
	n := 0
	start := time.Now()
	for time.Since(start) < d {
		_, _ = s.Sign("evt_x", start, body)
		n++
	}
	return float64(n) / time.Since(start).Seconds()
}

// loopbackRequestsPerSecond is plain net/http POSTs of bodyBytes to a local
// handler that reads the body and answers 204, from 64 keep-alive clients
// (the senders' concurrency): the ceiling of any HTTP request on this machine.
func loopbackRequestsPerSecond(d time.Duration, bodyBytes int) (float64, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.WriteHeader(204)
	})}
	go srv.Serve(ln)
	defer srv.Close()
	tr := &http.Transport{MaxIdleConnsPerHost: 64}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	u := "http://" + ln.Addr().String() + "/"
	body := strings.Repeat("x", bodyBytes)
	var n atomic.Int64
	var wg sync.WaitGroup
	stop := time.Now().Add(d)
	for range 64 {
		wg.Go(func() {
			for time.Now().Before(stop) {
				resp, err := client.Post(u, "application/json", strings.NewReader(body))
				if err != nil {
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				n.Add(1)
			}
		})
	}
	wg.Wait()
	return float64(n.Load()) / d.Seconds(), nil
}

// peakRSSMiB reads VmHWM from /proc/self/status (0 where unavailable).
func peakRSSMiB() float64 {
	raw, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmHWM:" {
			kb, _ := strconv.ParseFloat(f[1], 64)
			return kb / 1024
		}
	}
	return 0
}

// freshSchema opens url on a new schema, migrated, dropped by cleanup.
func freshSchema(ctx context.Context, base string) (*gorm.DB, func(), error) {
	admin, err := storage.Open(ctx, storage.Options{URL: base, MaxOpenConns: 1})
	if err != nil {
		return nil, nil, err
	}
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	schema := "bench_" + hex.EncodeToString(b)
	if err := admin.Exec("CREATE SCHEMA " + schema).Error; err != nil {
		storage.Close(admin)
		return nil, nil, fmt.Errorf("create schema: %w", err)
	}
	u, err := url.Parse(base)
	if err != nil {
		return nil, nil, err
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	db, err := storage.Open(ctx, storage.Options{URL: u.String(), MaxOpenConns: 16})
	if err != nil {
		return nil, nil, err
	}
	if _, err := storage.Migrate(ctx, db); err != nil {
		return nil, nil, err
	}
	cleanup := func() {
		storage.Close(db)
		admin.Exec("DROP SCHEMA " + schema + " CASCADE")
		storage.Close(admin)
	}
	return db, cleanup, nil
}

// loadAvg is the 1, 5 and 15 minute load average from /proc/loadavg.
func loadAvg() string {
	raw, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(raw))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

// cpuModel is the first "model name" of /proc/cpuinfo.
func cpuModel() string {
	raw, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "unknown CPU"
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown CPU"
}

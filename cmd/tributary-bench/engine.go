package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"gorm.io/gorm"

	"github.com/tributary/tributary/models"
	"github.com/tributary/tributary/storage"
)

// buildEngine compiles `tributary` once into dir and returns its path.
func buildEngine(ctx context.Context, dir string) (string, error) {
	bin := filepath.Join(dir, "tributary")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "github.com/tributary/tributary/cmd/tributary")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("go build tributary: %w", err)
	}
	return bin, nil
}

// schema is a fresh, empty PostgreSQL schema: url selects it through
// search_path; drop removes it.
type schema struct {
	name, url string
	admin     *gorm.DB
}

func newSchema(ctx context.Context, base string) (*schema, error) {
	admin, err := storage.Open(ctx, storage.Options{URL: base, MaxOpenConns: 2})
	if err != nil {
		return nil, err
	}
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	name := "bench_" + hex.EncodeToString(b)
	if err := admin.WithContext(ctx).Exec("CREATE SCHEMA " + name).Error; err != nil {
		storage.Close(admin)
		return nil, fmt.Errorf("create schema: %w", err)
	}
	u, err := url.Parse(base)
	if err != nil {
		storage.Close(admin)
		return nil, err
	}
	q := u.Query()
	q.Set("search_path", name)
	u.RawQuery = q.Encode()
	return &schema{name: name, url: u.String(), admin: admin}, nil
}

func (s *schema) drop() {
	_ = s.admin.Exec("DROP SCHEMA " + s.name + " CASCADE").Error
	storage.Close(s.admin)
}

// engineProc is `tributary serve` running as its own OS process.
type engineProc struct {
	bin, url, log string
	env           []string
	cmd           *exec.Cmd
	done          chan error
	hc            *http.Client
}

// startEngineProc starts `bin serve` on db with env (TRIBUTARY_* settings
// on top of the bench's own: a fresh master key, a free loopback port as
// listen and public address) and waits until /readyz answers 200.
func startEngineProc(ctx context.Context, bin, dir, dbURL string, extra map[string]string) (*engineProc, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	set := map[string]string{
		"TRIBUTARY_DATABASE_URL":            dbURL,
		"TRIBUTARY_LISTEN_ADDR":             addr,
		"TRIBUTARY_MASTER_KEY":              hex.EncodeToString(key),
		"TRIBUTARY_ROLES":                   "api,poller,dispatcher",
		"TRIBUTARY_ALLOW_PRIVATE_ADDRESSES": "true",
		"TRIBUTARY_ALLOW_HTTP":              "true",
		"TRIBUTARY_LOG_FORMAT":              "text",
		"TRIBUTARY_LOG_LEVEL":               "warn",
		// One API key drives the whole sandbox load: the per-key limiter
		// (50/s by default, by design) would otherwise answer 429s.
		"TRIBUTARY_API_RATE_LIMIT": "1000000",
		"TRIBUTARY_API_RATE_BURST": "1000000",
		// All webhook senders share one source IP (loopback), where Shopify
		// sends from many: lift the per-source inbound limits (100/s) and the
		// in-progress cap (docs/security.md).
		"TRIBUTARY_API_INBOUND_RATE_LIMIT":  "1000000",
		"TRIBUTARY_API_INBOUND_RATE_BURST":  "1000000",
		"TRIBUTARY_API_INBOUND_CONCURRENCY": "1024",
		// Connections are made just before the run: their first syncs
		// (empty shops) should not take 64/4 scheduler ticks of 5 s.
		"TRIBUTARY_SCHEDULER_TICK":        "500ms",
		"TRIBUTARY_SCHEDULER_CONCURRENCY": "16",
	}
	for k, v := range extra {
		set[k] = v
	}
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "TRIBUTARY_") {
			env = append(env, kv)
		}
	}
	for k, v := range set {
		env = append(env, k+"="+v)
	}
	logPath := filepath.Join(dir, "engine-"+addr[strings.LastIndex(addr, ":")+1:]+".log")
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "serve")
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start engine: %w", err)
	}
	e := &engineProc{bin: bin, url: "http://" + addr, log: logPath, env: env, cmd: cmd, done: make(chan error, 1),
		hc: &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 128, MaxConnsPerHost: 0}}}
	go func() { e.done <- cmd.Wait(); logf.Close() }()
	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case err := <-e.done:
			e.done <- err
			return nil, fmt.Errorf("engine exited at start (%v): %s", err, e.tail())
		default:
		}
		if resp, err := e.hc.Get(e.url + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return e, nil
			}
		}
		if time.Now().After(deadline) {
			e.stop()
			return nil, fmt.Errorf("engine not ready after 60s: %s", e.tail())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// tail is the end of the engine's log, for error messages.
func (e *engineProc) tail() string {
	raw, _ := os.ReadFile(e.log)
	if len(raw) > 2000 {
		raw = raw[len(raw)-2000:]
	}
	return string(raw)
}

// stop ends the engine: SIGTERM, then SIGKILL after 20 s.
func (e *engineProc) stop() {
	_ = e.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-e.done:
		e.done <- err
	case <-time.After(20 * time.Second):
		_ = e.cmd.Process.Kill()
		e.done <- <-e.done
	}
}

// cpuSeconds is the engine process's user+system CPU time so far.
func (e *engineProc) cpuSeconds() float64 {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", e.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	s := string(raw)
	f := strings.Fields(s[strings.LastIndex(s, ")")+2:])
	if len(f) < 13 {
		return 0
	}
	var ut, st float64
	fmt.Sscan(f[11], &ut)
	fmt.Sscan(f[12], &st)
	return (ut + st) / 100 // USER_HZ
}

// cli runs a tributary command against the engine's database.
func (e *engineProc) cli(ctx context.Context, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, e.bin, args...)
	cmd.Env = e.env
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("tributary %s: %w: %s", strings.Join(args, " "), err, stderr.String())
	}
	return out, nil
}

// call does one JSON API request and decodes the answer into out (if
// non-nil); a status other than want is an error.
func (e *engineProc) call(ctx context.Context, method, path, key string, body any, want int, out any) error {
	var r io.Reader
	if body != nil {
		raw, err := json.Marshal(body)
		if err != nil {
			return err
		}
		r = bytes.NewReader(raw)
	}
	req, err := http.NewRequestWithContext(ctx, method, e.url+path, r)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := e.hc.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		return fmt.Errorf("%s %s: %d %s", method, path, resp.StatusCode, raw)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			return fmt.Errorf("%s %s: %w", method, path, err)
		}
	}
	return nil
}

// account makes an admin key with the CLI on the engine's database, then
// an account through the admin API; it returns the account's API key and id.
func (e *engineProc) account(ctx context.Context) (key, id string, err error) {
	raw, err := e.cli(ctx, "admin-keys", "create", "--json")
	if err != nil {
		return "", "", err
	}
	var ak struct {
		AdminKey string `json:"adminKey"`
	}
	if err := json.Unmarshal(raw, &ak); err != nil || ak.AdminKey == "" {
		return "", "", fmt.Errorf("admin-keys create: unexpected output %q", raw)
	}
	var acc struct {
		APIKey    string `json:"apiKey"`
		AccountID string `json:"accountId"`
	}
	if err := e.call(ctx, "POST", "/v1/admin/accounts", ak.AdminKey, map[string]string{"name": "bench"}, http.StatusCreated, &acc); err != nil {
		return "", "", err
	}
	return acc.APIKey, acc.AccountID, nil
}

// waitSynced waits until every connection of the account is active and has
// finished its first sync.
func (e *engineProc) waitSynced(ctx context.Context, key string, n int) error {
	deadline := time.Now().Add(2 * time.Minute)
	for {
		var list struct {
			Data []struct {
				ID         string  `json:"id"`
				Status     string  `json:"status"`
				LastSyncAt *string `json:"lastSyncAt"`
			} `json:"data"`
		}
		if err := e.call(ctx, "GET", "/v1/connections?limit=500", key, nil, http.StatusOK, &list); err != nil {
			return err
		}
		ready := 0
		for _, c := range list.Data {
			if c.Status == "active" && c.LastSyncAt != nil {
				ready++
			}
		}
		if ready >= n {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("only %d of %d connections finished their first sync within 2m", ready, n)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// queued counts the work still inside the engine: unprocessed inbox items
// and deliveries not yet finished. It tells "slow" from "lost".
func queued(ctx context.Context, dbURL string) (inbox, deliveries int64, err error) {
	db, err := storage.Open(ctx, storage.Options{URL: dbURL, MaxOpenConns: 1})
	if err != nil {
		return 0, 0, err
	}
	defer storage.Close(db)
	if err := db.WithContext(ctx).Model(&models.InboxItem{}).Where("processed_at IS NULL").Count(&inbox).Error; err != nil {
		return 0, 0, fmt.Errorf("count inbox: %w", err)
	}
	if err := db.WithContext(ctx).Model(&models.Delivery{}).Where("status IN ?", []string{"pending", "failed"}).Count(&deliveries).Error; err != nil {
		return 0, 0, fmt.Errorf("count deliveries: %w", err)
	}
	return inbox, deliveries, nil
}

var errCapped = errors.New("drain cap reached")

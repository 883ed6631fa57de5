package chaos

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/tributary/tributary/accounts"
	"github.com/tributary/tributary/models"
	"github.com/tributary/tributary/secrets"
	"github.com/tributary/tributary/storage"
	"github.com/tributary/tributary/storage/storagetest"
)

var build struct {
	once sync.Once
	dir  string
	bin  string
	err  error
}

// Binary builds ./cmd/tributary once per test binary and returns its path;
// CleanupBinary (from TestMain) removes it.
func Binary(t testing.TB) string {
	t.Helper()
	build.once.Do(func() {
		build.dir, build.err = os.MkdirTemp("", "tributary-chaos-")
		if build.err != nil {
			return
		}
		build.bin = filepath.Join(build.dir, "tributary")
		out, err := exec.Command("go", "build", "-o", build.bin, "github.com/tributary/tributary/cmd/tributary").CombinedOutput()
		if err != nil {
			build.err = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if build.err != nil {
		t.Fatal(build.err)
	}
	return build.bin
}

// CleanupBinary removes what Binary built.
func CleanupBinary() {
	if build.dir != "" {
		_ = os.RemoveAll(build.dir)
	}
}

// Engine is a `tributary serve` subprocess on a database of its own that a
// test starts, kills with SIGKILL and restarts on the same database and port.
type Engine struct {
	// Client calls the engine at http://127.0.0.1:<port>.
	Client
	// DB is the test's own connection to the engine's database.
	DB *gorm.DB
	// MasterKey is the engine's TRIBUTARY_MASTER_KEY.
	MasterKey string
	// Admin is an admin API key.
	Admin string
	// Opts locates the database.
	Opts storage.Options
	// AppName is the engine's PostgreSQL application_name.
	AppName string

	t        testing.TB
	args     []string
	env      []string
	cmd      *exec.Cmd
	waitDone chan error
	logs     *os.File
	// Starts counts the processes started.
	Starts int
}

// FreePort returns a TCP port free on 127.0.0.1 right now.
func FreePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// NewEngine prepares (and starts) an engine on a fresh database of dialect
// with the sandbox app, private addresses allowed and short ticks; extra
// flags are appended to `serve`.
func NewEngine(t testing.TB, dialect string, extra ...string) *Engine {
	t.Helper()
	return NewEngineEnv(t, dialect, nil, extra...)
}

// NewEngineEnv is NewEngine with extra TRIBUTARY_* environment variables
// (e.g. TRIBUTARY_APPS_HUBSPOT_BASE_URL).
func NewEngineEnv(t testing.TB, dialect string, env []string, extra ...string) *Engine {
	t.Helper()
	bin := Binary(t)
	e := &Engine{t: t, Opts: storagetest.Options(t, dialect), MasterKey: secrets.GenerateKey(), env: env}
	addr := fmt.Sprintf("127.0.0.1:%d", FreePort(t))
	e.URL = "http://" + addr
	e.args = []string{bin, "serve", "--listen-addr", addr, "--log-format", "text", "--log-level", "warn",
		"--scheduler-tick", "100ms", "--dispatcher-tick", "50ms",
		"--dispatcher-max-timeout", "3s", "--dispatcher-default-timeout", "2s",
		"--dispatcher-circuit-cooldown", "1s", "--dispatcher-circuit-threshold", "1000",
		"--api-rate-limit", "10000", "--api-rate-burst", "10000", "--api-shutdown-timeout", "2s"}
	if e.Opts.URL != "" {
		// The engine's connections carry an application_name of their own,
		// so a test can terminate exactly those backends.
		u, err := url.Parse(e.Opts.URL)
		if err != nil {
			t.Fatal(err)
		}
		q := u.Query()
		e.AppName = fmt.Sprintf("tributary-chaos-%d", time.Now().UnixNano())
		q.Set("application_name", e.AppName)
		u.RawQuery = q.Encode()
		e.args = append(e.args, "--database-url", u.String())
	} else {
		e.args = append(e.args, "--data-dir", e.Opts.DataDir)
	}
	e.args = append(e.args, extra...)
	var err error
	e.logs, err = os.Create(filepath.Join(t.TempDir(), "engine.log"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		e.Kill()
		if t.Failed() {
			_, _ = e.logs.Seek(0, io.SeekStart)
			b, _ := io.ReadAll(e.logs)
			var keep []string
			for _, l := range strings.Split(string(b), "\n") {
				if !strings.Contains(l, "http request") && !strings.Contains(l, "request failed") && !strings.Contains(l, "claim failed") {
					keep = append(keep, l)
				}
			}
			t.Logf("engine log (without request lines, last 6 KiB):\n%s", tail([]byte(strings.Join(keep, "\n")), 6144))
		}
		e.logs.Close()
	})
	e.Start()
	e.DB, err = storage.Open(context.Background(), e.Opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = storage.Close(e.DB) })
	e.Admin, err = accounts.New(e.DB).CreateAdminKey(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

// Start runs the process and waits until /healthz answers.
func (e *Engine) Start() {
	e.t.Helper()
	e.cmd = exec.Command(e.args[0], e.args[1:]...)
	e.cmd.Env = append(os.Environ(), "TRIBUTARY_MASTER_KEY="+e.MasterKey, "TRIBUTARY_ALLOW_PRIVATE_ADDRESSES=true",
		"TRIBUTARY_ALLOW_HTTP=true", "TRIBUTARY_SANDBOX=true")
	e.cmd.Env = append(e.cmd.Env, e.env...)
	e.cmd.Stdout, e.cmd.Stderr = e.logs, e.logs
	if err := e.cmd.Start(); err != nil {
		e.t.Fatalf("start engine: %v", err)
	}
	e.Starts++
	done := make(chan error, 1)
	cmd := e.cmd
	go func() { done <- cmd.Wait() }()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-done:
			e.cmd = nil
			e.t.Fatalf("engine exited at start: %v (see engine log)", err)
		default:
		}
		resp, err := http.Get(e.URL + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				e.waitDone = done
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	e.t.Fatalf("engine did not answer /healthz within 30s")
}

// Kill sends SIGKILL and reaps the process (no-op when not running).
func (e *Engine) Kill() {
	if e.cmd == nil {
		return
	}
	_ = e.cmd.Process.Signal(syscall.SIGKILL)
	<-e.waitDone
	e.cmd = nil
}

// ExpireLeases does what the passing of time does for a dead process's
// claims: connections left "syncing" and deliveries leased by it become due
// now (the scheduler's lease is 5 minutes and has no config key; the
// dispatcher's is max_timeout + 30s; the inbound processor's 2 minutes).
// Call it only while no process runs.
func (e *Engine) ExpireLeases() {
	e.t.Helper()
	now := time.Now().UTC()
	if err := e.DB.Exec(`UPDATE connections SET next_sync_at = ? WHERE status = ?`, now, models.ConnectionSyncing).Error; err != nil {
		e.t.Fatalf("expire poll leases: %v", err)
	}
	if err := e.DB.Exec(`UPDATE deliveries SET next_attempt_at = ? WHERE status IN ? AND lease_token <> ''`,
		now, []string{models.DeliveryPending, models.DeliveryFailed}).Error; err != nil {
		e.t.Fatalf("expire delivery leases: %v", err)
	}
	if err := e.DB.Exec(`UPDATE inbox_items SET next_attempt_at = ? WHERE processed_at IS NULL AND lease_token <> ''`, now).Error; err != nil {
		e.t.Fatalf("expire inbox leases: %v", err)
	}
}

// Client calls an engine's HTTP API.
type Client struct {
	// URL is the engine's base URL, e.g. http://127.0.0.1:8080.
	URL string
}

// Do calls the API; a transport error (the engine is down) is returned.
func (e Client) Do(method, path, key string, body any) (int, map[string]any, error) {
	var r io.Reader
	if body != nil {
		raw, err := json.Marshal(body)
		if err != nil {
			return 0, nil, err
		}
		r = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, e.URL+path, r)
	if err != nil {
		return 0, nil, err
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	req.Header.Set("Content-Type", "application/json")
	client := &http.Client{Timeout: 30 * time.Second}
	resp, err := client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if len(raw) > 0 && raw[0] == '{' {
		if err := json.Unmarshal(raw, &out); err != nil {
			return resp.StatusCode, nil, fmt.Errorf("%s %s: %v: %s", method, path, err, raw)
		}
	}
	return resp.StatusCode, out, nil
}

// Must calls the API and fails the test unless it answers want.
func (e *Engine) Must(method, path, key string, body any, want int) map[string]any {
	e.t.Helper()
	st, out, err := e.Do(method, path, key, body)
	if err != nil || st != want {
		e.t.Fatalf("%s %s: status %d (want %d), err %v, body %v", method, path, st, want, err, out)
	}
	return out
}

// Account creates an account and returns its API key.
func (e *Engine) Account(name string) string {
	return e.Must("POST", "/v1/admin/accounts", e.Admin, map[string]any{"name": name}, 201)["apiKey"].(string)
}

// Idle reports whether nothing is left in flight: no unprocessed inbound
// webhook, no delivery pending or failed, no connection syncing.
func (e *Engine) Idle() (bool, error) {
	var inbox, queued, syncing int64
	if err := e.DB.Model(&models.InboxItem{}).Where("processed_at IS NULL").Count(&inbox).Error; err != nil {
		return false, err
	}
	if err := e.DB.Model(&models.Delivery{}).Where("status IN ?", []string{models.DeliveryPending, models.DeliveryFailed}).Count(&queued).Error; err != nil {
		return false, err
	}
	if err := e.DB.Model(&models.Connection{}).Where("status = ?", models.ConnectionSyncing).Count(&syncing).Error; err != nil {
		return false, err
	}
	return inbox == 0 && queued == 0 && syncing == 0, nil
}

// Dead counts dead-lettered deliveries.
func (e *Engine) Dead() int64 {
	var n int64
	_ = e.DB.Model(&models.Delivery{}).Where("status = ?", models.DeliveryDead).Count(&n).Error
	return n
}

// IsTransport reports whether err is the engine being unreachable.
func IsTransport(err error) bool {
	return err != nil && (strings.Contains(err.Error(), "connection refused") || strings.Contains(err.Error(), "EOF") ||
		strings.Contains(err.Error(), "connection reset"))
}

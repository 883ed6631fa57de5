package main

import (
	"bufio"
	"context"
	"crypto/hmac"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/tributary/tributary/forwarding/signing"
)

// arrival is one delivery as the receiver saw it: the forwarded event's id,
// its dataPayload.remoteId (the order the sender created) and the wall-clock
// arrival time (same machine as the senders, so comparable with send times).
type arrival struct {
	eventID, remoteID string
	at                time.Time
	bad               bool // the signature did not verify (answered 400)
}

// runReceiver is `tributary-bench receiver --out FILE`: a subscriber in its
// own OS process. It verifies each delivery as an ISV's receiver would
// (--hmac-secret: X-Webhook-Signature; --jwks: the rsa scheme against the
// account's key set, fetched again when a key id is new), answers 204 (400
// when the signature fails), records each arrival, prints "listening
// http://ADDR" on stdout, serves GET /count, and on SIGTERM writes the
// arrivals to FILE as TSV (event id, remote id, Unix nanoseconds, ok|bad)
// and exits.
func runReceiver(args []string) error {
	fs := flag.NewFlagSet("receiver", flag.ContinueOnError)
	out := fs.String("out", "", "file the arrivals are written to on SIGTERM")
	listen := fs.String("listen", "127.0.0.1:0", "address to listen on")
	hmacSecret := fs.String("hmac-secret", "", "verify X-Webhook-Signature with this secret")
	jwksURL := fs.String("jwks", "", "verify the rsa scheme with the key set at this URL")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *out == "" {
		return errors.New("receiver: --out is required")
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("receiver: %w", err)
	}
	var (
		mu   sync.Mutex
		seen []arrival
	)
	v := &verifier{secret: *hmacSecret, jwksURL: *jwksURL}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /count", func(w http.ResponseWriter, _ *http.Request) {
		mu.Lock()
		n := len(seen)
		mu.Unlock()
		fmt.Fprint(w, n)
	})
	mux.HandleFunc("POST /", func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		at := time.Now()
		if err != nil {
			http.Error(w, "read", http.StatusBadRequest)
			return
		}
		var ev struct {
			ID          string `json:"id"`
			DataPayload struct {
				RemoteID string `json:"remoteId"`
			} `json:"dataPayload"`
		}
		if err := json.Unmarshal(body, &ev); err != nil || ev.ID == "" {
			http.Error(w, "not an event", http.StatusBadRequest)
			return
		}
		ok := v.verify(r.Header, body) == nil
		mu.Lock()
		seen = append(seen, arrival{ev.ID, ev.DataPayload.RemoteID, at, !ok})
		mu.Unlock()
		if !ok {
			http.Error(w, "bad signature", http.StatusBadRequest)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	fmt.Printf("listening http://%s\n", ln.Addr())
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, os.Interrupt)
	<-sig
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(ctx)
	mu.Lock()
	defer mu.Unlock()
	f, err := os.Create(*out)
	if err != nil {
		return fmt.Errorf("receiver: %w", err)
	}
	bw := bufio.NewWriter(f)
	for _, a := range seen {
		fmt.Fprintf(bw, "%s\t%s\t%d\t%s\n", a.eventID, a.remoteID, a.at.UnixNano(), map[bool]string{false: "ok", true: "bad"}[a.bad])
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("receiver: %w", err)
	}
	return f.Close()
}

// receiverProc is a running receiver process.
type receiverProc struct {
	cmd *exec.Cmd
	url string
	out string
}

// startReceiver re-executes this binary as `receiver`, writing to out;
// verify are its verification flags.
func startReceiver(out string, verify ...string) (*receiverProc, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(self, append([]string{"receiver", "--out", out}, verify...)...)
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start receiver: %w", err)
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "listening ") {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return nil, fmt.Errorf("receiver did not start: %q %v", line, err)
	}
	return &receiverProc{cmd: cmd, url: strings.TrimSpace(strings.TrimPrefix(line, "listening ")), out: out}, nil
}

// count asks the receiver how many deliveries it has recorded.
func (r *receiverProc) count(hc *http.Client) (int, error) {
	resp, err := hc.Get(r.url + "/count")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return strconv.Atoi(strings.TrimSpace(string(raw)))
}

// stop ends the receiver and reads back what it recorded.
func (r *receiverProc) stop() ([]arrival, error) {
	_ = r.cmd.Process.Signal(syscall.SIGTERM)
	if err := r.cmd.Wait(); err != nil {
		return nil, fmt.Errorf("receiver: %w", err)
	}
	f, err := os.Open(r.out)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []arrival
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		p := strings.Split(sc.Text(), "\t")
		if len(p) != 4 {
			return nil, fmt.Errorf("receiver output: bad line %q", sc.Text())
		}
		ns, err := strconv.ParseInt(p[2], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("receiver output: %w", err)
		}
		out = append(out, arrival{p[0], p[1], time.Unix(0, ns), p[3] == "bad"})
	}
	return out, sc.Err()
}

// verifier checks delivery signatures: the hmac scheme with a known secret,
// or the rsa scheme with the account's JWKS (cached, fetched again for an
// unknown key id). With neither configured everything passes.
type verifier struct {
	secret, jwksURL string
	mu              sync.Mutex
	jwks            signing.JWKS
}

func (v *verifier) verify(h http.Header, body []byte) error {
	switch {
	case v.secret != "":
		if !hmac.Equal([]byte(h.Get(signing.HeaderHMACSignature)), []byte(signing.SignHMAC(v.secret, body))) {
			return signing.ErrInvalidSignature
		}
		return nil
	case v.jwksURL != "":
		v.mu.Lock()
		jwks := v.jwks
		if _, err := jwks.Key(h.Get(signing.HeaderKeyID)); err != nil {
			if fresh, err := fetchJWKS(v.jwksURL); err == nil {
				v.jwks, jwks = fresh, fresh
			}
		}
		v.mu.Unlock()
		return signing.VerifyRSA(jwks, h, body, 5*time.Minute, time.Now())
	}
	return nil
}

func fetchJWKS(u string) (signing.JWKS, error) {
	resp, err := http.Get(u)
	if err != nil {
		return signing.JWKS{}, err
	}
	defer resp.Body.Close()
	var out signing.JWKS
	if resp.StatusCode != http.StatusOK {
		return out, fmt.Errorf("jwks: %s", resp.Status)
	}
	return out, json.NewDecoder(resp.Body).Decode(&out)
}

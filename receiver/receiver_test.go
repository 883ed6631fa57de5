package receiver_test

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"github.com/tributary/tributary/accounts"
	"github.com/tributary/tributary/forwarding"
	"github.com/tributary/tributary/forwarding/signing"
	"github.com/tributary/tributary/receiver"
	"github.com/tributary/tributary/secrets"
	"github.com/tributary/tributary/storage/storagetest"
)

// delivery is one request the engine sent.
type delivery struct {
	header http.Header
	body   []byte
}

// capture is an ISV endpoint that keeps each delivery by webhook address path.
type capture struct {
	*httptest.Server
	mu  sync.Mutex
	got map[string]delivery
}

func newCapture(t *testing.T) *capture {
	c := &capture{got: map[string]delivery{}}
	c.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		c.mu.Lock()
		c.got[r.URL.Path] = delivery{header: r.Header.Clone(), body: b}
		c.mu.Unlock()
	}))
	t.Cleanup(c.Close)
	return c
}

// kit is the material one verification gets.
type kit struct {
	scheme    string
	d         delivery
	jwks      []byte // rsa
	secret    string // standard, hmac
	accountID string
}

// deliveries makes the engine's forwarding service sign and send real test
// events: rsa, standard and hmac for account A, rsa for account B.
func deliveries(t *testing.T, db *gorm.DB) (accA string, got map[string]delivery, jwksA, jwksAll []byte, stdSecret, hmacSecret string) {
	ctx := context.Background()
	accts := accounts.New(db)
	a, _, err := accts.Create(ctx, "A")
	require.NoError(t, err)
	b, _, err := accts.Create(ctx, "B")
	require.NoError(t, err)
	box, err := secrets.New(make([]byte, secrets.KeySize))
	require.NoError(t, err)
	fwd := forwarding.New(forwarding.Config{DB: db, Box: box, AllowHTTP: true, AllowPrivate: true})
	rc := newCapture(t)
	stdSecret, hmacSecret = "whsec_"+"MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "a plain shared secret"
	for _, s := range []struct{ acc, path, scheme, secret string }{
		{a.ID, "/rsa", "rsa", ""}, {a.ID, "/standard", "standard", stdSecret}, {a.ID, "/hmac", "hmac", hmacSecret}, {b.ID, "/rsa-b", "rsa", ""},
	} {
		addr, topics := rc.URL+s.path, []string{"crm/*"}
		sub, err := fwd.CreateSubscription(ctx, s.acc, forwarding.SubscriptionInput{Address: &addr, Topic: &topics,
			Signing: &forwarding.SigningInput{Scheme: s.scheme, Secret: s.secret}})
		require.NoError(t, err)
		att, _, err := fwd.SendTest(ctx, s.acc, sub.ID, "crm/contacts")
		require.NoError(t, err)
		require.Equal(t, 200, att.StatusCode, att.Error)
	}
	setA, err := fwd.AccountJWKS(ctx, a.ID)
	require.NoError(t, err)
	setB, err := fwd.AccountJWKS(ctx, b.ID)
	require.NoError(t, err)
	jwksA, err = json.Marshal(setA)
	require.NoError(t, err)
	// The compatibility document that cannot tell accounts apart: only the
	// body's accountId check rejects B's delivery there.
	jwksAll, err = json.Marshal(signing.JWKS{Keys: append(setA.Keys, setB.Keys...)})
	require.NoError(t, err)
	return a.ID, rc.got, jwksA, jwksAll, stdSecret, hmacSecret
}

func tamper(d delivery) delivery {
	b := bytes.Replace(d.body, []byte(`"crm/contacts"`), []byte(`"crm/leads"`), 1)
	return delivery{header: d.header, body: b}
}

// verifier runs one language's check on every case and reports which it
// accepted.
type verifier struct {
	name string
	run  func(t *testing.T, ks []kit) []bool
}

func goVerifier(t *testing.T, ks []kit) []bool {
	out := make([]bool, len(ks))
	for i, k := range ks {
		var err error
		switch k.scheme {
		case "rsa":
			keys, perr := receiver.ParseJWKS(k.jwks)
			require.NoError(t, perr)
			err = receiver.VerifyRSA(keys, k.accountID, k.d.header, k.d.body, receiver.Options{})
		case "standard":
			err = receiver.VerifyStandard(k.secret, k.d.header, k.d.body, receiver.Options{})
		case "hmac":
			err = receiver.VerifyHMAC(k.secret, k.d.header, k.d.body)
		}
		out[i] = err == nil
	}
	return out
}

// scriptVerifier runs docs/receiving/<file> with <runtime> once over all
// cases; a missing runtime skips outside CI and fails in CI (CI=1).
func scriptVerifier(runtime string, probe []string, file string) func(t *testing.T, ks []kit) []bool {
	return func(t *testing.T, ks []kit) []bool {
		if err := exec.Command(runtime, probe...).Run(); err != nil {
			if os.Getenv("CI") != "" {
				t.Fatalf("%s is required in CI (.ci/run installs it): %v", runtime, err)
			}
			t.Skipf("%s not available (%v); CI requires it", runtime, err)
		}
		type jsonCase struct {
			Scheme    string            `json:"scheme"`
			Headers   map[string]string `json:"headers"`
			Body      []byte            `json:"body"`
			Key       any               `json:"key"`
			AccountID string            `json:"accountId"`
		}
		var cases []jsonCase
		for _, k := range ks {
			c := jsonCase{Scheme: k.scheme, Headers: map[string]string{}, Body: k.d.body, Key: k.secret, AccountID: k.accountID}
			for name := range k.d.header {
				c.Headers[name] = k.d.header.Get(name)
			}
			if k.scheme == "rsa" {
				c.Key = json.RawMessage(k.jwks)
			}
			cases = append(cases, c)
		}
		raw, err := json.Marshal(cases)
		require.NoError(t, err)
		path := filepath.Join(t.TempDir(), "cases.json")
		require.NoError(t, os.WriteFile(path, raw, 0o600))
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		out, err := exec.CommandContext(ctx, runtime, "../docs/receiving/"+file, path).CombinedOutput()
		require.NoError(t, err, "%s %s: %s", runtime, file, out)
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		require.Len(t, lines, len(ks), "%s", out)
		res := make([]bool, len(ks))
		for i, l := range lines {
			t.Logf("%s: %s", runtime, l)
			res[i] = l == "verified"
		}
		return res
	}
}

// TestReceiverKits runs the Go package and the Node and Python snippets of
// docs/receiving.md against real deliveries of every scheme: each accepts
// the genuine ones and rejects a tampered body, a wrong secret, a key of
// another account and a delivery signed for another account.
func TestReceiverKits(t *testing.T) {
	t.Parallel()
	verifiers := []verifier{
		{"go", goVerifier},
		{"node", scriptVerifier("node", []string{"-e", "require('node:crypto')"}, "verify.js")},
		{"python", scriptVerifier(cmp.Or(os.Getenv("TRIBUTARY_PYTHON"), "python3"), []string{"-c", "import cryptography"}, "verify.py")},
	}
	storagetest.Each(t, func(t *testing.T, db *gorm.DB) {
		accA, got, jwksA, jwksAll, std, hm := deliveries(t, db)
		cases := []struct {
			name string
			k    kit
			ok   bool
		}{
			{"rsa", kit{"rsa", got["/rsa"], jwksA, "", accA}, true},
			{"rsa tampered body", kit{"rsa", tamper(got["/rsa"]), jwksA, "", accA}, false},
			{"rsa other account's key", kit{"rsa", got["/rsa-b"], jwksA, "", accA}, false},
			{"rsa other account on a shared key set", kit{"rsa", got["/rsa-b"], jwksAll, "", accA}, false},
			{"rsa on a shared key set", kit{"rsa", got["/rsa"], jwksAll, "", accA}, true},
			{"standard", kit{"standard", got["/standard"], nil, std, accA}, true},
			{"standard wrong secret", kit{"standard", got["/standard"], nil, "whsec_" + "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", accA}, false},
			{"standard tampered body", kit{"standard", tamper(got["/standard"]), nil, std, accA}, false},
			{"hmac", kit{"hmac", got["/hmac"], nil, hm, accA}, true},
			{"hmac tampered body", kit{"hmac", tamper(got["/hmac"]), nil, hm, accA}, false},
			{"hmac wrong secret", kit{"hmac", got["/hmac"], nil, "another secret", accA}, false},
		}
		ks := make([]kit, len(cases))
		for i, c := range cases {
			require.NotEmpty(t, c.k.d.body, "%s: no delivery captured", c.name)
			ks[i] = c.k
		}
		for _, v := range verifiers {
			t.Run(v.name, func(t *testing.T) {
				t.Parallel()
				got := v.run(t, ks)
				for i, c := range cases {
					require.Equal(t, c.ok, got[i], "%s: %s", v.name, c.name)
				}
			})
		}
	})
}

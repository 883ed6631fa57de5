package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"

	hubspotfake "github.com/tributary/tributary/connectors/hubspot/fake"
	"github.com/tributary/tributary/connectors/salesforce"
	salesforcefake "github.com/tributary/tributary/connectors/salesforce/fake"
	"github.com/tributary/tributary/connectors/shopify"
	shopifyfake "github.com/tributary/tributary/connectors/shopify/fake"
)

// sandboxOptions are the flags of `tributary sandbox`.
type sandboxOptions struct {
	provider, listen string
	// engineURL is the engine's public_url: the OAuth2 callback and the
	// native webhooks go there.
	engineURL string
	// webhookURL overrides where the fake POSTs native webhooks.
	webhookURL string
	noWebhooks bool
	// clientID and clientSecret override the fake app's credentials.
	clientID, clientSecret string
}

func newSandbox() *cobra.Command {
	var o sandboxOptions
	cmd := &cobra.Command{
		Use:   "sandbox --provider hubspot|shopify|salesforce --listen ADDR",
		Short: "Run a provider fake (same wire format as the real API) with seeded data, ready to connect to an engine",
		Long: `Run a fake of a provider's API, seeded with demo records, and print the
configuration that points a running engine at it, the commands that connect
an end user through the OAuth2 connect flow, and the provider API calls that
change records. HubSpot and Shopify send signed native webhooks to the engine
(--webhook-url, --no-webhooks); Salesforce changes are found by polling.`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runSandbox(cmd.Context(), cmd.OutOrStdout(), o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.provider, "provider", "", "hubspot, shopify or salesforce")
	f.StringVar(&o.listen, "listen", "127.0.0.1:9101", "address to listen on")
	f.StringVar(&o.engineURL, "engine-url", "http://127.0.0.1:8080", "the engine's public_url (OAuth2 callback and inbound webhooks)")
	f.StringVar(&o.webhookURL, "webhook-url", "", "where to POST signed native webhooks (default <engine-url>/inbound/<provider>; Shopify: also subscribes the seeded shop to it)")
	f.BoolVar(&o.noWebhooks, "no-webhooks", false, "send no native webhooks: the engine finds changes by polling only")
	f.StringVar(&o.clientID, "client-id", "", "the fake app's OAuth2 client id (default: the fake's)")
	f.StringVar(&o.clientSecret, "client-secret", "", "the fake app's OAuth2 client secret, which also signs webhooks (default: the fake's)")
	return cmd
}

// fakeGuide is what a person needs to use one running fake: the engine's
// settings and example provider API calls.
type fakeGuide struct {
	app     string
	handler http.Handler
	// env are the engine's TRIBUTARY_* settings, in print order.
	env [][2]string
	// params is the connect session's "params" object, if the app needs one.
	params string
	// notes are printed under the settings.
	notes []string
	// auth is the header authenticating provider API calls ("Name: value").
	auth string
	// create, update and remove are curl commands without the auth header.
	create, update, remove string
	// polledOnly: changes reach the engine only when it polls.
	polledOnly bool
}

// runSandbox serves one seeded fake until ctx ends, after printing how to
// point an engine at it.
func runSandbox(ctx context.Context, out io.Writer, o sandboxOptions) error {
	if o.provider != "hubspot" && o.provider != "shopify" && o.provider != "salesforce" {
		return fmt.Errorf("provider: unknown %q (want hubspot, shopify or salesforce)", o.provider)
	}
	if o.provider == "salesforce" && o.webhookURL != "" {
		return errors.New("webhook-url: Salesforce has no native webhooks in Tributary; its changes are found by polling")
	}
	engine := strings.TrimRight(o.engineURL, "/")
	eu, err := url.Parse(engine)
	if err != nil || (eu.Scheme != "http" && eu.Scheme != "https") || eu.Host == "" {
		return fmt.Errorf("engine-url: %q is not an absolute http(s) URL", o.engineURL)
	}
	ln, err := net.Listen("tcp", o.listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	defer ln.Close()
	base := "http://" + reachable(ln.Addr())
	var g *fakeGuide
	switch o.provider {
	case "hubspot":
		g = hubspotGuide(base, engine, o)
	case "shopify":
		g, err = shopifyGuide(base, engine, o)
	case "salesforce":
		g, err = salesforceGuide(base, o)
	}
	if err != nil {
		return err
	}
	printGuide(out, base, engine, g)
	srv := &http.Server{Handler: g.handler, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// reachable is addr with an unspecified IP (0.0.0.0, ::) replaced by
// loopback, so printed URLs work from this machine.
func reachable(addr net.Addr) string {
	a, ok := addr.(*net.TCPAddr)
	if !ok || !a.IP.IsUnspecified() {
		return addr.String()
	}
	return net.JoinHostPort("127.0.0.1", fmt.Sprint(a.Port))
}

func appEnv(app, field, v string) [2]string {
	return [2]string{"TRIBUTARY_APPS_" + strings.ToUpper(app) + "_" + field, v}
}

func hubspotGuide(base, engine string, o sandboxOptions) *fakeGuide {
	id := cmp.Or(o.clientID, hubspotfake.DefaultClientID)
	secret := cmp.Or(o.clientSecret, hubspotfake.DefaultClientSecret)
	clk := newSeedClock()
	s := hubspotfake.New(hubspotfake.WithClock(clk.Now), hubspotfake.WithClient(id, secret))
	s.Seed()
	clk.seeded()
	g := &fakeGuide{app: "hubspot", handler: s,
		env: [][2]string{
			appEnv("hubspot", "CLIENT_ID", id), appEnv("hubspot", "CLIENT_SECRET", secret),
			appEnv("hubspot", "WEBHOOK_SECRET", secret),
			appEnv("hubspot", "BASE_URL", base), appEnv("hubspot", "AUTH_URL", base+"/oauth/authorize"),
			appEnv("hubspot", "TOKEN_URL", base+"/oauth/2026-03/token"),
		},
		auth:   "Authorization: Bearer " + hubspotfake.SandboxAccessToken,
		create: "curl -s -X POST " + base + "/crm/v3/objects/contacts -H 'Content-Type: application/json' -d '{\"properties\": {\"firstname\": \"Ada\", \"lastname\": \"Lovelace\", \"email\": \"ada@example.com\"}}'",
		update: "curl -s -X PATCH " + base + "/crm/v3/objects/contacts/<id> -H 'Content-Type: application/json' -d '{\"properties\": {\"email\": \"ada@lovelace.dev\"}}'",
		remove: "curl -s -X DELETE " + base + "/crm/v3/objects/contacts/<id>",
	}
	g.notes = append(g.notes, fmt.Sprintf("The authorize endpoint auto-approves and connects portal %d, the seeded one that %s reaches.",
		hubspotfake.SandboxPortalID, hubspotfake.SandboxAccessToken))
	if o.noWebhooks {
		g.notes = append(g.notes, "No native webhooks (--no-webhooks): changes reach the engine when it polls.")
		g.polledOnly = true
		return g
	}
	// After Seed: seeding is not news.
	hook := cmp.Or(o.webhookURL, engine+"/inbound/hubspot")
	s.SetWebhookTarget(hook)
	g.notes = append(g.notes, "Every change is POSTed as HubSpot does (a JSON array of thin notices, X-HubSpot-Signature-v3 with the client secret) to "+hook+
		". The signature covers that URL: it must be the engine's public_url + /inbound/hubspot.")
	return g
}

func shopifyGuide(base, engine string, o sandboxOptions) (*fakeGuide, error) {
	id := cmp.Or(o.clientID, shopifyfake.DefaultClientID)
	secret := cmp.Or(o.clientSecret, shopifyfake.DefaultClientSecret)
	clk := newSeedClock()
	opts := []shopifyfake.Option{shopifyfake.WithClientCredentials(id, secret), shopifyfake.WithClock(clk.Now)}
	if o.noWebhooks {
		opts = append(opts, shopifyfake.WithoutDelivery())
	}
	s := shopifyfake.New(opts...)
	s.AddToken(shopifyfake.SandboxShop, shopifyfake.SandboxToken)
	s.Seed(shopifyfake.SandboxShop)
	clk.seeded()
	admin := base + "/admin/api/" + shopify.DefaultAPIVersion
	g := &fakeGuide{app: "shopify", handler: s,
		env: [][2]string{
			appEnv("shopify", "CLIENT_ID", id), appEnv("shopify", "CLIENT_SECRET", secret),
			appEnv("shopify", "WEBHOOK_SECRET", secret),
			appEnv("shopify", "BASE_URL", base), appEnv("shopify", "AUTH_URL", base+"/admin/oauth/authorize"),
			appEnv("shopify", "TOKEN_URL", base+"/admin/oauth/access_token"),
		},
		params: `{"shop": "` + shopifyfake.SandboxShop + `"}`,
		auth:   "X-Shopify-Access-Token: " + shopifyfake.SandboxToken,
		create: "curl -s -X POST " + admin + "/customers.json -H 'Content-Type: application/json' -d '{\"customer\": {\"first_name\": \"Ada\", \"last_name\": \"Lovelace\", \"email\": \"ada@example.com\"}}'",
		update: "curl -s -X PUT " + admin + "/customers/<id>.json -H 'Content-Type: application/json' -d '{\"customer\": {\"email\": \"ada@lovelace.dev\"}}'",
		remove: "curl -s -X DELETE " + admin + "/customers/<id>.json",
	}
	g.notes = append(g.notes, "The seeded shop is "+shopifyfake.SandboxShop+" (pass it as the connect session's params.shop); the authorize endpoint auto-approves any <name>.myshopify.com.")
	switch {
	case o.noWebhooks:
		g.notes = append(g.notes, "No native webhooks (--no-webhooks): subscriptions are stored but nothing is POSTed; changes reach the engine when it polls.")
		g.polledOnly = true
	default:
		g.notes = append(g.notes, "On connect the engine subscribes "+engine+"/inbound/shopify (POST webhooks.json); every change is then POSTed there with X-Shopify-Hmac-Sha256 (the client secret), X-Shopify-Topic, X-Shopify-Shop-Domain and X-Shopify-Event-Id.")
		if o.webhookURL != "" {
			for _, topic := range shopify.WebhookTopics {
				if _, err := s.AddWebhook(shopifyfake.SandboxShop, topic, o.webhookURL); err != nil {
					return nil, fmt.Errorf("webhook-url: %w", err)
				}
			}
			g.notes = append(g.notes, "The seeded shop is also subscribed to "+o.webhookURL+" for "+strings.Join(shopify.WebhookTopics, ", ")+".")
		}
	}
	return g, nil
}

func salesforceGuide(base string, o sandboxOptions) (*fakeGuide, error) {
	id := cmp.Or(o.clientID, salesforcefake.SandboxClientID)
	secret := cmp.Or(o.clientSecret, salesforcefake.SandboxClientSecret)
	clk := newSeedClock()
	f := salesforcefake.New(salesforcefake.WithBaseURL(base), salesforcefake.WithClient(id, secret), salesforcefake.WithClock(clk.Now))
	org := f.DefaultOrg()
	if err := f.Seed(org); err != nil {
		return nil, fmt.Errorf("seed salesforce fake: %w", err)
	}
	clk.seeded()
	access, _, err := f.Tokens(org)
	if err != nil {
		return nil, err
	}
	sobjects := base + "/services/data/" + salesforce.APIVersion + "/sobjects"
	return &fakeGuide{app: "salesforce", handler: f, polledOnly: true,
		env: [][2]string{
			appEnv("salesforce", "CLIENT_ID", id), appEnv("salesforce", "CLIENT_SECRET", secret),
			appEnv("salesforce", "AUTH_URL", base+"/services/oauth2/authorize"),
			appEnv("salesforce", "TOKEN_URL", base+"/services/oauth2/token"),
		},
		notes: []string{
			"No base_url: as with a real org, API calls go to the instance_url of the token response (" + base + ").",
			"The authorize endpoint auto-approves and connects org " + org + " (seeded). Salesforce has no native webhooks: changes are found by polling.",
			"The access token below is valid for 2 hours (restart the fake for a new one).",
		},
		auth:   "Authorization: Bearer " + access,
		create: "curl -s -X POST " + sobjects + "/Contact -H 'Content-Type: application/json' -d '{\"FirstName\": \"Ada\", \"LastName\": \"Lovelace\", \"Email\": \"ada@example.com\"}'",
		update: "curl -s -X PATCH " + sobjects + "/Contact/<id> -H 'Content-Type: application/json' -d '{\"Email\": \"ada@lovelace.dev\"}'",
		remove: "curl -s -X DELETE " + sobjects + "/Contact/<id>",
	}, nil
}

// printGuide prints the engine's settings, the connect commands and the
// record-changing calls for g.
func printGuide(out io.Writer, base, engine string, g *fakeGuide) {
	p := func(format string, args ...any) { fmt.Fprintf(out, format+"\n", args...) }
	p("%s fake listening on %s (seeded)", g.app, base)
	p("")
	p("1. Start the engine with these settings (or put them under apps.%s in the config file):", g.app)
	for _, kv := range g.env {
		p("   export %s=%s", kv[0], kv[1])
	}
	p("   export TRIBUTARY_PUBLIC_URL=%s", engine)
	if u, err := url.Parse(engine); err == nil && u.Scheme == "http" && u.Port() != "" &&
		(u.Hostname() == "127.0.0.1" || u.Hostname() == "localhost") {
		p("   export TRIBUTARY_LISTEN_ADDR=127.0.0.1:%s", u.Port())
	}
	p("   tributary serve")
	for _, n := range g.notes {
		p("   # %s", n)
	}
	p("")
	params := ""
	if g.params != "" {
		params = `, "params": ` + g.params
	}
	p("2. Connect an end user (KEY is an ISV API key) through the connect link, keeping its cookie (a browser works too):")
	p(`   URL=$(curl -s -X POST %s/v1/connect-sessions -H "Authorization: Bearer $KEY" \`, engine)
	p(`     -d '{"app": "%s", "userId": "u1", "userName": "Demo user", "redirectUrl": "http://localhost/connected"%s}' | jq -r .connectUrl)`, g.app, params)
	p(`   AUTH=$(curl -s -c jar.txt -o /dev/null -w '%%{redirect_url}' "$URL")   # binds the flow to this cookie jar → the provider`)
	p(`   CALLBACK=$(curl -s -o /dev/null -w '%%{redirect_url}' "$AUTH")     # the fake approves → %s/oauth/callback?code=…`, engine)
	p(`   CON=$(curl -s -b jar.txt -o /dev/null -w '%%{redirect_url}' "$CALLBACK" | sed 's/.*connectionId=//'); echo $CON   # the engine → http://localhost/connected?connectionId=con_…`)
	p("   # the first sync is silent: it records what exists without emitting events")
	p("")
	p("3. Change records through the provider's own API:")
	p("   H='%s'", g.auth)
	for _, c := range []string{g.create, g.update, g.remove} {
		cmd, rest, _ := strings.Cut(c, " -H ")
		if rest == "" {
			p(`   %s -H "$H"`, c)
			continue
		}
		p(`   %s -H "$H" -H %s`, cmd, rest)
	}
	if g.polledOnly {
		p(`   curl -s -X POST %s/v1/connections/$CON/sync -H "Authorization: Bearer $KEY"   # poll now`, engine)
	}
}

// seedClock is a provider fake's clock that reads a day early while the fake
// is seeded and the real time afterwards: the demo records predate any
// connection, as a real account's do, so a first sync's baseline keeps them
// silent.
type seedClock struct{ offset atomic.Int64 }

func newSeedClock() *seedClock {
	c := &seedClock{}
	c.offset.Store(int64(-24 * time.Hour))
	return c
}

// Now is the fake's clock.
func (c *seedClock) Now() time.Time { return time.Now().Add(time.Duration(c.offset.Load())) }

// seeded switches to the real time.
func (c *seedClock) seeded() { c.offset.Store(0) }

package salesforce_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"

	"github.com/tributary/tributary/connectors"
	"github.com/tributary/tributary/connectors/conformance"
	"github.com/tributary/tributary/connectors/salesforce"
	"github.com/tributary/tributary/connectors/salesforce/fake"
	"github.com/tributary/tributary/models"
	"github.com/tributary/tributary/sync/synctest"
)

// testClock is a manual clock shared by the fake and the connector.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *testClock {
	return &testClock{t: time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)}
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// bundle is the test setup: a fake behind a real socket and a connector
// pointed at it.
type bundle struct {
	clock *testClock
	fake  *fake.Fake
	srv   *httptest.Server
	conn  *salesforce.Connector
}

const (
	testClientID     = "3MVG9test"
	testClientSecret = "s3cr3t"
)

func setup(t *testing.T, opts ...fake.Option) *bundle {
	t.Helper()
	clk := newClock()
	f := fake.New(append([]fake.Option{fake.WithClock(clk.Now), fake.WithClient(testClientID, testClientSecret)}, opts...)...)
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	c := salesforce.New(connectors.AppConfig{
		ClientID: testClientID, ClientSecret: testClientSecret, BaseURL: srv.URL,
		AuthURL: srv.URL + "/services/oauth2/authorize", TokenURL: srv.URL + "/services/oauth2/token",
	}, salesforce.WithClock(clk.Now))
	return &bundle{clock: clk, fake: f, srv: srv, conn: c}
}

// newConn makes a fresh org and a connection to it whose Refresh uses the
// fake's token endpoint, as sync does.
func (b *bundle) newConn(t *testing.T) *connectors.Conn {
	t.Helper()
	org := b.fake.NewTenant()
	access, refresh, err := b.fake.Tokens(org)
	require.NoError(t, err)
	rt := conformance.NewBearer(access)
	cfg := b.conn.OAuthConfig("http://localhost/oauth/callback", nil)
	return &connectors.Conn{
		ID:          "con_" + org,
		ExternalID:  org,
		Credentials: map[string]string{"refresh_token": refresh},
		Metadata:    map[string]string{"instance_url": b.srv.URL},
		HTTP:        &http.Client{Transport: rt},
		Refresh: func(ctx context.Context) error {
			tok, err := cfg.TokenSource(ctx, &oauth2.Token{RefreshToken: refresh}).Token()
			if err != nil {
				return err
			}
			rt.Set(tok.AccessToken)
			return nil
		},
	}
}

// sobjectOf maps unified objects to the fake's sObjects.
var sobjectOf = map[string]string{
	models.ObjectAccounts: "Account", models.ObjectContacts: "Contact", models.ObjectLeads: "Lead",
	models.ObjectOpportunities: "Opportunity", models.ObjectStages: "OpportunityStage", models.ObjectTasks: "Task",
	models.ObjectNotes: "Note", models.ObjectUsers: "User",
}

// sample returns creation values and an update that changes a unified field.
func sample(object string, n int) (create, update map[string]any) {
	switch object {
	case models.ObjectAccounts:
		return map[string]any{"Name": "Acme", "Website": "https://www.acme.example", "NumberOfEmployees": 10 + n},
			map[string]any{"Name": "Acme Corp"}
	case models.ObjectContacts:
		return map[string]any{"FirstName": "Grace", "LastName": "Hopper", "Email": "grace@example.com"},
			map[string]any{"Email": "grace.hopper@example.com"}
	case models.ObjectLeads:
		return map[string]any{"LastName": "Beifong", "Company": "Metal Works", "Status": "Open - Not Contacted"},
			map[string]any{"Status": "Working - Contacted"}
	case models.ObjectOpportunities:
		return map[string]any{"Name": "Deal", "StageName": "Prospecting", "Amount": 1000.5, "CloseDate": "2026-12-31"},
			map[string]any{"StageName": "Closed Won", "Amount": 1200.0}
	case models.ObjectStages:
		return map[string]any{"MasterLabel": "Discovery", "SortOrder": n, "DefaultProbability": 10.0, "IsActive": true},
			map[string]any{"MasterLabel": "Discovery call", "DefaultProbability": 15.0}
	case models.ObjectTasks:
		return map[string]any{"Subject": "Call", "Status": "Not Started", "ActivityDate": "2026-12-01"},
			map[string]any{"Status": "Completed"}
	case models.ObjectNotes:
		return map[string]any{"Title": "Kick-off", "Body": "hello"}, map[string]any{"Body": "hello again"}
	case models.ObjectUsers:
		return map[string]any{"Username": "u" + time.Now().Format("150405.000000") + "@example.com", "LastName": "User", "Email": "u@example.com", "IsActive": true},
			map[string]any{"IsActive": false}
	}
	panic("no sample for " + object)
}

func (b *bundle) harness(connector connectors.Connector, objects []string) conformance.Harness {
	n := 0
	return conformance.Harness{
		Connector: connector,
		Objects:   objects,
		NewConn:   b.newConn,
		Create: func(t *testing.T, c *connectors.Conn, object string) string {
			n++
			v, _ := sample(object, n)
			id, err := b.fake.Create(c.ExternalID, sobjectOf[object], v)
			require.NoError(t, err)
			return id
		},
		Update: func(t *testing.T, c *connectors.Conn, object, id string) {
			_, v := sample(object, 0)
			require.NoError(t, b.fake.Update(c.ExternalID, sobjectOf[object], id, v))
		},
		Delete: func(t *testing.T, c *connectors.Conn, object, id string) {
			require.NoError(t, b.fake.Delete(c.ExternalID, sobjectOf[object], id))
		},
		Advance: b.clock.Advance,
		Now:     b.clock.Now,
		FailNext: func(t *testing.T, c *connectors.Conn, kind string, n int) {
			b.fake.FailNext(c.ExternalID, kind, n)
		},
		PageSize:      2,
		TokenLifetime: fake.DefaultSessionTTL,
	}
}

// pollOnly hides ListDeleted, so the suite checks deletions of objects
// without getDeleted (OpportunityStage) through a full scan, which is what
// sync does when ListDeleted answers ErrWindowExpired.
type pollOnly struct {
	connectors.ChangeLister
	info connectors.Info
}

func (p pollOnly) Info() connectors.Info { return p.info }

func TestConformance(t *testing.T) {
	t.Run("golden_files", func(t *testing.T) { conformance.RequireGoldenFiles(t, setup(t).conn) })
	b := setup(t, fake.WithPageSize(2))
	var withDeleted []string
	for _, o := range b.conn.Info().Objects {
		if o != models.ObjectStages {
			withDeleted = append(withDeleted, o)
		}
	}
	t.Run("getDeleted", func(t *testing.T) { conformance.Run(t, b.harness(b.conn, withDeleted)) })
	t.Run("fullScanDeletes", func(t *testing.T) {
		conformance.Run(t, b.harness(pollOnly{ChangeLister: b.conn, info: b.conn.Info()}, []string{models.ObjectStages}))
	})
	// Through sync every object at once: the runner falls back to a full
	// scan for OpportunityStage, which has no getDeleted.
	t.Run("sync", func(t *testing.T) { synctest.Run(t, b.harness(b.conn, b.conn.Info().Objects)) })
}

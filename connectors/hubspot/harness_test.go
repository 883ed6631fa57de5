package hubspot_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"

	"github.com/tributary/tributary/connectors"
	"github.com/tributary/tributary/connectors/conformance"
	"github.com/tributary/tributary/connectors/hubspot"
	"github.com/tributary/tributary/connectors/hubspot/fake"
	"github.com/tributary/tributary/models"
)

// bundle is one fake HubSpot behind a real socket and a connector pointed at it.
type bundle struct {
	fake *fake.Server
	srv  *httptest.Server
	conn *hubspot.Connector
	seq  atomic.Int64
}

func setup(t *testing.T, opts ...fake.Option) *bundle {
	t.Helper()
	f := fake.New(opts...)
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	c := hubspot.New(connectors.AppConfig{
		ClientID: f.ClientID(), ClientSecret: f.ClientSecret(),
		BaseURL: srv.URL, AuthURL: srv.URL + "/oauth/authorize", TokenURL: srv.URL + fake.TokenPath,
	}, hubspot.WithClock(f.Now))
	return &bundle{fake: f, srv: srv, conn: c}
}

// newConn makes a fresh portal and a connection to it, identified through
// the access-token info endpoint.
func (b *bundle) newConn(t *testing.T) *connectors.Conn {
	t.Helper()
	portal := b.fake.CreatePortal()
	tok, err := b.fake.IssueToken(portal)
	require.NoError(t, err)
	ext, meta, err := b.conn.Identify(t.Context(), &oauth2.Token{AccessToken: tok.AccessToken}, b.srv.Client())
	require.NoError(t, err)
	require.Equal(t, strconv.FormatInt(portal, 10), ext)
	rt := conformance.NewBearer(tok.AccessToken)
	cfg := b.conn.OAuthConfig(b.srv.URL+"/oauth/callback", nil)
	return &connectors.Conn{
		ID: "con_" + ext, ExternalID: ext, Metadata: meta,
		Credentials: map[string]string{"refresh_token": tok.RefreshToken},
		HTTP:        &http.Client{Transport: rt},
		Refresh: func(ctx context.Context) error {
			ctx = context.WithValue(ctx, oauth2.HTTPClient, b.srv.Client())
			nt, err := cfg.TokenSource(ctx, &oauth2.Token{RefreshToken: tok.RefreshToken, Expiry: time.Unix(1, 0)}).Token()
			if err != nil {
				return err
			}
			rt.Set(nt.AccessToken)
			return nil
		},
	}
}

func portalOf(t *testing.T, c *connectors.Conn) int64 {
	t.Helper()
	id, err := strconv.ParseInt(c.ExternalID, 10, 64)
	require.NoError(t, err)
	return id
}

var hubspotType = map[string]string{
	models.ObjectContacts: "contacts", models.ObjectAccounts: "companies", models.ObjectOpportunities: "deals",
	models.ObjectNotes: "notes", models.ObjectTasks: "tasks",
}

func (b *bundle) create(t *testing.T, c *connectors.Conn, object string) string {
	t.Helper()
	n := b.seq.Add(1)
	p := portalOf(t, c)
	var id string
	var err error
	switch object {
	case models.ObjectUsers:
		id, err = b.fake.CreateOwner(p, fmt.Sprintf("user%d@example.com", n), "User", fmt.Sprint(n))
	case models.ObjectStages:
		id, err = b.fake.CreateStage(p, "default", fmt.Sprintf("Stage %d", n), 0.5, false)
	default:
		props := map[string]map[string]string{
			models.ObjectContacts:      {"firstname": "Ada", "lastname": fmt.Sprint("Lovelace ", n), "email": fmt.Sprintf("ada%d@example.com", n)},
			models.ObjectAccounts:      {"name": fmt.Sprint("Acme ", n), "domain": "acme.example", "numberofemployees": "12"},
			models.ObjectOpportunities: {"dealname": fmt.Sprint("Deal ", n), "amount": "1500.50", "dealstage": "qualifiedtobuy", "pipeline": "default"},
			models.ObjectNotes:         {"hs_note_body": fmt.Sprint("Note ", n)},
			models.ObjectTasks:         {"hs_task_subject": fmt.Sprint("Task ", n), "hs_task_status": "NOT_STARTED"},
		}[object]
		id, err = b.fake.Create(p, hubspotType[object], props)
	}
	require.NoError(t, err)
	return id
}

func (b *bundle) update(t *testing.T, c *connectors.Conn, object, id string) {
	t.Helper()
	n := fmt.Sprint("changed ", b.seq.Add(1))
	p := portalOf(t, c)
	var err error
	switch object {
	case models.ObjectUsers:
		err = b.fake.UpdateOwner(p, id, "", n, "")
	case models.ObjectStages:
		err = b.fake.UpdateStage(p, id, n)
	default:
		prop := map[string]string{
			models.ObjectContacts: "firstname", models.ObjectAccounts: "name", models.ObjectOpportunities: "dealname",
			models.ObjectNotes: "hs_note_body", models.ObjectTasks: "hs_task_subject",
		}[object]
		err = b.fake.Update(p, hubspotType[object], id, map[string]string{prop: n})
	}
	require.NoError(t, err)
}

func (b *bundle) remove(t *testing.T, c *connectors.Conn, object, id string) {
	t.Helper()
	p := portalOf(t, c)
	var err error
	switch object {
	case models.ObjectUsers:
		err = b.fake.DeleteOwner(p, id)
	case models.ObjectStages:
		err = b.fake.DeleteStage(p, id)
	default:
		err = b.fake.Delete(p, hubspotType[object], id)
	}
	require.NoError(t, err)
}

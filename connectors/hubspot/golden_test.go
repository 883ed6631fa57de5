package hubspot_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tributary/tributary/connectors"
	"github.com/tributary/tributary/connectors/hubspot"
	"github.com/tributary/tributary/models"
)

var update = flag.Bool("update", false, "rewrite testdata/records and testdata/golden")

// fakeRecords builds one full record of every object in a fresh fake
// (deterministic ids and clock) and returns the provider JSON of each.
func fakeRecords(t *testing.T) map[string]json.RawMessage {
	b := setup(t)
	c := b.newConn(t)
	p := portalOf(t, c)
	owner, err := b.fake.CreateOwner(p, "gregg@example.com", "Gregg", "Owner")
	require.NoError(t, err)
	company, err := b.fake.Create(p, "companies", map[string]string{"name": "Acme Corp", "domain": "acme.example", "website": "https://acme.example",
		"industry": "MANUFACTURING", "phone": "+1 555 0101", "numberofemployees": "250", "description": "Anvils", "hubspot_owner_id": owner,
		"address": "1 Main St", "city": "Springfield", "state": "IL", "zip": "62701", "country": "USA"})
	require.NoError(t, err)
	contact, err := b.fake.Create(p, "contacts", map[string]string{"firstname": "Maria", "lastname": "Johnson", "email": "maria@acme.example",
		"phone": "+1 555 0102", "jobtitle": "CTO", "associatedcompanyid": company, "hubspot_owner_id": owner, "city": "Springfield", "country": "USA"})
	require.NoError(t, err)
	deal, err := b.fake.Create(p, "deals", map[string]string{"dealname": "Acme renewal", "amount": "12000.50", "deal_currency_code": "USD",
		"dealstage": "closedwon", "pipeline": "default", "hs_deal_stage_probability": "1", "closedate": "2026-03-31T00:00:00.000Z",
		"hs_is_closed": "true", "hs_is_closed_won": "true", "hubspot_owner_id": owner})
	require.NoError(t, err)
	note, err := b.fake.Create(p, "notes", map[string]string{"hs_note_body": "<p>Called Maria.</p>", "hs_timestamp": "2025-11-03T09:00:00.000Z", "hubspot_owner_id": owner})
	require.NoError(t, err)
	task, err := b.fake.Create(p, "tasks", map[string]string{"hs_task_subject": "Send quote", "hs_task_body": "Renewal quote", "hs_task_status": "NOT_STARTED",
		"hs_task_priority": "HIGH", "hs_timestamp": "2025-11-10T17:00:00.000Z", "hubspot_owner_id": owner})
	require.NoError(t, err)
	require.NoError(t, b.fake.Associate(p, "deals", deal, "companies", company, true))
	for _, to := range []struct{ typ, id string }{{"contacts", contact}, {"companies", company}, {"deals", deal}} {
		require.NoError(t, b.fake.Associate(p, "notes", note, to.typ, to.id, false))
		require.NoError(t, b.fake.Associate(p, "tasks", task, to.typ, to.id, false))
	}

	out := map[string]json.RawMessage{}
	for _, obj := range hubspot.Objects() {
		req := connectors.ListRequest{Object: obj, FullScan: true}
		require.NoError(t, b.conn.ListChanges(t.Context(), c, req, func(pg connectors.Page) error {
			for _, r := range pg.Records {
				if obj != models.ObjectStages || r.RemoteID == "closedwon" {
					out[obj] = r.Raw
				}
			}
			return nil
		}))
		require.Contains(t, out, obj)
	}
	return out
}

func fixtureRecord(t *testing.T, file string, path ...string) json.RawMessage {
	data, err := os.ReadFile(filepath.Join("testdata", file))
	require.NoError(t, err)
	var doc map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(data, &doc))
	var wrap struct {
		Results []json.RawMessage `json:"results"`
	}
	require.NoError(t, json.Unmarshal(doc[path[0]], &wrap))
	return wrap.Results[0]
}

func TestGolden(t *testing.T) {
	type input struct {
		name, object string
		raw          json.RawMessage
	}
	inputs := []input{
		{"contacts_archived_fixture", models.ObjectContacts, fixtureRecord(t, "crm_v3_contacts_list_archived.json", "response_example_archived")},
		{"contacts_search_fixture", models.ObjectContacts, fixtureRecord(t, "crm_v3_contacts_search.json", "response_example")},
	}
	var generated map[string]json.RawMessage
	if *update {
		generated = fakeRecords(t)
	}
	for _, obj := range hubspot.Objects() {
		path := filepath.Join("testdata", "records", obj+".json")
		if *update {
			var buf bytes.Buffer
			require.NoError(t, json.Indent(&buf, generated[obj], "", "  "))
			require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
			require.NoError(t, os.WriteFile(path, append(buf.Bytes(), '\n'), 0o644))
		}
		raw, err := os.ReadFile(path)
		require.NoError(t, err)
		inputs = append(inputs, input{obj, obj, raw})
	}
	c := hubspot.New(connectors.AppConfig{})
	for _, in := range inputs {
		t.Run(in.name, func(t *testing.T) {
			rec, err := c.Normalize(in.object, in.raw)
			require.NoError(t, err)
			require.Equal(t, in.object, rec.Object)
			require.JSONEq(t, string(in.raw), string(rec.Raw), "Raw is the provider JSON as received")
			got, err := json.MarshalIndent(map[string]any{
				"remoteId": rec.RemoteID, "remoteUpdatedAt": rec.RemoteUpdatedAt, "deleted": rec.Deleted, "data": rec.Data,
			}, "", "  ")
			require.NoError(t, err)
			got = append(got, '\n')
			golden := filepath.Join("testdata", "golden", in.name+".json")
			if *update {
				require.NoError(t, os.WriteFile(golden, got, 0o644))
			}
			want, err := os.ReadFile(golden)
			require.NoError(t, err)
			require.Equal(t, string(want), string(got))
		})
	}
}

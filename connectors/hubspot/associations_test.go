package hubspot_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tributary/tributary/connectors"
	"github.com/tributary/tributary/models"
)

// TestAssociationsFillUnifiedLinks: a deal's primary company becomes its
// accountId (its stage is dealstage), a note's and a task's associated
// contact, company and deal become their contactId, accountId and
// opportunityId — whichever read found them (search, full scan, batch read).
func TestAssociationsFillUnifiedLinks(t *testing.T) {
	b := setup(t)
	c := b.newConn(t)
	p := portalOf(t, c)
	other := b.create(t, c, models.ObjectAccounts)
	acme := b.create(t, c, models.ObjectAccounts)
	contact := b.create(t, c, models.ObjectContacts)
	deal := b.create(t, c, models.ObjectOpportunities)
	note := b.create(t, c, models.ObjectNotes)
	task := b.create(t, c, models.ObjectTasks)
	bare := b.create(t, c, models.ObjectNotes)
	require.NoError(t, b.fake.Associate(p, "deals", deal, "companies", other, false))
	require.NoError(t, b.fake.Associate(p, "deals", deal, "companies", acme, true))
	for _, from := range []struct{ typ, id string }{{"notes", note}, {"tasks", task}} {
		require.NoError(t, b.fake.Associate(p, from.typ, from.id, "contacts", contact, false))
		require.NoError(t, b.fake.Associate(p, from.typ, from.id, "companies", acme, false))
		require.NoError(t, b.fake.Associate(p, from.typ, from.id, "deals", deal, false))
	}

	check := func(t *testing.T, recs map[string]models.Record) {
		t.Helper()
		if r, ok := recs[deal]; ok {
			o := r.Data.(*models.Opportunity)
			require.Equal(t, acme, o.AccountID, "the primary company, not the first one")
			require.Equal(t, "qualifiedtobuy", o.StageID)
		}
		if r, ok := recs[note]; ok {
			n := r.Data.(*models.Note)
			require.Equal(t, [3]string{contact, acme, deal}, [3]string{n.ContactID, n.AccountID, n.OpportunityID})
		}
		if r, ok := recs[task]; ok {
			k := r.Data.(*models.Task)
			require.Equal(t, [3]string{contact, acme, deal}, [3]string{k.ContactID, k.AccountID, k.OpportunityID})
		}
		if r, ok := recs[bare]; ok {
			n := r.Data.(*models.Note)
			require.Empty(t, n.ContactID+n.AccountID+n.OpportunityID)
		}
	}
	for _, full := range []bool{false, true} {
		for _, object := range []string{models.ObjectOpportunities, models.ObjectNotes, models.ObjectTasks} {
			recs, _, err := listAll(t, b, c, connectors.ListRequest{Object: object, FullScan: full})
			require.NoError(t, err)
			byID := map[string]models.Record{}
			for _, r := range recs {
				byID[r.RemoteID] = r
			}
			require.NotEmpty(t, byID)
			check(t, byID)
		}
	}
	for object, ids := range map[string][]string{
		models.ObjectOpportunities: {deal}, models.ObjectNotes: {note, bare}, models.ObjectTasks: {task},
	} {
		recs, err := b.conn.FetchRecords(t.Context(), c, object, ids)
		require.NoError(t, err)
		require.Len(t, recs, len(ids))
		byID := map[string]models.Record{}
		for _, r := range recs {
			byID[r.RemoteID] = r
		}
		check(t, byID)
	}
}

package hubspot

import (
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tributary/tributary/connectors"
	"github.com/tributary/tributary/models"
)

func parse(t *testing.T, body string) []connectors.Notice {
	t.Helper()
	ns, err := New(connectors.AppConfig{}).ParseWebhook(&connectors.InboundRequest{Body: []byte(body)})
	require.NoError(t, err)
	return ns
}

func TestParseWebhookDocsExample(t *testing.T) {
	body, err := os.ReadFile("testdata/webhook_delivery_docs_example.json")
	require.NoError(t, err)
	ns := parse(t, string(body))
	at := time.UnixMilli(1462216307945).UTC()
	require.Equal(t, []connectors.Notice{
		{EventID: "33:25:3816279340:1246965:1462216307945:lifecyclestage", ExternalID: "33", Object: models.ObjectContacts, RemoteID: "1246965", OccurredAt: at},
		{EventID: "33:22:3816279480:1246978:1462216307945", ExternalID: "33", Object: models.ObjectContacts, RemoteID: "1246978", OccurredAt: at},
	}, ns)

	v1, err := os.ReadFile("testdata/webhook_delivery_v1_docs_example.raw.json")
	require.NoError(t, err)
	ns = parse(t, string(v1))
	require.Len(t, ns, 1)
	require.Equal(t, "62515", ns[0].ExternalID)
	require.Equal(t, "123", ns[0].RemoteID)
	require.False(t, ns[0].Deleted)
	require.Nil(t, ns[0].Record, "notices are thin")
}

func TestParseWebhookKinds(t *testing.T) {
	body := `[
	 {"objectId":5,"eventId":9,"subscriptionId":3,"portalId":7,"appId":1,"occurredAt":3000,"subscriptionType":"deal.deletion","attemptNumber":2},
	 {"objectId":"6","eventId":"10","subscriptionId":4,"portalId":"7","occurredAt":"1000","subscriptionType":"object.propertyChange","objectTypeId":"0-46","propertyName":"hs_note_body"},
	 {"objectId":8,"eventId":11,"subscriptionId":4,"portalId":7,"occurredAt":2000,"subscriptionType":"object.creation","objectTypeId":"0-5"},
	 {"objectId":12,"eventId":12,"subscriptionId":5,"portalId":7,"occurredAt":1500,"eventType":"company.creation"},
	 {"eventId":13,"subscriptionId":6,"portalId":7,"occurredAt":2500,"subscriptionType":"contact.merge","primaryObjectId":20,"mergedObjectIds":[21,20]},
	 {"objectId":30,"eventId":14,"subscriptionId":7,"portalId":7,"occurredAt":2600,"subscriptionType":"contact.privacyDeletion"},
	 {"eventId":15,"subscriptionId":8,"portalId":7,"occurredAt":2700,"subscriptionType":"company.associationChange","fromObjectId":40,"toObjectId":41},
	 {"objectId":50,"eventId":16,"subscriptionId":9,"portalId":7,"occurredAt":2800,"subscriptionType":"conversation.creation"},
	 {"objectId":60,"eventId":17,"subscriptionId":10,"portalId":7,"occurredAt":2900,"subscriptionType":"object.deletion","objectTypeId":"0-27"}
	]`
	ns := parse(t, body)
	type row struct {
		object, id string
		deleted    bool
		ms         int64
	}
	var got []row
	for _, n := range ns {
		require.Equal(t, "7", n.ExternalID)
		require.NotEmpty(t, n.EventID)
		got = append(got, row{n.Object, n.RemoteID, n.Deleted, n.OccurredAt.UnixMilli()})
	}
	require.Equal(t, []row{
		{models.ObjectNotes, "6", false, 1000},
		{models.ObjectAccounts, "12", false, 1500},
		{models.ObjectContacts, "20", false, 2500},
		{models.ObjectContacts, "21", true, 2500},
		{models.ObjectContacts, "30", true, 2600},
		{models.ObjectAccounts, "40", false, 2700},
		{models.ObjectTasks, "60", true, 2900},
		{models.ObjectOpportunities, "5", true, 3000},
	}, got, "ordered by occurredAt; tickets and conversations skipped")

	// A retry (higher attemptNumber) keeps the event id.
	a := parse(t, `[{"objectId":5,"eventId":9,"subscriptionId":3,"portalId":7,"occurredAt":3000,"subscriptionType":"deal.creation","attemptNumber":0}]`)
	b := parse(t, `[{"objectId":5,"eventId":9,"subscriptionId":3,"portalId":7,"occurredAt":3000,"subscriptionType":"deal.creation","attemptNumber":4}]`)
	require.Equal(t, a[0].EventID, b[0].EventID)
}

func TestParseWebhookErrors(t *testing.T) {
	for name, body := range map[string]string{
		"not json":         `nope`,
		"object not array": `{"objectId":1}`,
		"no portal":        `[{"objectId":1,"occurredAt":1,"subscriptionType":"contact.creation"}]`,
		"no object id":     `[{"portalId":1,"occurredAt":1,"subscriptionType":"contact.creation"}]`,
		"no occurredAt":    `[{"objectId":1,"portalId":1,"subscriptionType":"contact.creation"}]`,
		"bad type":         `[{"objectId":1,"portalId":1,"occurredAt":1,"subscriptionType":"creation"}]`,
		"object as id":     `[{"objectId":{},"portalId":1,"occurredAt":1,"subscriptionType":"contact.creation"}]`,
		"bad occurredAt":   `[{"objectId":1,"portalId":1,"occurredAt":"x","subscriptionType":"contact.creation"}]`,
	} {
		t.Run(name, func(t *testing.T) {
			_, err := New(connectors.AppConfig{}).ParseWebhook(&connectors.InboundRequest{Body: []byte(body)})
			require.Error(t, err)
		})
	}
	ns := parse(t, `[]`)
	require.Empty(t, ns)
}

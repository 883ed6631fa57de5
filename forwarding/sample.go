package forwarding

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/tributary/tributary/models"
)

// samplePayloads are the dataPayloads of test events, one per category.
var samplePayloads = map[string]string{
	models.CategoryCRM:        `{"remoteId":"sample-1","remoteDeleted":false,"firstName":"Ada","lastName":"Lovelace","email":"ada@example.com"}`,
	models.CategoryCommerce:   `{"remoteId":"sample-1","remoteDeleted":false,"orderNumber":"1001","currency":"USD","totalPrice":"42.00"}`,
	models.CategoryConnection: `{"id":"con_sample","app":"sandbox","userId":"sample-user","status":"active"}`,
	models.CategorySync:       `{"created":1,"updated":0,"deleted":0,"scanned":1}`,
	"webhook":                 `{"webhookId":"wh_sample","address":"https://hooks.example.com/in","reason":"endpoint answered 410 Gone"}`,
}

// SampleEvent returns a realistic test event of topic, marked source "test".
func SampleEvent(topic string) *models.Envelope {
	cat := models.CategoryOf(topic)
	return &models.Envelope{Topic: topic, UpdateType: models.UpdateCreated, ConnectionID: "con_sample",
		UserID: "sample-user", UserName: "Sample user", Category: cat, Name: "Sample", Source: models.SourceTest,
		DataPayload: json.RawMessage(samplePayloads[cat])}
}

// SendSample signs a sample event of topic with the account's key and POSTs
// it to address once, without storing anything (tributary webhooks test).
// The SSRF guard applies unless the deployment allows private addresses.
func (s *Service) SendSample(ctx context.Context, accountID, address, topic string) (*AttemptView, string, error) {
	if !models.IsKnownTopic(topic) {
		return nil, "", models.FieldError("event", "unknown topic %q", topic)
	}
	if err := s.validateAddress(address); err != nil {
		return nil, "", err
	}
	env := SampleEvent(topic)
	env.ID = models.NewID(models.PrefixEvent)
	env.AccountID = accountID
	env.EventTimestamp = s.Now().UTC().Truncate(time.Millisecond)
	env.DetectedAt = env.EventTimestamp
	body, err := json.Marshal(env)
	if err != nil {
		return nil, "", fmt.Errorf("sample: %w", err)
	}
	d := s.direct
	j := &job{d: models.Delivery{AccountID: accountID}, event: &models.Event{ID: env.ID, Topic: topic, Body: body},
		sub: &models.Subscription{Address: address, Active: true, Scheme: models.SchemeRSA,
			TimeoutSeconds: int(s.cfg.DefaultTimeout.Seconds())}, force: true}
	r := d.attempt(ctx, j)
	return &AttemptView{AttemptedAt: r.at, StatusCode: r.status, ResponseTimeMs: r.elapsed.Milliseconds(),
		ResponseBody: r.body, Error: r.errText()}, env.ID, nil
}

package forwarding

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"github.com/tributary/tributary/config"
	"github.com/tributary/tributary/secrets"
	"github.com/tributary/tributary/storage/storagetest"
)

// Race found from outside: a test send stored its delivery as due, so a
// dispatcher woken by the commit (NOTIFY) claimed and sent it while the
// request claimed it by id and sent it again — a duplicate, or a 500 when
// the request found it leased. Here a background dispatcher runs exactly in
// that window: the receiver must get the test event once and the request
// must answer the attempt.
func TestSendTestIsNotAlsoSentByTheDispatcher(t *testing.T) {
	t.Parallel()
	storagetest.Each(t, func(t *testing.T, db *gorm.DB) {
		var hits atomic.Int32
		rc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			hits.Add(1)
			w.WriteHeader(http.StatusOK)
		}))
		t.Cleanup(rc.Close)
		box, err := secrets.New(make([]byte, secrets.KeySize))
		require.NoError(t, err)
		s := New(Config{DB: db, Box: box, AllowHTTP: true, AllowPrivate: true, Dispatcher: config.Default().Dispatcher})
		ctx := context.Background()
		addr, topics := rc.URL, []string{"*"}
		sub, err := s.CreateSubscription(ctx, "acc_a", SubscriptionInput{Address: &addr, Topic: &topics})
		require.NoError(t, err)

		background := s.NewDispatcher(nil)
		var sentInWindow int
		s.afterTestPublish = func() {
			n, err := background.DispatchDue(ctx)
			require.NoError(t, err)
			sentInWindow += n
		}
		for range 3 {
			att, _, err := s.SendTest(ctx, "acc_a", sub.ID, "crm/contacts")
			require.NoError(t, err)
			require.Equal(t, 200, att.StatusCode)
		}
		require.Zero(t, sentInWindow, "the background dispatcher claimed a test delivery")
		require.EqualValues(t, 3, hits.Load(), "each test event reached the receiver once")
	})
}

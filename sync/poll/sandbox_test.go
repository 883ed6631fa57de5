package poll

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"github.com/tributary/tributary/connectors/sandbox"
	sandboxfake "github.com/tributary/tributary/connectors/sandbox/fake"
	"github.com/tributary/tributary/models"
	"github.com/tributary/tributary/storage/storagetest"
)

// TestSandboxConnector polls the real sandbox connector (over its in-memory
// app): a silent first sync over every object, then one event per change,
// deletions included, and nothing on a re-poll.
func TestSandboxConnector(t *testing.T) {
	storagetest.Each(t, func(t *testing.T, db *gorm.DB) {
		b := setup(t, db)
		app := sandboxfake.New([]byte("secret"))
		b.runner.Apps = fakeApps{sandbox.New(app, []byte("secret"))}
		require.NoError(t, db.Model(&models.Connection{}).Where("id = ?", b.connID).Update("app", sandbox.AppName).Error)

		var ids []string
		for _, email := range []string{"a@x.test", "b@x.test", "c@x.test"} {
			id, err := app.Create(b.connID, "contacts", json.RawMessage(`{"first_name":"Ada","email":"`+email+`"}`))
			require.NoError(t, err)
			ids = append(ids, id)
		}
		_, err := app.Create(b.connID, "orders", json.RawMessage(`{"order_number":"1001","currency":"EUR"}`))
		require.NoError(t, err)

		res, err := b.run(t)
		require.NoError(t, err)
		assert.Equal(t, RunCompleted, res.Status)
		assert.Equal(t, Counts{Created: 4, Scanned: 4}, res.Counts)
		assert.Equal(t, models.Objects(), res.Objects)
		envs := b.pub.take()
		require.Equal(t, []string{"sync/completed:created"}, topicsOf(envs))
		assert.Equal(t, "Sandbox", envs[0].Name)

		app.Advance(time.Minute)
		b.clk.Add(time.Hour)
		require.NoError(t, app.Update(b.connID, "contacts", ids[1], json.RawMessage(`{"email":"new@x.test"}`)))
		require.NoError(t, app.Delete(b.connID, "contacts", ids[2]))
		_, err = app.Create(b.connID, "contacts", json.RawMessage(`{"first_name":"Grace","email":"g@x.test"}`))
		require.NoError(t, err)

		_, err = b.run(t)
		require.NoError(t, err)
		envs = dataEvents(b.pub.take())
		require.Equal(t, []string{"crm/contacts:updated", "crm/contacts:deleted", "crm/contacts:created"}, topicsOf(envs))
		assert.Equal(t, []string{"email"}, envs[0].ChangedFields)
		assert.JSONEq(t, `"b@x.test"`, string(envs[0].Previous["email"]))

		b.clk.Add(time.Hour)
		_, err = b.run(t)
		require.NoError(t, err)
		assert.Empty(t, dataEvents(b.pub.take()), "the lookback re-read emits nothing")
	})
}

package connections

import (
	"cmp"
	"encoding/json"
	"fmt"
	"time"

	"github.com/tributary/tributary/models"
)

// View is a connection as the API shows it. It never carries credentials.
type View struct {
	ID         string `json:"id"`
	App        string `json:"app"`
	UserID     string `json:"userId"`
	UserName   string `json:"userName"`
	Status     string `json:"status"`
	ExternalID string `json:"externalId"`
	// PollInterval is the effective interval, the one the scheduler
	// applies: the override (an ISV's at least the floor, an admin's as
	// given), else the account's default, else the deployment's.
	PollInterval string `json:"pollInterval"`
	// PollIntervalOverride is the connection's own interval (null = none).
	PollIntervalOverride *string `json:"pollIntervalOverride"`
	// PollIntervalSetBy says who set the override: "admin" or "account".
	PollIntervalSetBy *string    `json:"pollIntervalSetBy"`
	EmitBackfill      bool       `json:"emitBackfill"`
	IncludeRaw        bool       `json:"includeRaw"`
	NextSyncAt        time.Time  `json:"nextSyncAt"`
	LastSyncAt        *time.Time `json:"lastSyncAt"`
	LastError         *string    `json:"lastError"`
	CreatedAt         time.Time  `json:"createdAt"`
}

func toView(c *models.Connection, iv intervals) View {
	v := View{
		ID: c.ID, App: c.App, UserID: c.UserID, UserName: c.UserName, Status: c.Status,
		ExternalID:   c.ExternalID,
		PollInterval: FormatDuration(iv.effective(c)),
		EmitBackfill: c.EmitBackfill, IncludeRaw: c.IncludeRaw,
		NextSyncAt: c.NextSyncAt.UTC(),
		CreatedAt:  c.CreatedAt.UTC(),
	}
	if c.PollInterval > 0 {
		o, by := FormatDuration(c.PollInterval), "account"
		if c.PollIntervalByAdmin {
			by = "admin"
		}
		v.PollIntervalOverride, v.PollIntervalSetBy = &o, &by
	}
	if c.LastSyncAt != nil {
		t := c.LastSyncAt.UTC()
		v.LastSyncAt = &t
	}
	if c.LastError != "" {
		e := c.LastError
		v.LastError = &e
	}
	return v
}

// systemEvent builds a connection/* event about c carrying its view.
func (s *Service) systemEvent(c *models.Connection, iv intervals, topic, updateType string) (*models.Envelope, error) {
	payload, err := json.Marshal(toView(c, iv))
	if err != nil {
		return nil, fmt.Errorf("marshal connection view: %w", err)
	}
	name := c.App
	if a, ok := s.apps.Get(c.App); ok {
		name = cmp.Or(a.Info().DisplayName, c.App)
	}
	return &models.Envelope{
		Topic: topic, UpdateType: updateType, ConnectionID: c.ID, UserID: c.UserID, UserName: c.UserName,
		Category: models.CategoryOf(topic), Name: name, Source: models.SourceSystem, DataPayload: payload,
	}, nil
}

package hubspot

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/tributary/tributary/connectors"
	"github.com/tributary/tributary/models"
)

// simpleObject is HubSpot's SimplePublicObject: every property value is a
// string or null.
type simpleObject struct {
	ID         string             `json:"id"`
	Properties map[string]*string `json:"properties"`
	CreatedAt  string             `json:"createdAt"`
	UpdatedAt  string             `json:"updatedAt"`
	Archived   bool               `json:"archived"`
	ArchivedAt string             `json:"archivedAt"`
	// Associations are the record's associated ids by object type, as the
	// v3 object APIs return them (the connector fills them from the
	// associations v4 API for search and batch read results).
	Associations map[string]assocList `json:"associations"`
}

func (o *simpleObject) prop(name string) string {
	if v := o.Properties[name]; v != nil {
		return *v
	}
	return ""
}

// owner is one entry of /crm/v3/owners.
type owner struct {
	ID        string `json:"id"`
	Email     string `json:"email"`
	FirstName string `json:"firstName"`
	LastName  string `json:"lastName"`
	Type      string `json:"type"`
	CreatedAt string `json:"createdAt"`
	UpdatedAt string `json:"updatedAt"`
	Archived  bool   `json:"archived"`
}

// pipelineStage is one stage of /crm/v3/pipelines/deals. HubSpot's stage has
// no pipeline id; the connector adds "pipelineId" to the raw stage it hands
// on, so that Normalize can fill Stage.Pipeline from Record.Raw alone.
type pipelineStage struct {
	ID           string            `json:"id"`
	Label        string            `json:"label"`
	DisplayOrder int               `json:"displayOrder"`
	Metadata     map[string]string `json:"metadata"`
	CreatedAt    string            `json:"createdAt"`
	UpdatedAt    string            `json:"updatedAt"`
	Archived     bool              `json:"archived"`
	PipelineID   string            `json:"pipelineId"`
}

// Normalize turns one HubSpot record of object (raw JSON as the API returns
// it) into a unified Record.
func (c *Connector) Normalize(object string, raw []byte) (models.Record, error) {
	return normalize(object, raw)
}

func normalize(object string, raw []byte) (models.Record, error) {
	switch object {
	case models.ObjectUsers:
		return normalizeOwner(raw)
	case models.ObjectStages:
		return normalizeStage(raw)
	}
	spec, ok := crmObjectFor(object)
	if !ok {
		return models.Record{}, fmt.Errorf("normalize %s: %w", object, connectors.ErrUnsupportedObject)
	}
	var o simpleObject
	if err := json.Unmarshal(raw, &o); err != nil {
		return models.Record{}, fmt.Errorf("normalize %s: %w", object, err)
	}
	if o.ID == "" {
		return models.Record{}, fmt.Errorf("normalize %s: record without id", object)
	}
	common := models.Common{RemoteID: o.ID, RemoteDeleted: o.Archived}
	created := parseTime(o.CreatedAt)
	if created.IsZero() {
		created = parseTime(cmpNonEmpty(o.prop("createdate"), o.prop("hs_createdate")))
	}
	updated := parseTime(o.UpdatedAt)
	if updated.IsZero() {
		updated = parseTime(o.prop(spec.modified))
	}
	common.RemoteCreatedAt = timePtr(created)
	common.RemoteUpdatedAt = timePtr(updated)

	var data any
	switch object {
	case models.ObjectContacts:
		data = &models.Contact{
			Common:    common,
			FirstName: o.prop("firstname"),
			LastName:  o.prop("lastname"),
			Email:     o.prop("email"),
			Phone:     o.prop("phone"),
			Title:     o.prop("jobtitle"),
			AccountID: o.prop("associatedcompanyid"),
			OwnerID:   o.prop("hubspot_owner_id"),
			Address:   address(&o),
		}
	case models.ObjectAccounts:
		data = &models.CRMAccount{
			Common:            common,
			Name:              o.prop("name"),
			Domain:            o.prop("domain"),
			Website:           o.prop("website"),
			Industry:          o.prop("industry"),
			Phone:             o.prop("phone"),
			NumberOfEmployees: intPtr(o.prop("numberofemployees")),
			Description:       o.prop("description"),
			OwnerID:           o.prop("hubspot_owner_id"),
			Address:           address(&o),
		}
	case models.ObjectOpportunities:
		data = &models.Opportunity{
			Common:      common,
			Name:        o.prop("dealname"),
			Amount:      floatPtr(o.prop("amount")),
			Currency:    o.prop("deal_currency_code"),
			StageID:     o.prop("dealstage"),
			Status:      dealStatus(&o),
			Probability: floatPtr(o.prop("hs_deal_stage_probability")),
			CloseDate:   dateOnly(o.prop("closedate")),
			AccountID:   firstAssociated(o.Associations, "companies"),
			OwnerID:     o.prop("hubspot_owner_id"),
		}
	case models.ObjectNotes:
		data = &models.Note{
			Common:        common,
			Content:       o.prop("hs_note_body"),
			OwnerID:       o.prop("hubspot_owner_id"),
			ContactID:     firstAssociated(o.Associations, "contacts"),
			AccountID:     firstAssociated(o.Associations, "companies"),
			OpportunityID: firstAssociated(o.Associations, "deals"),
		}
	case models.ObjectTasks:
		data = &models.Task{
			Common:        common,
			Subject:       o.prop("hs_task_subject"),
			Content:       o.prop("hs_task_body"),
			Status:        o.prop("hs_task_status"),
			Priority:      o.prop("hs_task_priority"),
			DueDate:       dateOnly(o.prop("hs_timestamp")),
			OwnerID:       o.prop("hubspot_owner_id"),
			ContactID:     firstAssociated(o.Associations, "contacts"),
			AccountID:     firstAssociated(o.Associations, "companies"),
			OpportunityID: firstAssociated(o.Associations, "deals"),
		}
	}
	return models.Record{
		Object: object, RemoteID: o.ID, RemoteUpdatedAt: updated, Deleted: o.Archived,
		Data: data, Raw: cloneRaw(raw),
	}, nil
}

func normalizeOwner(raw []byte) (models.Record, error) {
	var o owner
	if err := json.Unmarshal(raw, &o); err != nil {
		return models.Record{}, fmt.Errorf("normalize users: %w", err)
	}
	if o.ID == "" {
		return models.Record{}, fmt.Errorf("normalize users: owner without id")
	}
	updated := parseTime(o.UpdatedAt)
	u := &models.User{
		Common: models.Common{
			RemoteID: o.ID, RemoteCreatedAt: timePtr(parseTime(o.CreatedAt)), RemoteUpdatedAt: timePtr(updated),
			RemoteDeleted: o.Archived,
		},
		Name:      strings.TrimSpace(o.FirstName + " " + o.LastName),
		FirstName: o.FirstName,
		LastName:  o.LastName,
		Email:     o.Email,
		IsActive:  !o.Archived,
	}
	return models.Record{Object: models.ObjectUsers, RemoteID: o.ID, RemoteUpdatedAt: updated,
		Deleted: o.Archived, Data: u, Raw: cloneRaw(raw)}, nil
}

func normalizeStage(raw []byte) (models.Record, error) {
	var s pipelineStage
	if err := json.Unmarshal(raw, &s); err != nil {
		return models.Record{}, fmt.Errorf("normalize stages: %w", err)
	}
	if s.ID == "" {
		return models.Record{}, fmt.Errorf("normalize stages: stage without id")
	}
	updated := parseTime(s.UpdatedAt)
	prob := floatPtr(s.Metadata["probability"])
	closed := s.Metadata["isClosed"] == "true"
	st := &models.Stage{
		Common: models.Common{
			RemoteID: s.ID, RemoteCreatedAt: timePtr(parseTime(s.CreatedAt)), RemoteUpdatedAt: timePtr(updated),
			RemoteDeleted: s.Archived,
		},
		Name:        s.Label,
		Pipeline:    s.PipelineID,
		Order:       s.DisplayOrder,
		Probability: prob,
		IsClosed:    closed,
		// HubSpot marks a closed-won deal stage with probability 1.0.
		IsWon: closed && prob != nil && *prob >= 1,
	}
	return models.Record{Object: models.ObjectStages, RemoteID: s.ID, RemoteUpdatedAt: updated,
		Deleted: s.Archived, Data: st, Raw: cloneRaw(raw)}, nil
}

func address(o *simpleObject) *models.Address {
	a := models.Address{
		Street: o.prop("address"), City: o.prop("city"), State: o.prop("state"),
		PostalCode: o.prop("zip"), Country: o.prop("country"),
	}
	if a == (models.Address{}) {
		return nil
	}
	return &a
}

func dealStatus(o *simpleObject) string {
	switch {
	case o.prop("hs_is_closed_won") == "true":
		return "WON"
	case o.prop("hs_is_closed") == "true":
		return "LOST"
	case o.prop("dealstage") == "closedwon":
		return "WON"
	case o.prop("dealstage") == "closedlost":
		return "LOST"
	default:
		return "OPEN"
	}
}

// parseTime reads HubSpot's ISO-8601 timestamps and epoch-millisecond strings.
func parseTime(s string) time.Time {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t.UTC()
	}
	if ms, err := strconv.ParseInt(s, 10, 64); err == nil {
		return time.UnixMilli(ms).UTC()
	}
	if t, err := time.Parse("2006-01-02", s); err == nil {
		return t.UTC()
	}
	return time.Time{}
}

func dateOnly(s string) string {
	if t := parseTime(s); !t.IsZero() {
		return t.Format("2006-01-02")
	}
	return ""
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

func floatPtr(s string) *float64 {
	f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil {
		return nil
	}
	return &f
}

func intPtr(s string) *int {
	s = strings.TrimSpace(s)
	if i, err := strconv.Atoi(s); err == nil {
		return &i
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil && f >= -1e15 && f <= 1e15 {
		i := int(f)
		return &i
	}
	return nil
}

// cloneRaw copies raw and compacts nothing: Raw is the provider JSON as received.
func cloneRaw(raw []byte) json.RawMessage {
	return json.RawMessage(bytes.Clone(raw))
}

package salesforce

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/url"
	"strings"
	"time"

	"github.com/tributary/tributary/connectors"
	"github.com/tributary/tributary/models"
)

// Salesforce datetime layouts. The REST API answers
// 2026-11-22T10:23:34.000+0000, which is not RFC 3339 (no colon in the
// offset); RFC 3339 is accepted too for robustness.
var timeLayouts = []string{
	"2006-01-02T15:04:05.000-0700",
	"2006-01-02T15:04:05-0700",
	time.RFC3339Nano,
}

// dateLayout is the layout of Salesforce date fields (CloseDate, ActivityDate).
const dateLayout = "2006-01-02"

// ParseTime parses a Salesforce datetime into UTC.
func ParseTime(s string) (time.Time, error) {
	for _, l := range timeLayouts {
		if t, err := time.Parse(l, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("bad Salesforce datetime %q", s)
}

// FormatTime renders t the way Salesforce does (millisecond precision, +0000).
func FormatTime(t time.Time) string {
	return t.UTC().Format("2006-01-02T15:04:05.000-0700")
}

// fields reads typed values out of one record, remembering the first type
// error so normalization code stays linear.
type fields struct {
	m   map[string]json.RawMessage
	err error
}

func (f *fields) fail(key string, raw json.RawMessage, want string) {
	if f.err == nil {
		f.err = fmt.Errorf("field %s: want %s, got %.40s", key, want, raw)
	}
}

func (f *fields) raw(key string) (json.RawMessage, bool) {
	v, ok := f.m[key]
	if !ok || bytes.Equal(bytes.TrimSpace(v), []byte("null")) {
		return nil, false
	}
	return v, true
}

func (f *fields) str(key string) string {
	v, ok := f.raw(key)
	if !ok {
		return ""
	}
	var s string
	if err := json.Unmarshal(v, &s); err != nil {
		f.fail(key, v, "string")
	}
	return s
}

func (f *fields) boolean(key string) bool {
	v, ok := f.raw(key)
	if !ok {
		return false
	}
	var b bool
	if err := json.Unmarshal(v, &b); err != nil {
		f.fail(key, v, "boolean")
	}
	return b
}

func (f *fields) number(key string) *float64 {
	v, ok := f.raw(key)
	if !ok {
		return nil
	}
	var n float64
	if err := json.Unmarshal(v, &n); err != nil || math.IsNaN(n) || math.IsInf(n, 0) {
		f.fail(key, v, "number")
		return nil
	}
	return &n
}

func (f *fields) integer(key string) *int {
	n := f.number(key)
	if n == nil {
		return nil
	}
	if *n != math.Trunc(*n) || math.Abs(*n) > 1<<53 {
		f.fail(key, f.m[key], "integer")
		return nil
	}
	i := int(*n)
	return &i
}

// percent reads a Salesforce percent (0–100) as a fraction (0–1), the scale
// of the unified model's probabilities.
func (f *fields) percent(key string) *float64 {
	n := f.number(key)
	if n == nil {
		return nil
	}
	p := *n / 100
	return &p
}

func (f *fields) time(key string) *time.Time {
	s := f.str(key)
	if s == "" {
		return nil
	}
	t, err := ParseTime(s)
	if err != nil {
		if f.err == nil {
			f.err = fmt.Errorf("field %s: %w", key, err)
		}
		return nil
	}
	return &t
}

// date reads a Salesforce date field (YYYY-MM-DD), validated.
func (f *fields) date(key string) string {
	s := f.str(key)
	if s == "" {
		return ""
	}
	if _, err := time.Parse(dateLayout, s); err != nil {
		if f.err == nil {
			f.err = fmt.Errorf("field %s: bad date %q", key, s)
		}
		return ""
	}
	return s
}

func (f *fields) address(street, city, state, postal, country string) *models.Address {
	a := models.Address{Street: f.str(street), City: f.str(city), State: f.str(state), PostalCode: f.str(postal), Country: f.str(country)}
	if a == (models.Address{}) {
		return nil
	}
	return &a
}

// Normalize turns one Salesforce record (as the query resource returns it)
// of a unified object into a Record.
func (c *Connector) Normalize(object string, raw []byte) (models.Record, error) {
	return normalize(object, raw)
}

func normalize(object string, raw []byte) (models.Record, error) {
	spec, ok := specFor(object)
	if !ok {
		return models.Record{}, fmt.Errorf("salesforce normalize %q: %w", object, connectors.ErrUnsupportedObject)
	}
	f := &fields{}
	if err := json.Unmarshal(raw, &f.m); err != nil || f.m == nil {
		return models.Record{}, fmt.Errorf("salesforce normalize %s: record is not a JSON object", spec.SObject)
	}
	if attrs, ok := f.raw("attributes"); ok {
		var a struct {
			Type string `json:"type"`
		}
		if err := json.Unmarshal(attrs, &a); err != nil {
			return models.Record{}, fmt.Errorf("salesforce normalize %s: bad attributes", spec.SObject)
		}
		if a.Type != "" && a.Type != spec.SObject {
			return models.Record{}, fmt.Errorf("salesforce normalize %s: record is a %s", spec.SObject, a.Type)
		}
	}
	common := models.Common{
		RemoteID:        f.str("Id"),
		RemoteCreatedAt: f.time("CreatedDate"),
		RemoteUpdatedAt: f.time("SystemModstamp"),
		RemoteDeleted:   f.boolean("IsDeleted"),
	}
	if common.RemoteUpdatedAt == nil {
		common.RemoteUpdatedAt = f.time("LastModifiedDate")
	}
	if f.err != nil {
		return models.Record{}, fmt.Errorf("salesforce normalize %s: %w", spec.SObject, f.err)
	}
	if common.RemoteID == "" {
		return models.Record{}, fmt.Errorf("salesforce normalize %s: record has no Id", spec.SObject)
	}
	var data any
	switch object {
	case models.ObjectAccounts:
		website := f.str("Website")
		data = &models.CRMAccount{
			Common: common, Name: f.str("Name"), Website: website, Domain: domainOf(website),
			Industry: f.str("Industry"), Phone: f.str("Phone"), NumberOfEmployees: f.integer("NumberOfEmployees"),
			Description: f.str("Description"), OwnerID: f.str("OwnerId"),
			Address: f.address("BillingStreet", "BillingCity", "BillingState", "BillingPostalCode", "BillingCountry"),
		}
	case models.ObjectContacts:
		data = &models.Contact{
			Common: common, FirstName: f.str("FirstName"), LastName: f.str("LastName"), Email: f.str("Email"),
			Phone: f.str("Phone"), Title: f.str("Title"), AccountID: f.str("AccountId"), OwnerID: f.str("OwnerId"),
			Address: f.address("MailingStreet", "MailingCity", "MailingState", "MailingPostalCode", "MailingCountry"),
		}
	case models.ObjectLeads:
		data = &models.Lead{
			Common: common, FirstName: f.str("FirstName"), LastName: f.str("LastName"), Email: f.str("Email"),
			Phone: f.str("Phone"), Company: f.str("Company"), Title: f.str("Title"), Status: f.str("Status"),
			Source: f.str("LeadSource"), OwnerID: f.str("OwnerId"),
		}
	case models.ObjectOpportunities:
		data = &models.Opportunity{
			Common: common, Name: f.str("Name"), Amount: f.number("Amount"), StageName: f.str("StageName"),
			Status: opportunityStatus(f.boolean("IsClosed"), f.boolean("IsWon")), Probability: f.percent("Probability"),
			CloseDate: f.date("CloseDate"), AccountID: f.str("AccountId"), OwnerID: f.str("OwnerId"),
		}
	case models.ObjectStages:
		st := &models.Stage{
			Common: common, Name: f.str("MasterLabel"), Probability: f.percent("DefaultProbability"),
			IsClosed: f.boolean("IsClosed"), IsWon: f.boolean("IsWon"),
		}
		if o := f.integer("SortOrder"); o != nil {
			st.Order = *o
		}
		data = st
	case models.ObjectTasks:
		t := &models.Task{
			Common: common, Subject: f.str("Subject"), Content: f.str("Description"), Status: f.str("Status"),
			Priority: f.str("Priority"), DueDate: f.date("ActivityDate"), OwnerID: f.str("OwnerId"),
			AccountID: f.str("AccountId"),
		}
		if who := f.str("WhoId"); strings.HasPrefix(who, prefixContact) {
			t.ContactID = who
		}
		switch what := f.str("WhatId"); {
		case strings.HasPrefix(what, prefixOpportunity):
			t.OpportunityID = what
		case strings.HasPrefix(what, prefixAccount) && t.AccountID == "":
			t.AccountID = what
		}
		data = t
	case models.ObjectNotes:
		n := &models.Note{Common: common, Title: f.str("Title"), Content: f.str("Body"), OwnerID: f.str("OwnerId")}
		switch parent := f.str("ParentId"); {
		case strings.HasPrefix(parent, prefixContact):
			n.ContactID = parent
		case strings.HasPrefix(parent, prefixAccount):
			n.AccountID = parent
		case strings.HasPrefix(parent, prefixOpportunity):
			n.OpportunityID = parent
		}
		data = n
	case models.ObjectUsers:
		data = &models.User{
			Common: common, Name: f.str("Name"), FirstName: f.str("FirstName"), LastName: f.str("LastName"),
			Email: f.str("Email"), IsActive: f.boolean("IsActive"),
		}
	default:
		return models.Record{}, fmt.Errorf("salesforce normalize %q: %w", object, connectors.ErrUnsupportedObject)
	}
	if f.err != nil {
		return models.Record{}, fmt.Errorf("salesforce normalize %s %s: %w", spec.SObject, common.RemoteID, f.err)
	}
	rec := models.Record{
		Object:   object,
		RemoteID: common.RemoteID,
		Deleted:  common.RemoteDeleted,
		Data:     data,
		Raw:      json.RawMessage(append([]byte(nil), raw...)),
	}
	if common.RemoteUpdatedAt != nil {
		rec.RemoteUpdatedAt = *common.RemoteUpdatedAt
	}
	return rec, nil
}

// opportunityStatus maps IsClosed/IsWon to OPEN, WON or LOST.
func opportunityStatus(closed, won bool) string {
	switch {
	case won:
		return "WON"
	case closed:
		return "LOST"
	default:
		return "OPEN"
	}
}

// domainOf derives a bare domain from a website ("https://www.acme.com/x" →
// "acme.com"); "" when the website is not a host name.
func domainOf(website string) string {
	w := strings.TrimSpace(website)
	if w == "" {
		return ""
	}
	if !strings.Contains(w, "://") {
		w = "http://" + w
	}
	u, err := url.Parse(w)
	if err != nil || u.Hostname() == "" || !strings.Contains(u.Hostname(), ".") {
		return ""
	}
	return strings.TrimPrefix(strings.ToLower(u.Hostname()), "www.")
}

// errNoModstamp is returned for a listed record without SystemModstamp: the
// cursor cannot be advanced past it safely.
var errNoModstamp = errors.New("record has no SystemModstamp")

package sandbox

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

// appMeta is the bookkeeping every record the app serves carries.
type appMeta struct {
	ID        string `json:"id"`
	CreatedAt string `json:"created_at"`
	UpdatedAt string `json:"updated_at"`
	Deleted   bool   `json:"deleted"`
}

// Normalize turns one app record of object (as served: fields plus id,
// created_at, updated_at, deleted) into a unified Record.
func (c *Connector) Normalize(object string, raw []byte) (models.Record, error) {
	return normalize(object, raw)
}

func normalize(object string, raw []byte) (models.Record, error) {
	shape := newShape(object)
	if shape == nil {
		return models.Record{}, fmt.Errorf("normalize %s: %w", object, connectors.ErrUnsupportedObject)
	}
	var meta appMeta
	if err := json.Unmarshal(raw, &meta); err != nil {
		return models.Record{}, fmt.Errorf("normalize %s: %w", object, err)
	}
	if meta.ID == "" {
		return models.Record{}, fmt.Errorf("normalize %s: record without id", object)
	}
	if err := json.Unmarshal(raw, shape); err != nil {
		return models.Record{}, fmt.Errorf("normalize %s %s: %w", object, meta.ID, err)
	}
	updated := parseTime(meta.UpdatedAt)
	common := models.Common{
		RemoteID:        meta.ID,
		RemoteCreatedAt: timePtr(parseTime(meta.CreatedAt)),
		RemoteUpdatedAt: timePtr(updated),
		RemoteDeleted:   meta.Deleted,
	}
	return models.Record{
		Object: object, RemoteID: meta.ID, RemoteUpdatedAt: updated, Deleted: meta.Deleted,
		Data: unified(common, shape), Raw: json.RawMessage(bytes.Clone(raw)),
	}, nil
}

// unified maps a decoded app shape to its unified struct.
func unified(common models.Common, shape any) any {
	switch s := shape.(type) {
	case *appContact:
		return &models.Contact{Common: common, FirstName: s.FirstName, LastName: s.LastName, Email: s.Email,
			Phone: s.Phone, Title: s.Title, AccountID: s.CompanyID, OwnerID: s.OwnerID, Address: address(s.MailingAddress)}
	case *appCompany:
		return &models.CRMAccount{Common: common, Name: s.Name, Domain: s.Domain, Website: s.Website,
			Industry: s.Industry, Phone: s.Phone, NumberOfEmployees: s.EmployeeCount, Description: s.Description,
			OwnerID: s.OwnerID, Address: address(s.BillingAddress)}
	case *appLead:
		return &models.Lead{Common: common, FirstName: s.FirstName, LastName: s.LastName, Email: s.Email,
			Phone: s.Phone, Company: s.CompanyName, Title: s.Title, Status: s.LeadStatus, Source: s.LeadSource,
			OwnerID: s.OwnerID}
	case *appDeal:
		return &models.Opportunity{Common: common, Name: s.Name, Amount: s.Amount, Currency: strings.ToUpper(s.Currency),
			StageID: s.StageID, Status: dealStatus(s.State), Probability: fraction(s.Probability),
			CloseDate: dateOnly(s.ExpectedClose), AccountID: s.CompanyID, OwnerID: s.OwnerID}
	case *appStage:
		return &models.Stage{Common: common, Name: s.Label, Pipeline: s.Pipeline, Order: s.Position,
			Probability: fraction(s.WinProbability), IsClosed: s.Closed || s.Won, IsWon: s.Won}
	case *appNote:
		return &models.Note{Common: common, Title: s.Title, Content: s.Body, OwnerID: s.OwnerID,
			ContactID: s.ContactID, AccountID: s.CompanyID, OpportunityID: s.DealID}
	case *appTask:
		return &models.Task{Common: common, Subject: s.Subject, Content: s.Body, Status: upperSnake(s.Status),
			Priority: upperSnake(s.Priority), DueDate: dateOnly(s.DueOn), OwnerID: s.OwnerID,
			ContactID: s.ContactID, AccountID: s.CompanyID, OpportunityID: s.DealID}
	case *appUser:
		active := s.Active == nil || *s.Active
		return &models.User{Common: common, Name: strings.TrimSpace(s.FirstName + " " + s.LastName),
			FirstName: s.FirstName, LastName: s.LastName, Email: s.Email, IsActive: active && !common.RemoteDeleted}
	case *appOrder:
		o := &models.Order{Common: common, OrderNumber: string(s.OrderNumber), Email: s.Email, CustomerID: s.CustomerID,
			Currency: strings.ToUpper(s.Currency), TotalPrice: string(s.TotalPrice), SubtotalPrice: string(s.SubtotalPrice),
			TotalTax: string(s.TotalTax), FinancialStatus: s.FinancialStatus, FulfillmentStatus: s.FulfillmentStatus,
			CancelledAt: timePtr(parseTime(s.CancelledAt))}
		for i, li := range s.LineItems {
			o.LineItems = append(o.LineItems, models.LineItem{RemoteID: orIndex(li.ID, common.RemoteID, "li", i),
				ProductID: li.ProductID, VariantID: li.VariantID, SKU: li.SKU, Title: li.Name, Quantity: li.Quantity,
				Price: string(li.UnitPrice)})
		}
		return o
	case *appCustomer:
		return &models.Customer{Common: common, FirstName: s.FirstName, LastName: s.LastName, Email: s.Email,
			Phone: s.Phone, State: s.Status, OrdersCount: s.OrdersCount, TotalSpent: string(s.TotalSpent),
			Tags: strings.Join(s.Tags, ", ")}
	case *appProduct:
		p := &models.Product{Common: common, Title: s.Title, Description: s.BodyHTML, Vendor: s.Vendor,
			ProductType: s.ProductType, Status: s.Status, Tags: strings.Join(s.Tags, ", ")}
		for i, v := range s.Variants {
			p.Variants = append(p.Variants, models.Variant{RemoteID: orIndex(v.ID, common.RemoteID, "v", i),
				Title: v.Title, SKU: v.SKU, Price: string(v.Price), InventoryQuantity: v.InventoryQuantity})
		}
		return p
	}
	return nil
}

func address(a *appAddress) *models.Address {
	if a == nil || *a == (appAddress{}) {
		return nil
	}
	return &models.Address{Street: a.Line1, City: a.City, State: a.Region, PostalCode: a.PostalCode, Country: a.Country}
}

// dealStatus maps the app's deal state to OPEN, WON or LOST.
func dealStatus(state string) string {
	switch strings.ToLower(state) {
	case "won":
		return "WON"
	case "lost":
		return "LOST"
	default:
		return "OPEN"
	}
}

// fraction turns a percentage into a 0–1 probability.
func fraction(pct *float64) *float64 {
	if pct == nil {
		return nil
	}
	f := *pct / 100
	return &f
}

// upperSnake turns "in progress" / "in_progress" into "IN_PROGRESS".
func upperSnake(s string) string {
	return strings.ToUpper(strings.Join(strings.Fields(strings.ReplaceAll(s, "_", " ")), "_"))
}

// orIndex is id, or a stable id from the parent and position when the app
// record has none.
func orIndex(id, parent, kind string, i int) string {
	if id != "" {
		return id
	}
	return parent + "-" + kind + strconv.Itoa(i+1)
}

func parseTime(s string) time.Time {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t.UTC()
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t.UTC()
	}
	return time.Time{}
}

func dateOnly(s string) string {
	if t := parseTime(s); !t.IsZero() {
		return t.Format(time.DateOnly)
	}
	return ""
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

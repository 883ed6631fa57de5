package sandbox

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
)

// The sandbox app's own record shapes. They are snake_case and deliberately
// not the unified model: names differ (company_id, body, due_on), money is a
// decimal string or number, probabilities are percentages, tags are arrays,
// so normalization does real work as it does for a real provider.

// appAddress is a postal address in the app.
type appAddress struct {
	Line1      string `json:"line1,omitempty"`
	City       string `json:"city,omitempty"`
	Region     string `json:"region,omitempty"`
	PostalCode string `json:"postal_code,omitempty"`
	Country    string `json:"country,omitempty"`
}

// appContact is a contact (crm/contacts).
type appContact struct {
	FirstName      string      `json:"first_name"`
	LastName       string      `json:"last_name"`
	Email          string      `json:"email"`
	Phone          string      `json:"phone"`
	Title          string      `json:"title"`
	CompanyID      string      `json:"company_id"`
	OwnerID        string      `json:"owner_id"`
	MailingAddress *appAddress `json:"mailing_address"`
}

// appCompany is a company (crm/accounts).
type appCompany struct {
	Name           string      `json:"name"`
	Domain         string      `json:"domain"`
	Website        string      `json:"website"`
	Industry       string      `json:"industry"`
	Phone          string      `json:"phone"`
	EmployeeCount  *int        `json:"employee_count"`
	Description    string      `json:"description"`
	OwnerID        string      `json:"owner_id"`
	BillingAddress *appAddress `json:"billing_address"`
}

// appLead is a lead (crm/leads).
type appLead struct {
	FirstName   string `json:"first_name"`
	LastName    string `json:"last_name"`
	Email       string `json:"email"`
	Phone       string `json:"phone"`
	CompanyName string `json:"company_name"`
	Title       string `json:"title"`
	LeadStatus  string `json:"lead_status"`
	LeadSource  string `json:"lead_source"`
	OwnerID     string `json:"owner_id"`
}

// appDeal is a deal (crm/opportunities). State is open, won or lost;
// Probability is a percentage (0–100).
type appDeal struct {
	Name          string   `json:"name"`
	Amount        *float64 `json:"amount"`
	Currency      string   `json:"currency"`
	StageID       string   `json:"stage_id"`
	State         string   `json:"state"`
	Probability   *float64 `json:"probability"`
	ExpectedClose string   `json:"expected_close"`
	CompanyID     string   `json:"company_id"`
	OwnerID       string   `json:"owner_id"`
}

// appStage is a pipeline stage (crm/stages); WinProbability is a percentage.
type appStage struct {
	Label          string   `json:"label"`
	Pipeline       string   `json:"pipeline"`
	Position       int      `json:"position"`
	WinProbability *float64 `json:"win_probability"`
	Closed         bool     `json:"closed"`
	Won            bool     `json:"won"`
}

// appNote is a note (crm/notes).
type appNote struct {
	Title     string `json:"title"`
	Body      string `json:"body"`
	OwnerID   string `json:"owner_id"`
	ContactID string `json:"contact_id"`
	CompanyID string `json:"company_id"`
	DealID    string `json:"deal_id"`
}

// appTask is a task (crm/tasks); DueOn is YYYY-MM-DD.
type appTask struct {
	Subject   string `json:"subject"`
	Body      string `json:"body"`
	Status    string `json:"status"`
	Priority  string `json:"priority"`
	DueOn     string `json:"due_on"`
	OwnerID   string `json:"owner_id"`
	ContactID string `json:"contact_id"`
	CompanyID string `json:"company_id"`
	DealID    string `json:"deal_id"`
}

// appUser is a user of the CRM (crm/users); Active defaults to true.
type appUser struct {
	FirstName string `json:"first_name"`
	LastName  string `json:"last_name"`
	Email     string `json:"email"`
	Active    *bool  `json:"active"`
}

// appLineItem is one line of an order.
type appLineItem struct {
	ID        string  `json:"id"`
	ProductID string  `json:"product_id"`
	VariantID string  `json:"variant_id"`
	SKU       string  `json:"sku"`
	Name      string  `json:"name"`
	Quantity  int     `json:"quantity"`
	UnitPrice decimal `json:"unit_price"`
}

// appOrder is an order (commerce/orders).
type appOrder struct {
	OrderNumber       flexString    `json:"order_number"`
	CustomerID        string        `json:"customer_id"`
	Email             string        `json:"email"`
	Currency          string        `json:"currency"`
	TotalPrice        decimal       `json:"total_price"`
	SubtotalPrice     decimal       `json:"subtotal_price"`
	TotalTax          decimal       `json:"total_tax"`
	FinancialStatus   string        `json:"financial_status"`
	FulfillmentStatus string        `json:"fulfillment_status"`
	CancelledAt       string        `json:"cancelled_at"`
	LineItems         []appLineItem `json:"line_items"`
}

// appCustomer is a shop customer (commerce/customers).
type appCustomer struct {
	FirstName   string   `json:"first_name"`
	LastName    string   `json:"last_name"`
	Email       string   `json:"email"`
	Phone       string   `json:"phone"`
	Status      string   `json:"status"`
	OrdersCount int      `json:"orders_count"`
	TotalSpent  decimal  `json:"total_spent"`
	Tags        []string `json:"tags"`
}

// appVariant is one variant of a product.
type appVariant struct {
	ID                string  `json:"id"`
	Title             string  `json:"title"`
	SKU               string  `json:"sku"`
	Price             decimal `json:"price"`
	InventoryQuantity *int    `json:"inventory_quantity"`
}

// appProduct is a product (commerce/products).
type appProduct struct {
	Title       string       `json:"title"`
	BodyHTML    string       `json:"body_html"`
	Vendor      string       `json:"vendor"`
	ProductType string       `json:"product_type"`
	Status      string       `json:"status"`
	Tags        []string     `json:"tags"`
	Variants    []appVariant `json:"variants"`
}

// newShape returns a fresh shape struct of object, nil when unknown.
func newShape(object string) any {
	switch object {
	case "contacts":
		return &appContact{}
	case "accounts":
		return &appCompany{}
	case "leads":
		return &appLead{}
	case "opportunities":
		return &appDeal{}
	case "stages":
		return &appStage{}
	case "notes":
		return &appNote{}
	case "tasks":
		return &appTask{}
	case "users":
		return &appUser{}
	case "orders":
		return &appOrder{}
	case "customers":
		return &appCustomer{}
	case "products":
		return &appProduct{}
	}
	return nil
}

// decimal is money as the app sends it: a JSON number or a numeric string,
// kept as its decimal text ("120.50").
type decimal string

// UnmarshalJSON accepts a number or a numeric string.
func (d *decimal) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if string(b) == "null" {
		return nil
	}
	s := string(b)
	if len(b) > 0 && b[0] == '"' {
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
	}
	if _, err := strconv.ParseFloat(s, 64); err != nil {
		return fmt.Errorf("not a decimal amount: %s", b)
	}
	*d = decimal(s)
	return nil
}

// flexString is a string the app also accepts as a number (order_number).
type flexString string

// UnmarshalJSON accepts a string or a number.
func (f *flexString) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if string(b) == "null" {
		return nil
	}
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*f = flexString(s)
		return nil
	}
	var n json.Number
	if err := json.Unmarshal(b, &n); err != nil {
		return fmt.Errorf("not a string or number: %s", b)
	}
	*f = flexString(n.String())
	return nil
}

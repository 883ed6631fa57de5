package models

import (
	"encoding/json"
	"regexp"
	"strings"
	"time"
)

// Record is one remote record after normalization: what a connector hands to
// reconcile. Data is one of the unified structs below (Contact, Order, …).
type Record struct {
	// Object is the unified object name ("contacts", "orders", …).
	Object string
	// RemoteID is the provider's id of the record.
	RemoteID string
	// RemoteUpdatedAt orders versions: an older one never overwrites a newer one.
	// Zero when the provider gives no modification time.
	RemoteUpdatedAt time.Time
	// Deleted marks a record known to be deleted remotely.
	Deleted bool
	// Data is the unified model (a pointer to one of the structs in this file).
	Data any
	// Raw is the provider's record as received, kept for "raw on request".
	Raw json.RawMessage
}

// Common holds the fields every unified object carries. Reconcile's content
// hash leaves out the volatile ones (remoteUpdatedAt, remoteData).
type Common struct {
	RemoteID        string          `json:"remoteId"`
	RemoteCreatedAt *time.Time      `json:"remoteCreatedAt,omitempty"`
	RemoteUpdatedAt *time.Time      `json:"remoteUpdatedAt,omitempty"`
	RemoteDeleted   bool            `json:"remoteDeleted"`
	RemoteData      json.RawMessage `json:"remoteData,omitempty"`
}

// VolatileFields are the unified JSON fields excluded from content hashes and
// from changedFields: bookkeeping that changes without a real change.
var VolatileFields = []string{"remoteUpdatedAt", "remoteData"}

// Address is a postal address.
type Address struct {
	Street     string `json:"street,omitempty"`
	City       string `json:"city,omitempty"`
	State      string `json:"state,omitempty"`
	PostalCode string `json:"postalCode,omitempty"`
	Country    string `json:"country,omitempty"`
}

// CRMAccount is a company (crm/accounts).
type CRMAccount struct {
	Common
	Name              string   `json:"name"`
	Domain            string   `json:"domain,omitempty"`
	Website           string   `json:"website,omitempty"`
	Industry          string   `json:"industry,omitempty"`
	Phone             string   `json:"phone,omitempty"`
	NumberOfEmployees *int     `json:"numberOfEmployees,omitempty"`
	Description       string   `json:"description,omitempty"`
	OwnerID           string   `json:"ownerId,omitempty"`
	Address           *Address `json:"address,omitempty"`
}

// Contact is a person (crm/contacts).
type Contact struct {
	Common
	FirstName string   `json:"firstName,omitempty"`
	LastName  string   `json:"lastName,omitempty"`
	Email     string   `json:"email,omitempty"`
	Phone     string   `json:"phone,omitempty"`
	Title     string   `json:"title,omitempty"`
	AccountID string   `json:"accountId,omitempty"`
	OwnerID   string   `json:"ownerId,omitempty"`
	Address   *Address `json:"address,omitempty"`
}

// Lead is a prospect not yet qualified (crm/leads).
type Lead struct {
	Common
	FirstName string `json:"firstName,omitempty"`
	LastName  string `json:"lastName,omitempty"`
	Email     string `json:"email,omitempty"`
	Phone     string `json:"phone,omitempty"`
	Company   string `json:"company,omitempty"`
	Title     string `json:"title,omitempty"`
	Status    string `json:"status,omitempty"`
	Source    string `json:"source,omitempty"`
	OwnerID   string `json:"ownerId,omitempty"`
}

// Opportunity is a deal (crm/opportunities).
type Opportunity struct {
	Common
	Name        string   `json:"name"`
	Amount      *float64 `json:"amount,omitempty"`
	Currency    string   `json:"currency,omitempty"`
	StageID     string   `json:"stageId,omitempty"`
	StageName   string   `json:"stageName,omitempty"`
	Status      string   `json:"status,omitempty"` // OPEN, WON, LOST
	Probability *float64 `json:"probability,omitempty"`
	CloseDate   string   `json:"closeDate,omitempty"` // YYYY-MM-DD
	AccountID   string   `json:"accountId,omitempty"`
	OwnerID     string   `json:"ownerId,omitempty"`
}

// Stage is a pipeline stage of opportunities (crm/stages).
type Stage struct {
	Common
	Name        string   `json:"name"`
	Pipeline    string   `json:"pipeline,omitempty"`
	Order       int      `json:"order"`
	Probability *float64 `json:"probability,omitempty"`
	IsClosed    bool     `json:"isClosed"`
	IsWon       bool     `json:"isWon"`
}

// Note is free text attached to CRM objects (crm/notes).
type Note struct {
	Common
	Title         string `json:"title,omitempty"`
	Content       string `json:"content"`
	OwnerID       string `json:"ownerId,omitempty"`
	ContactID     string `json:"contactId,omitempty"`
	AccountID     string `json:"accountId,omitempty"`
	OpportunityID string `json:"opportunityId,omitempty"`
}

// Task is an activity to do (crm/tasks).
type Task struct {
	Common
	Subject       string `json:"subject"`
	Content       string `json:"content,omitempty"`
	Status        string `json:"status,omitempty"`
	Priority      string `json:"priority,omitempty"`
	DueDate       string `json:"dueDate,omitempty"`
	OwnerID       string `json:"ownerId,omitempty"`
	ContactID     string `json:"contactId,omitempty"`
	AccountID     string `json:"accountId,omitempty"`
	OpportunityID string `json:"opportunityId,omitempty"`
}

// User is a user of the CRM (crm/users).
type User struct {
	Common
	Name      string `json:"name,omitempty"`
	FirstName string `json:"firstName,omitempty"`
	LastName  string `json:"lastName,omitempty"`
	Email     string `json:"email,omitempty"`
	IsActive  bool   `json:"isActive"`
}

// LineItem is one line of an order. Money is a decimal string, as providers send it.
type LineItem struct {
	RemoteID  string `json:"remoteId,omitempty"`
	ProductID string `json:"productId,omitempty"`
	VariantID string `json:"variantId,omitempty"`
	SKU       string `json:"sku,omitempty"`
	Title     string `json:"title,omitempty"`
	Quantity  int    `json:"quantity"`
	Price     string `json:"price,omitempty"`
}

// Order is a commerce order (commerce/orders).
type Order struct {
	Common
	OrderNumber       string     `json:"orderNumber,omitempty"`
	Email             string     `json:"email,omitempty"`
	CustomerID        string     `json:"customerId,omitempty"`
	Currency          string     `json:"currency,omitempty"`
	TotalPrice        string     `json:"totalPrice,omitempty"`
	SubtotalPrice     string     `json:"subtotalPrice,omitempty"`
	TotalTax          string     `json:"totalTax,omitempty"`
	FinancialStatus   string     `json:"financialStatus,omitempty"`
	FulfillmentStatus string     `json:"fulfillmentStatus,omitempty"`
	CancelledAt       *time.Time `json:"cancelledAt,omitempty"`
	LineItems         []LineItem `json:"lineItems,omitempty"`
	// BillingAddress is the order's billing address.
	BillingAddress *Address `json:"billingAddress,omitempty"`
	// Customer is the buyer as the order carries it.
	Customer *OrderCustomer `json:"customer,omitempty"`
	// TotalShipping is the shipping charged, an exact JSON number.
	TotalShipping Money `json:"totalShipping,omitempty"`
	// OrderStatus is OPEN, CLOSED or CANCELLED.
	OrderStatus string `json:"orderStatus,omitempty"`
	// PaymentStatus is the payment state in upper case: PENDING,
	// AUTHORIZED, PARTIALLY_PAID, PAID, PARTIALLY_REFUNDED, REFUNDED, VOIDED,
	// EXPIRED.
	PaymentStatus string `json:"paymentStatus,omitempty"`
}

// OrderStatus values.
const (
	OrderStatusOpen      = "OPEN"
	OrderStatusClosed    = "CLOSED"
	OrderStatusCancelled = "CANCELLED"
)

// OrderCustomer is the buyer of an order.
type OrderCustomer struct {
	CustomerID string `json:"customerId,omitempty"`
	Email      string `json:"email,omitempty"`
	FirstName  string `json:"firstName,omitempty"`
	LastName   string `json:"lastName,omitempty"`
	Phone      string `json:"phone,omitempty"`
}

// Money is an amount as an exact JSON number: the provider's decimal text
// ("12.50") written unquoted, never through a float.
type Money = json.Number

// MoneyFrom turns a decimal string ("12.50", "-3", "0.00") into Money; ""
// and anything that is not a plain decimal give "" (omitted).
func MoneyFrom(s string) Money {
	s = strings.TrimSpace(s)
	if !decimalRE.MatchString(s) {
		return ""
	}
	return Money(s)
}

var decimalRE = regexp.MustCompile(`^-?(0|[1-9][0-9]*)(\.[0-9]+)?$`)

// Customer is a shop's customer (commerce/customers).
type Customer struct {
	Common
	FirstName   string `json:"firstName,omitempty"`
	LastName    string `json:"lastName,omitempty"`
	Email       string `json:"email,omitempty"`
	Phone       string `json:"phone,omitempty"`
	State       string `json:"state,omitempty"`
	OrdersCount int    `json:"ordersCount"`
	TotalSpent  string `json:"totalSpent,omitempty"`
	Tags        string `json:"tags,omitempty"`
}

// Variant is one purchasable variant of a product.
type Variant struct {
	RemoteID          string `json:"remoteId"`
	Title             string `json:"title,omitempty"`
	SKU               string `json:"sku,omitempty"`
	Price             string `json:"price,omitempty"`
	InventoryQuantity *int   `json:"inventoryQuantity,omitempty"`
}

// Product is a shop's product (commerce/products).
type Product struct {
	Common
	Title       string    `json:"title"`
	Description string    `json:"description,omitempty"`
	Vendor      string    `json:"vendor,omitempty"`
	ProductType string    `json:"productType,omitempty"`
	Status      string    `json:"status,omitempty"`
	Tags        string    `json:"tags,omitempty"`
	Variants    []Variant `json:"variants,omitempty"`
}

// WithRemoteData returns payload (a unified JSON object) with raw, the
// provider's record as received, set as its "remoteData" field; payload is
// returned unchanged when raw is empty or payload is not an object.
func WithRemoteData(payload, raw json.RawMessage) json.RawMessage {
	if len(raw) == 0 || !json.Valid(raw) {
		return payload
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(payload, &fields); err != nil || fields == nil {
		return payload
	}
	fields["remoteData"] = raw
	out, err := json.Marshal(fields)
	if err != nil {
		return payload
	}
	return out
}

package shopify

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"math/big"
	"strconv"
	"strings"
	"time"

	"github.com/tributary/tributary/connectors"
	"github.com/tributary/tributary/models"
)

// flexString decodes a JSON string, number or bool as text (Shopify sends
// money as strings, ids as numbers); null is "".
type flexString string

// UnmarshalJSON implements json.Unmarshaler.
func (f *flexString) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case len(b) == 0 || string(b) == "null":
		*f = ""
	case b[0] == '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*f = flexString(s)
	case b[0] == '{' || b[0] == '[':
		return fmt.Errorf("want a string or number, got %.20s", b)
	default:
		var n json.Number
		if err := json.Unmarshal(b, &n); err != nil {
			if string(b) == "true" || string(b) == "false" {
				*f = flexString(b)
				return nil
			}
			return err
		}
		*f = flexString(n.String())
	}
	return nil
}

// flexInt decodes a JSON number or numeric string; null is 0.
type flexInt int

// UnmarshalJSON implements json.Unmarshaler.
func (f *flexInt) UnmarshalJSON(b []byte) error {
	var s flexString
	if err := s.UnmarshalJSON(b); err != nil {
		return err
	}
	if s == "" {
		*f = 0
		return nil
	}
	n, err := strconv.ParseFloat(string(s), 64)
	if err != nil || n > 1<<53 || n < -(1<<53) {
		return fmt.Errorf("want an integer, got %q", string(s))
	}
	*f = flexInt(n)
	return nil
}

// flexTime decodes an ISO-8601 time ("2008-01-10T11:00:00-05:00"); null or
// "" is the zero time.
type flexTime struct{ time.Time }

// UnmarshalJSON implements json.Unmarshaler.
func (f *flexTime) UnmarshalJSON(b []byte) error {
	var s flexString
	if err := s.UnmarshalJSON(b); err != nil {
		return err
	}
	if s == "" {
		f.Time = time.Time{}
		return nil
	}
	t, err := parseTime(string(s))
	if err != nil {
		return err
	}
	f.Time = t
	return nil
}

func parseTime(s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, strings.TrimSpace(s))
	if err != nil {
		return time.Time{}, fmt.Errorf("bad time %q", s)
	}
	return t, nil
}

func (f flexTime) ptr() *time.Time {
	if f.IsZero() {
		return nil
	}
	t := f.UTC()
	return &t
}

// common are the fields every Shopify resource has.
type common struct {
	ID        flexString `json:"id"`
	CreatedAt flexTime   `json:"created_at"`
	UpdatedAt flexTime   `json:"updated_at"`
}

func (c common) unified() models.Common {
	return models.Common{RemoteID: string(c.ID), RemoteCreatedAt: c.CreatedAt.ptr(), RemoteUpdatedAt: c.UpdatedAt.ptr()}
}

type orderJSON struct {
	common
	OrderNumber       flexString `json:"order_number"`
	Name              string     `json:"name"`
	Email             string     `json:"email"`
	Currency          string     `json:"currency"`
	TotalPrice        flexString `json:"total_price"`
	SubtotalPrice     flexString `json:"subtotal_price"`
	TotalTax          flexString `json:"total_tax"`
	FinancialStatus   string     `json:"financial_status"`
	FulfillmentStatus string     `json:"fulfillment_status"`
	CancelledAt       flexTime   `json:"cancelled_at"`
	ClosedAt          flexTime   `json:"closed_at"`
	Phone             string     `json:"phone"`
	Customer          *struct {
		ID        flexString `json:"id"`
		Email     string     `json:"email"`
		FirstName string     `json:"first_name"`
		LastName  string     `json:"last_name"`
		Phone     string     `json:"phone"`
	} `json:"customer"`
	BillingAddress *struct {
		Address1 string `json:"address1"`
		Address2 string `json:"address2"`
		City     string `json:"city"`
		Province string `json:"province"`
		Zip      string `json:"zip"`
		Country  string `json:"country"`
	} `json:"billing_address"`
	TotalShippingSet *struct {
		ShopMoney struct {
			Amount flexString `json:"amount"`
		} `json:"shop_money"`
	} `json:"total_shipping_price_set"`
	ShippingLines []struct {
		Price flexString `json:"price"`
	} `json:"shipping_lines"`
	LineItems []struct {
		ID        flexString `json:"id"`
		ProductID flexString `json:"product_id"`
		VariantID flexString `json:"variant_id"`
		SKU       string     `json:"sku"`
		Title     string     `json:"title"`
		Quantity  flexInt    `json:"quantity"`
		Price     flexString `json:"price"`
	} `json:"line_items"`
}

type customerJSON struct {
	common
	FirstName   string     `json:"first_name"`
	LastName    string     `json:"last_name"`
	Email       string     `json:"email"`
	Phone       string     `json:"phone"`
	State       string     `json:"state"`
	OrdersCount flexInt    `json:"orders_count"`
	TotalSpent  flexString `json:"total_spent"`
	Tags        string     `json:"tags"`
}

type productJSON struct {
	common
	Title       string `json:"title"`
	BodyHTML    string `json:"body_html"`
	Vendor      string `json:"vendor"`
	ProductType string `json:"product_type"`
	Status      string `json:"status"`
	Tags        string `json:"tags"`
	Variants    []struct {
		ID                flexString `json:"id"`
		Title             string     `json:"title"`
		SKU               string     `json:"sku"`
		Price             flexString `json:"price"`
		InventoryQuantity *flexInt   `json:"inventory_quantity"`
	} `json:"variants"`
}

// totalShipping is total_shipping_price_set's shop amount, else the exact
// sum of the shipping lines' prices; "" when the order says nothing.
func totalShipping(o *orderJSON) models.Money {
	if o.TotalShippingSet != nil {
		if m := models.MoneyFrom(string(o.TotalShippingSet.ShopMoney.Amount)); m != "" {
			return m
		}
	}
	if len(o.ShippingLines) == 0 {
		return ""
	}
	sum := new(big.Rat)
	scale := 0
	for _, l := range o.ShippingLines {
		m := models.MoneyFrom(string(l.Price))
		if m == "" {
			return ""
		}
		r, ok := new(big.Rat).SetString(string(m))
		if !ok {
			return ""
		}
		if _, frac, found := strings.Cut(string(m), "."); found {
			scale = max(scale, len(frac))
		}
		sum.Add(sum, r)
	}
	return models.Money(sum.FloatString(scale))
}

// orderStatus is CANCELLED (cancelled_at), CLOSED (closed_at) or OPEN.
func orderStatus(o *orderJSON) string {
	switch {
	case !o.CancelledAt.IsZero():
		return models.OrderStatusCancelled
	case !o.ClosedAt.IsZero():
		return models.OrderStatusClosed
	default:
		return models.OrderStatusOpen
	}
}

// Normalize turns one Shopify REST resource (orders, customers, products;
// the bare object, as in list arrays and webhook bodies) into a Record.
func (k *Connector) Normalize(object string, raw []byte) (models.Record, error) {
	return normalize(object, raw)
}

func normalize(object string, raw []byte) (models.Record, error) {
	rec := models.Record{Object: object, Raw: append(json.RawMessage(nil), raw...)}
	var (
		data any
		c    common
	)
	switch object {
	case models.ObjectOrders:
		var o orderJSON
		if err := json.Unmarshal(raw, &o); err != nil {
			return rec, fmt.Errorf("normalize shopify order: %w", err)
		}
		u := &models.Order{
			Common:            o.unified(),
			OrderNumber:       string(o.OrderNumber),
			Email:             o.Email,
			Currency:          o.Currency,
			TotalPrice:        string(o.TotalPrice),
			SubtotalPrice:     string(o.SubtotalPrice),
			TotalTax:          string(o.TotalTax),
			FinancialStatus:   o.FinancialStatus,
			FulfillmentStatus: o.FulfillmentStatus,
			CancelledAt:       o.CancelledAt.ptr(),
		}
		if u.OrderNumber == "" {
			u.OrderNumber = strings.TrimPrefix(o.Name, "#")
		}
		if o.Customer != nil {
			u.CustomerID = string(o.Customer.ID)
			u.Customer = &models.OrderCustomer{
				CustomerID: string(o.Customer.ID), Email: cmp.Or(o.Customer.Email, o.Email),
				FirstName: o.Customer.FirstName, LastName: o.Customer.LastName, Phone: cmp.Or(o.Customer.Phone, o.Phone),
			}
		}
		if b := o.BillingAddress; b != nil {
			a := models.Address{Street: strings.TrimSpace(b.Address1 + "\n" + b.Address2), City: b.City,
				State: b.Province, PostalCode: b.Zip, Country: b.Country}
			if a != (models.Address{}) {
				u.BillingAddress = &a
			}
		}
		u.TotalShipping = totalShipping(&o)
		u.OrderStatus = orderStatus(&o)
		u.PaymentStatus = strings.ToUpper(o.FinancialStatus)
		for _, li := range o.LineItems {
			u.LineItems = append(u.LineItems, models.LineItem{
				RemoteID: string(li.ID), ProductID: string(li.ProductID), VariantID: string(li.VariantID),
				SKU: li.SKU, Title: li.Title, Quantity: int(li.Quantity), Price: string(li.Price),
			})
		}
		data, c = u, o.common
	case models.ObjectCustomers:
		var o customerJSON
		if err := json.Unmarshal(raw, &o); err != nil {
			return rec, fmt.Errorf("normalize shopify customer: %w", err)
		}
		data, c = &models.Customer{
			Common:    o.unified(),
			FirstName: o.FirstName, LastName: o.LastName, Email: o.Email, Phone: o.Phone,
			State: o.State, OrdersCount: int(o.OrdersCount), TotalSpent: string(o.TotalSpent), Tags: o.Tags,
		}, o.common
	case models.ObjectProducts:
		var o productJSON
		if err := json.Unmarshal(raw, &o); err != nil {
			return rec, fmt.Errorf("normalize shopify product: %w", err)
		}
		p := &models.Product{
			Common: o.unified(),
			Title:  o.Title, Description: o.BodyHTML, Vendor: o.Vendor, ProductType: o.ProductType,
			Status: o.Status, Tags: o.Tags,
		}
		for _, v := range o.Variants {
			mv := models.Variant{RemoteID: string(v.ID), Title: v.Title, SKU: v.SKU, Price: string(v.Price)}
			if v.InventoryQuantity != nil {
				q := int(*v.InventoryQuantity)
				mv.InventoryQuantity = &q
			}
			p.Variants = append(p.Variants, mv)
		}
		data, c = p, o.common
	default:
		return rec, fmt.Errorf("shopify %q: %w", object, connectors.ErrUnsupportedObject)
	}
	if c.ID == "" {
		return rec, fmt.Errorf("normalize shopify %s: record has no id", object)
	}
	rec.RemoteID = string(c.ID)
	rec.RemoteUpdatedAt = c.UpdatedAt.UTC()
	if c.UpdatedAt.IsZero() {
		rec.RemoteUpdatedAt = time.Time{}
	}
	rec.Data = data
	return rec, nil
}

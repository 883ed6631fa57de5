package fake

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"
)

// template returns the default fields of a new resource, shaped like
// Shopify's REST resources (money as strings, ids as numbers).
func template(resource string, s *Server) map[string]any {
	switch resource {
	case Orders:
		n := s.seq % 100000
		return map[string]any{
			"name": fmt.Sprintf("#%d", 1000+n), "order_number": 1000 + n, "number": n,
			"email": "bob.norman@mail.example.com", "contact_email": "bob.norman@mail.example.com",
			"currency": "USD", "presentment_currency": "USD",
			"total_price": "199.65", "subtotal_price": "195.67", "total_tax": "3.98", "total_discounts": "3.33",
			"financial_status": "paid", "fulfillment_status": nil, "cancelled_at": nil, "cancel_reason": nil,
			"closed_at": nil, "confirmed": true, "test": false, "tags": "", "note": nil,
			"processed_at": fmtTime(s.nowLocked()),
			"phone":        "+557734881234",
			"customer":     map[string]any{"id": 207119551, "email": "bob.norman@mail.example.com", "first_name": "Bob", "last_name": "Norman", "phone": "+16136120707"},
			"billing_address": map[string]any{
				"first_name": "Bob", "last_name": "Norman", "name": "Bob Norman", "address1": "Chestnut Street 92", "address2": "",
				"city": "Louisville", "province": "Kentucky", "province_code": "KY", "zip": "40202", "country": "United States",
				"country_code": "US", "phone": "+1(502)-459-2181", "company": nil,
			},
			"shipping_lines": []any{map[string]any{"id": 369256396, "code": "Standard", "title": "Standard Shipping", "price": "4.99", "source": "shopify"}},
			"total_shipping_price_set": map[string]any{
				"shop_money":        map[string]any{"amount": "4.99", "currency_code": "USD"},
				"presentment_money": map[string]any{"amount": "4.99", "currency_code": "USD"},
			},
			"line_items": []any{map[string]any{
				"id": 466157049, "product_id": 632910392, "variant_id": 39072856, "sku": "IPOD2008GREEN",
				"title": "IPod Nano - 8gb", "variant_title": "green", "name": "IPod Nano - 8gb - green",
				"quantity": 1, "price": "199.00", "total_discount": "0.00", "taxable": true, "requires_shipping": true,
			}},
		}
	case Customers:
		return map[string]any{
			"email": "bob.norman@mail.example.com", "first_name": "Bob", "last_name": "Norman",
			"phone": "+16136120707", "state": "disabled", "orders_count": 1, "total_spent": "199.65",
			"tags": "", "note": nil, "verified_email": true, "tax_exempt": false, "currency": "USD",
			"last_order_id": nil, "last_order_name": nil,
		}
	case Products:
		return map[string]any{
			"title": "IPod Nano - 8GB", "body_html": "<p>It's the small iPod with one very big idea: Video.</p>",
			"vendor": "Apple", "product_type": "Cult Products", "handle": "ipod-nano", "status": "active",
			"tags": "Emotive, Flash Memory, MP3, Music", "published_scope": "global",
			"variants": []any{map[string]any{
				"id": 808950810, "title": "Pink", "price": "199.00", "sku": "IPOD2008PINK", "position": 1,
				"inventory_quantity": 10, "option1": "Pink", "taxable": true,
			}},
			"options": []any{map[string]any{"name": "Color", "position": 1, "values": []any{"Pink"}}},
		}
	}
	return map[string]any{}
}

// SandboxShop and SandboxToken are the shop and the non-expiring Admin API
// token ListenAndServe seeds, so a person can call the fake at once.
const (
	SandboxShop  = "tributary-demo.myshopify.com"
	SandboxToken = "shpat_tributary_sandbox_token"
)

// Seed fills shop with a few customers, products and orders.
func (s *Server) Seed(domain string) {
	for i, name := range [][2]string{{"Bob", "Norman"}, {"Ada", "Lovelace"}, {"Grace", "Hopper"}} {
		s.Create(domain, Customers, map[string]any{"first_name": name[0], "last_name": name[1],
			"email": fmt.Sprintf("%s.%s@mail.example.com", name[0], name[1]), "orders_count": i})
	}
	for _, title := range []string{"IPod Nano - 8GB", "IPod Touch 8GB", "Shopify T-shirt"} {
		s.Create(domain, Products, map[string]any{"title": title})
	}
	for _, st := range []string{"paid", "pending", "refunded"} {
		s.Create(domain, Orders, map[string]any{"financial_status": st})
	}
}

// ListenAndServe serves a seeded fake on addr until ctx ends: shop
// SandboxShop with token SandboxToken, plus the OAuth endpoints for any
// shop with the default (or given) client credentials.
func ListenAndServe(ctx context.Context, addr string, opts ...Option) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	return Serve(ctx, ln, opts...)
}

// Serve is ListenAndServe on an open listener.
func Serve(ctx context.Context, ln net.Listener, opts ...Option) error {
	s := New(opts...)
	s.AddToken(SandboxShop, SandboxToken)
	s.Seed(SandboxShop)
	srv := &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		shut, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(shut)
	}()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

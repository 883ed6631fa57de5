package fake

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strings"
)

// topics lists the webhook topics the fake accepts and sends.
var topics = map[string]bool{
	"orders/create": true, "orders/updated": true, "orders/delete": true,
	"orders/paid": true, "orders/cancelled": true, "orders/fulfilled": true,
	"customers/create": true, "customers/update": true, "customers/delete": true,
	"products/create": true, "products/update": true, "products/delete": true,
	"app/uninstalled": true, "shop/update": true,
}

// topicFor names a change of resource: orders use "updated", the others
// "update".
func topicFor(resource, action string) string {
	if action == "update" && resource == Orders {
		return "orders/updated"
	}
	return resource + "/" + action
}

// emitLocked builds one signed delivery per subscription to the change's
// topic, records it in the shop's outbox and returns those to POST.
func (s *Server) emitLocked(sh *shop, resource, action string, it *item, deleted bool) []*Delivery {
	topic := topicFor(resource, action)
	var body []byte
	if deleted {
		body, _ = json.Marshal(map[string]any{"id": it.id})
	} else {
		body, _ = json.Marshal(s.render(sh, resource, it))
	}
	ids := make([]int64, 0, len(sh.webhooks))
	for id, w := range sh.webhooks {
		if w.topic == topic {
			ids = append(ids, id)
		}
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	if len(ids) == 0 {
		return nil
	}
	s.seq++
	eventID := uuidOf(s.seq)
	triggered := s.now().UTC().Format("2006-01-02T15:04:05.000000000Z")
	var out []*Delivery
	for _, id := range ids {
		s.seq++
		h := http.Header{}
		h.Set("Content-Type", "application/json")
		h.Set("X-Shopify-Topic", topic)
		h.Set("X-Shopify-Hmac-Sha256", sign(s.clientSecret, body))
		h.Set("X-Shopify-Shop-Domain", sh.domain)
		h.Set("X-Shopify-API-Version", s.apiVersion)
		h.Set("X-Shopify-Webhook-Id", uuidOf(s.seq))
		h.Set("X-Shopify-Event-Id", eventID)
		h.Set("X-Shopify-Triggered-At", triggered)
		d := &Delivery{URL: sh.webhooks[id].address, Header: h, Body: body}
		sh.outbox = append(sh.outbox, d)
		out = append(out, d)
	}
	return out
}

// uuidOf formats n as a version-4-shaped UUID (deterministic).
func uuidOf(n int64) string {
	return fmt.Sprintf("%08x-%04x-4%03x-8%03x-%012x", uint32(n>>16), uint16(n), uint16(n>>8)&0xfff, uint16(n)&0xfff, n)
}

// deliver POSTs deliveries to their addresses (outside the lock). Shopify
// gives a receiver 5 s; failures are recorded as Status 0 and not retried.
func (s *Server) deliver(ds []*Delivery) {
	if !s.post {
		return
	}
	for _, d := range ds {
		if !strings.HasPrefix(d.URL, "http://") && !strings.HasPrefix(d.URL, "https://") {
			continue
		}
		req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, d.URL, bytes.NewReader(d.Body))
		if err != nil {
			continue
		}
		req.Header = d.Header.Clone()
		resp, err := s.client.Do(req)
		if err != nil {
			continue
		}
		resp.Body.Close()
		s.mu.Lock()
		d.Status = resp.StatusCode
		s.mu.Unlock()
	}
}

// AddWebhook subscribes shop (created if needed) to topic at address, as
// POST webhooks.json does, and returns the subscription id. A subscription
// to the same topic and address already there is returned as is.
func (s *Server) AddWebhook(domain, topic, address string) (int64, error) {
	if !topics[topic] {
		return 0, fmt.Errorf("fake shopify: invalid topic %q", topic)
	}
	if address == "" {
		return 0, fmt.Errorf("fake shopify: address can't be blank")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	sh := s.addShopLocked(domain)
	for id, wh := range sh.webhooks {
		if wh.topic == topic && wh.address == address {
			return id, nil
		}
	}
	now := s.nowLocked()
	wh := &subscription{id: s.nextID(), topic: topic, address: address, created: now, updated: now}
	sh.webhooks[wh.id] = wh
	return wh.id, nil
}

package models

import (
	"path"
	"slices"
	"strings"
)

// Update types of a change event.
const (
	UpdateCreated = "created"
	UpdateUpdated = "updated"
	UpdateDeleted = "deleted"
)

// Categories of unified objects.
const (
	CategoryCRM        = "crm"
	CategoryCommerce   = "commerce"
	CategoryConnection = "connection"
	CategorySync       = "sync"
)

// Unified object names; a data topic is "<category>/<object>".
const (
	ObjectAccounts      = "accounts"
	ObjectContacts      = "contacts"
	ObjectLeads         = "leads"
	ObjectNotes         = "notes"
	ObjectOpportunities = "opportunities"
	ObjectStages        = "stages"
	ObjectTasks         = "tasks"
	ObjectUsers         = "users"
	ObjectOrders        = "orders"
	ObjectCustomers     = "customers"
	ObjectProducts      = "products"
)

// System topics.
const (
	TopicConnectionCreated        = "connection/created"
	TopicConnectionDeleted        = "connection/deleted"
	TopicConnectionReauthRequired = "connection/reauth_required"
	TopicSyncCompleted            = "sync/completed"
	TopicSyncFailed               = "sync/failed"
	// TopicWebhookDisabled tells an account's other subscriptions that the
	// engine disabled one of its webhooks (410, or failing too long).
	TopicWebhookDisabled = "webhook/disabled"
)

// objectCategory maps every unified object to its category.
var objectCategory = map[string]string{
	ObjectAccounts: CategoryCRM, ObjectContacts: CategoryCRM, ObjectLeads: CategoryCRM,
	ObjectNotes: CategoryCRM, ObjectOpportunities: CategoryCRM, ObjectStages: CategoryCRM,
	ObjectTasks: CategoryCRM, ObjectUsers: CategoryCRM,
	ObjectOrders: CategoryCommerce, ObjectCustomers: CategoryCommerce, ObjectProducts: CategoryCommerce,
}

// Topics lists every known topic, data topics first, in a stable order.
var Topics = []string{
	"crm/accounts", "crm/contacts", "crm/leads", "crm/notes", "crm/opportunities",
	"crm/stages", "crm/tasks", "crm/users",
	"commerce/orders", "commerce/customers", "commerce/products",
	TopicConnectionCreated, TopicConnectionDeleted, TopicConnectionReauthRequired,
	TopicSyncCompleted, TopicSyncFailed, TopicWebhookDisabled,
}

// Objects lists every unified object name.
func Objects() []string {
	out := make([]string, 0, len(objectCategory))
	for _, t := range Topics {
		if cat, obj, _ := strings.Cut(t, "/"); objectCategory[obj] == cat {
			out = append(out, obj)
		}
	}
	return out
}

// TopicFor returns the topic of a unified object ("contacts" → "crm/contacts"),
// or "" when the object is unknown.
func TopicFor(object string) string {
	cat, ok := objectCategory[object]
	if !ok {
		return ""
	}
	return cat + "/" + object
}

// CategoryOf returns the category part of a topic.
func CategoryOf(topic string) string {
	cat, _, _ := strings.Cut(topic, "/")
	return cat
}

// IsKnownTopic reports whether topic is one of Topics.
func IsKnownTopic(topic string) bool { return slices.Contains(Topics, topic) }

// ValidTopicPattern reports whether p is a known topic, "<category>/*" for a
// known category, or "*".
func ValidTopicPattern(p string) bool {
	if p == "*" || IsKnownTopic(p) {
		return true
	}
	cat, rest, ok := strings.Cut(p, "/")
	if !ok || rest != "*" {
		return false
	}
	for _, t := range Topics {
		if CategoryOf(t) == cat {
			return true
		}
	}
	return false
}

// TopicMatches reports whether topic matches pattern ("*", "crm/*", exact).
func TopicMatches(pattern, topic string) bool {
	if pattern == "*" || pattern == topic {
		return true
	}
	ok, _ := path.Match(pattern, topic)
	return ok
}

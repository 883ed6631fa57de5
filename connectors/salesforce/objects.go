package salesforce

import "github.com/tributary/tributary/models"

// objectSpec is what the connector knows about one Salesforce sObject: the
// unified object it feeds, the fields it selects and whether the sObject is
// replicateable (supports the getDeleted resource).
type objectSpec struct {
	Unified string
	SObject string
	Fields  []string
	// GetDeleted reports whether sobjects/{SObject}/deleted/ is available.
	GetDeleted bool
}

// Field lists follow testdata/object_field_lists.json (standard fields from
// the Salesforce Object Reference). OpportunityStage.ApiName is left out: the
// fixture marks it uncertain across API versions and a missing field fails
// the whole query with INVALID_FIELD.
var objectSpecs = []objectSpec{
	{Unified: models.ObjectAccounts, SObject: "Account", GetDeleted: true, Fields: []string{
		"Id", "Name", "Type", "ParentId", "BillingStreet", "BillingCity", "BillingState", "BillingPostalCode",
		"BillingCountry", "ShippingStreet", "ShippingCity", "ShippingState", "ShippingPostalCode", "ShippingCountry",
		"Phone", "Fax", "Website", "Industry", "AnnualRevenue", "NumberOfEmployees", "Description", "OwnerId",
		"AccountNumber", "AccountSource", "Rating", "Site", "LastActivityDate", "LastViewedDate", "IsDeleted",
		"MasterRecordId", "CreatedDate", "CreatedById", "LastModifiedDate", "LastModifiedById", "SystemModstamp",
	}},
	{Unified: models.ObjectContacts, SObject: "Contact", GetDeleted: true, Fields: []string{
		"Id", "AccountId", "FirstName", "LastName", "Name", "Salutation", "Title", "Department", "Email", "Phone",
		"MobilePhone", "HomePhone", "OtherPhone", "Fax", "MailingStreet", "MailingCity", "MailingState",
		"MailingPostalCode", "MailingCountry", "Birthdate", "LeadSource", "Description", "OwnerId", "ReportsToId",
		"HasOptedOutOfEmail", "DoNotCall", "EmailBouncedDate", "LastActivityDate", "IsDeleted", "MasterRecordId",
		"CreatedDate", "CreatedById", "LastModifiedDate", "LastModifiedById", "SystemModstamp",
	}},
	{Unified: models.ObjectLeads, SObject: "Lead", GetDeleted: true, Fields: []string{
		"Id", "FirstName", "LastName", "Name", "Salutation", "Title", "Company", "Email", "Phone", "MobilePhone",
		"Street", "City", "State", "PostalCode", "Country", "Website", "Industry", "AnnualRevenue",
		"NumberOfEmployees", "LeadSource", "Status", "Rating", "Description", "OwnerId", "IsConverted",
		"ConvertedDate", "ConvertedAccountId", "ConvertedContactId", "ConvertedOpportunityId", "IsUnreadByOwner",
		"HasOptedOutOfEmail", "DoNotCall", "LastActivityDate", "IsDeleted", "MasterRecordId", "CreatedDate",
		"CreatedById", "LastModifiedDate", "LastModifiedById", "SystemModstamp",
	}},
	{Unified: models.ObjectOpportunities, SObject: "Opportunity", GetDeleted: true, Fields: []string{
		"Id", "AccountId", "Name", "Description", "StageName", "Amount", "Probability", "ExpectedRevenue",
		"CloseDate", "Type", "NextStep", "LeadSource", "IsClosed", "IsWon", "ForecastCategory",
		"ForecastCategoryName", "CampaignId", "Pricebook2Id", "OwnerId", "HasOpportunityLineItem", "FiscalYear",
		"FiscalQuarter", "LastActivityDate", "IsDeleted", "CreatedDate", "CreatedById", "LastModifiedDate",
		"LastModifiedById", "SystemModstamp",
	}},
	// OpportunityStage is a setup object: query and retrieve only, no
	// getDeleted. Its deletions are found by full scans.
	{Unified: models.ObjectStages, SObject: "OpportunityStage", GetDeleted: false, Fields: []string{
		"Id", "MasterLabel", "IsActive", "SortOrder", "IsClosed", "IsWon", "ForecastCategory",
		"ForecastCategoryName", "DefaultProbability", "Description", "CreatedById", "CreatedDate",
		"LastModifiedById", "LastModifiedDate", "SystemModstamp",
	}},
	{Unified: models.ObjectTasks, SObject: "Task", GetDeleted: true, Fields: []string{
		"Id", "WhoId", "WhatId", "Subject", "ActivityDate", "Status", "Priority", "IsHighPriority", "OwnerId",
		"Description", "Type", "TaskSubtype", "IsClosed", "AccountId", "CallDurationInSeconds", "CallType",
		"CallDisposition", "ReminderDateTime", "IsReminderSet", "CompletedDateTime", "IsRecurrence", "IsDeleted",
		"IsArchived", "CreatedDate", "CreatedById", "LastModifiedDate", "LastModifiedById", "SystemModstamp",
	}},
	// Note is the classic Note object (replicateable: getDeleted works).
	{Unified: models.ObjectNotes, SObject: "Note", GetDeleted: true, Fields: []string{
		"Id", "ParentId", "Title", "Body", "IsPrivate", "OwnerId", "IsDeleted", "CreatedDate", "CreatedById",
		"LastModifiedDate", "LastModifiedById", "SystemModstamp",
	}},
	// Users are never deleted in Salesforce (they are deactivated, which is
	// an update of IsActive); getDeleted is supported and simply lists none.
	{Unified: models.ObjectUsers, SObject: "User", GetDeleted: true, Fields: []string{
		"Id", "Username", "LastName", "FirstName", "Name", "CompanyName", "Division", "Department", "Title",
		"Email", "Phone", "MobilePhone", "Alias", "CommunityNickname", "IsActive", "TimeZoneSidKey",
		"LocaleSidKey", "EmailEncodingKey", "LanguageLocaleKey", "UserRoleId", "ProfileId", "UserType",
		"ManagerId", "LastLoginDate", "CreatedDate", "CreatedById", "LastModifiedDate", "LastModifiedById",
		"SystemModstamp",
	}},
}

// specFor returns the spec of a unified object.
func specFor(object string) (objectSpec, bool) {
	for _, s := range objectSpecs {
		if s.Unified == object {
			return s, true
		}
	}
	return objectSpec{}, false
}

// Key prefixes of the record ids Salesforce hands out, used to tell what a
// polymorphic reference (Note.ParentId, Task.WhoId/WhatId) points at.
const (
	prefixAccount     = "001"
	prefixContact     = "003"
	prefixOpportunity = "006"
)

package fake

import "strings"

// schema lists the queryable fields of every sObject the fake serves, per
// the connector's testdata/object_field_lists.json (Salesforce Object
// Reference, standard fields). Field names are case-insensitive in SOQL.
var schema = map[string][]string{
	"Account": {"Id", "Name", "Type", "ParentId", "BillingStreet", "BillingCity", "BillingState", "BillingPostalCode",
		"BillingCountry", "ShippingStreet", "ShippingCity", "ShippingState", "ShippingPostalCode", "ShippingCountry",
		"Phone", "Fax", "Website", "Industry", "AnnualRevenue", "NumberOfEmployees", "Description", "OwnerId",
		"AccountNumber", "AccountSource", "Rating", "Site", "LastActivityDate", "LastViewedDate", "IsDeleted",
		"MasterRecordId", "CreatedDate", "CreatedById", "LastModifiedDate", "LastModifiedById", "SystemModstamp"},
	"Contact": {"Id", "AccountId", "FirstName", "LastName", "Name", "Salutation", "Title", "Department", "Email", "Phone",
		"MobilePhone", "HomePhone", "OtherPhone", "Fax", "MailingStreet", "MailingCity", "MailingState",
		"MailingPostalCode", "MailingCountry", "Birthdate", "LeadSource", "Description", "OwnerId", "ReportsToId",
		"HasOptedOutOfEmail", "DoNotCall", "EmailBouncedDate", "LastActivityDate", "IsDeleted", "MasterRecordId",
		"CreatedDate", "CreatedById", "LastModifiedDate", "LastModifiedById", "SystemModstamp"},
	"Lead": {"Id", "FirstName", "LastName", "Name", "Salutation", "Title", "Company", "Email", "Phone", "MobilePhone",
		"Street", "City", "State", "PostalCode", "Country", "Website", "Industry", "AnnualRevenue",
		"NumberOfEmployees", "LeadSource", "Status", "Rating", "Description", "OwnerId", "IsConverted",
		"ConvertedDate", "ConvertedAccountId", "ConvertedContactId", "ConvertedOpportunityId", "IsUnreadByOwner",
		"HasOptedOutOfEmail", "DoNotCall", "LastActivityDate", "IsDeleted", "MasterRecordId", "CreatedDate",
		"CreatedById", "LastModifiedDate", "LastModifiedById", "SystemModstamp"},
	"Opportunity": {"Id", "AccountId", "Name", "Description", "StageName", "Amount", "Probability", "ExpectedRevenue",
		"CloseDate", "Type", "NextStep", "LeadSource", "IsClosed", "IsWon", "ForecastCategory",
		"ForecastCategoryName", "CampaignId", "Pricebook2Id", "OwnerId", "HasOpportunityLineItem", "FiscalYear",
		"FiscalQuarter", "LastActivityDate", "IsDeleted", "CreatedDate", "CreatedById", "LastModifiedDate",
		"LastModifiedById", "SystemModstamp"},
	"OpportunityStage": {"Id", "MasterLabel", "ApiName", "IsActive", "SortOrder", "IsClosed", "IsWon", "ForecastCategory",
		"ForecastCategoryName", "DefaultProbability", "Description", "CreatedById", "CreatedDate",
		"LastModifiedById", "LastModifiedDate", "SystemModstamp"},
	"Task": {"Id", "WhoId", "WhatId", "Subject", "ActivityDate", "Status", "Priority", "IsHighPriority", "OwnerId",
		"Description", "Type", "TaskSubtype", "IsClosed", "AccountId", "CallDurationInSeconds", "CallType",
		"CallDisposition", "ReminderDateTime", "IsReminderSet", "CompletedDateTime", "IsRecurrence", "IsDeleted",
		"IsArchived", "CreatedDate", "CreatedById", "LastModifiedDate", "LastModifiedById", "SystemModstamp"},
	"Note": {"Id", "ParentId", "Title", "Body", "IsPrivate", "OwnerId", "IsDeleted", "CreatedDate", "CreatedById",
		"LastModifiedDate", "LastModifiedById", "SystemModstamp"},
	"User": {"Id", "Username", "LastName", "FirstName", "Name", "CompanyName", "Division", "Department", "Title",
		"Email", "Phone", "MobilePhone", "Alias", "CommunityNickname", "IsActive", "TimeZoneSidKey",
		"LocaleSidKey", "EmailEncodingKey", "LanguageLocaleKey", "UserRoleId", "ProfileId", "UserType",
		"ManagerId", "LastLoginDate", "CreatedDate", "CreatedById", "LastModifiedDate", "LastModifiedById",
		"SystemModstamp"},
}

// replicateable sObjects support getDeleted; OpportunityStage (a setup
// object: describe, query, retrieve only) does not.
var replicateable = map[string]bool{
	"Account": true, "Contact": true, "Lead": true, "Opportunity": true, "Task": true, "Note": true, "User": true,
}

// canonicalSObject resolves a case-insensitive sObject name.
func canonicalSObject(name string) (string, bool) {
	for s := range schema {
		if strings.EqualFold(s, name) {
			return s, true
		}
	}
	return "", false
}

// canonicalField resolves a case-insensitive field name of sobject.
func canonicalField(sobject, name string) (string, bool) {
	for _, f := range schema[sobject] {
		if strings.EqualFold(f, name) {
			return f, true
		}
	}
	return "", false
}

// hasField reports whether sobject has field (exact name).
func hasField(sobject, field string) bool {
	for _, f := range schema[sobject] {
		if f == field {
			return true
		}
	}
	return false
}

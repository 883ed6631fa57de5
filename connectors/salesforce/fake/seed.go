package fake

// SandboxClientID and SandboxClientSecret are the connected app `tributary
// sandbox --provider salesforce` registers (WithClient), so the token
// endpoint checks client credentials as Salesforce does.
const (
	SandboxClientID     = "fake-salesforce-client-id"
	SandboxClientSecret = "fake-salesforce-client-secret"
)

// Seed fills org with a small demo CRM (standard opportunity stages, a few
// accounts, contacts, leads, opportunities, tasks and notes) so a human
// running the sandbox sees data.
func (f *Fake) Seed(org string) error {
	for i, s := range standardStages {
		if _, err := f.Create(org, "OpportunityStage", map[string]any{
			"MasterLabel": s.Label, "ApiName": s.Label, "IsActive": true, "SortOrder": i + 1, "IsClosed": s.Closed,
			"IsWon": s.Won, "ForecastCategory": s.Forecast, "ForecastCategoryName": s.Forecast, "DefaultProbability": s.Prob,
		}); err != nil {
			return err
		}
	}
	acme, err := f.Create(org, "Account", map[string]any{
		"Name": "Acme Corporation", "Website": "https://www.acme.example", "Industry": "Manufacturing",
		"Phone": "+1 415 555 0100", "NumberOfEmployees": 250, "BillingStreet": "1 Market St",
		"BillingCity": "San Francisco", "BillingState": "CA", "BillingPostalCode": "94105", "BillingCountry": "USA",
	})
	if err != nil {
		return err
	}
	globex, err := f.Create(org, "Account", map[string]any{"Name": "Globex", "Website": "globex.example", "Industry": "Energy"})
	if err != nil {
		return err
	}
	grace, err := f.Create(org, "Contact", map[string]any{
		"FirstName": "Grace", "LastName": "Hopper", "Email": "grace@acme.example", "Title": "CTO", "AccountId": acme,
	})
	if err != nil {
		return err
	}
	if _, err := f.Create(org, "Contact", map[string]any{"FirstName": "Hank", "LastName": "Scorpio", "Email": "hank@globex.example", "AccountId": globex}); err != nil {
		return err
	}
	if _, err := f.Create(org, "Lead", map[string]any{"FirstName": "Lin", "LastName": "Beifong", "Company": "Metal Works", "Email": "lin@metal.example", "Status": "Open - Not Contacted", "LeadSource": "Web"}); err != nil {
		return err
	}
	deal, err := f.Create(org, "Opportunity", map[string]any{"Name": "Acme — 500 widgets", "AccountId": acme, "StageName": "Prospecting", "Amount": 125000.5, "CloseDate": "2026-12-31"})
	if err != nil {
		return err
	}
	if _, err := f.Create(org, "Opportunity", map[string]any{"Name": "Globex renewal", "AccountId": globex, "StageName": "Closed Won", "Amount": 42000, "CloseDate": "2026-10-01"}); err != nil {
		return err
	}
	if _, err := f.Create(org, "Task", map[string]any{"Subject": "Call Grace", "WhoId": grace, "WhatId": deal, "Status": "Not Started", "Priority": "High", "ActivityDate": "2026-12-01"}); err != nil {
		return err
	}
	_, err = f.Create(org, "Note", map[string]any{"ParentId": acme, "Title": "Kick-off", "Body": "Met the team; next step is a demo."})
	return err
}

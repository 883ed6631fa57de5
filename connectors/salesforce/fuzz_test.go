package salesforce

import (
	"encoding/json"
	"os"
	"testing"

	"github.com/tributary/tributary/models"
)

func seedFile(f *testing.F, path string) []byte {
	f.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	return b
}

// FuzzDecodeQueryPage: any body either parses into a page whose paging is
// safe to follow, or errors; never panics.
func FuzzDecodeQueryPage(f *testing.F) {
	seedFile(f, "testdata/query_response_docs.json")
	f.Add([]byte(`{"totalSize":0,"done":true,"records":[]}`))
	f.Add([]byte(`{"totalSize":3,"done":false,"nextRecordsUrl":"/services/data/v60.0/query/01gRO0000016PIAYA2-2000","records":[]}`))
	f.Add([]byte(`{"totalSize":3,"done":false,"nextRecordsUrl":"//evil.example/x","records":[]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		p, err := decodeQueryPage(body)
		if err != nil {
			return
		}
		if !*p.Done && !validNextRecordsURL(p.NextRecordsURL) {
			t.Fatalf("accepted unsafe nextRecordsUrl %q", p.NextRecordsURL)
		}
	})
}

// FuzzNormalize: every object's normalizer errors or returns a record with
// an id and data; never panics.
func FuzzNormalize(f *testing.F) {
	var page struct {
		Records []json.RawMessage `json:"records"`
	}
	b := seedFile(f, "testdata/query_response_docs.json")
	_ = json.Unmarshal(b, &page)
	for _, r := range page.Records {
		f.Add([]byte(r))
	}
	if ents, err := os.ReadDir("testdata/golden"); err == nil {
		for _, e := range ents {
			gb, err := os.ReadFile("testdata/golden/" + e.Name())
			if err != nil {
				continue
			}
			var g struct {
				Raw json.RawMessage `json:"raw"`
			}
			if json.Unmarshal(gb, &g) == nil {
				f.Add([]byte(g.Raw))
			}
		}
	}
	f.Add([]byte(`{"Id":"006x","Amount":1e308,"Probability":-5,"CloseDate":"2026-02-30","NumberOfEmployees":1.5}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		for _, s := range objectSpecs {
			rec, err := normalize(s.Unified, raw)
			if err != nil {
				continue
			}
			if rec.RemoteID == "" || rec.Data == nil || rec.Object != s.Unified {
				t.Fatalf("%s: incomplete record %+v", s.Unified, rec)
			}
			if _, err := json.Marshal(rec.Data); err != nil {
				t.Fatalf("%s: data does not marshal: %v", s.Unified, err)
			}
		}
		if _, err := normalize(models.ObjectOrders, raw); err == nil {
			t.Fatal("orders are not a Salesforce object")
		}
	})
}

// FuzzDecodeDeleted: getDeleted answers parse or error; never panic.
func FuzzDecodeDeleted(f *testing.F) {
	seedFile(f, "testdata/get_deleted_docs.json")
	f.Add([]byte(`{"deletedRecords":[],"earliestDateAvailable":"2013-05-03T15:57:00.000+0000","latestDateCovered":"2013-05-08T21:20:00.000+0000"}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		dels, _, err := decodeDeleted(body)
		if err != nil {
			return
		}
		for _, d := range dels {
			if d.RemoteID == "" || d.DeletedAt.IsZero() && d.DeletedAt.Location() == nil {
				t.Fatalf("bad deletion %+v", d)
			}
		}
	})
}

// FuzzDecodeErrors: any error body yields at least one element.
func FuzzDecodeErrors(f *testing.F) {
	b, err := os.ReadFile("testdata/rest_error_responses.json")
	if err != nil {
		f.Fatal(err)
	}
	var all map[string]json.RawMessage
	_ = json.Unmarshal(b, &all)
	for _, v := range all {
		f.Add([]byte(v))
	}
	f.Add([]byte(`<html>Bad gateway</html>`))
	f.Fuzz(func(t *testing.T, body []byte) {
		if errs := decodeErrors(body); len(errs) == 0 {
			t.Fatal("no error element")
		}
		_ = classify(400+len(body)%200, nil, body)
	})
}

// FuzzParseIdentityURL: the id of a token response.
func FuzzParseIdentityURL(f *testing.F) {
	f.Add("https://login.salesforce.com/id/00Dx0000000BV7z/005x00000012Q9P")
	f.Add("https://login.salesforce.com/id/00DRO0000000001AAA/005RO0000000002AAA")
	f.Add("https://login.salesforce.com/id/../005x00000012Q9P")
	f.Fuzz(func(t *testing.T, s string) {
		org, user, err := parseIdentityURL(s)
		if err == nil && (!isID(org, "00D") || !isID(user, "005")) {
			t.Fatalf("accepted %q → %q %q", s, org, user)
		}
	})
}

// FuzzParseTime: Salesforce datetimes.
func FuzzParseTime(f *testing.F) {
	f.Add("2026-11-22T10:23:34.000+0000")
	f.Add("2013-05-07T22:07:19.000+0000")
	f.Add("2026-11-22T10:23:34Z")
	f.Fuzz(func(t *testing.T, s string) {
		tm, err := ParseTime(s)
		if err == nil && tm.Location().String() != "UTC" {
			t.Fatalf("%q not UTC", s)
		}
	})
}

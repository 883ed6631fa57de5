package fake

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestParseSOQL(t *testing.T) {
	q, err := parseSOQL("SELECT Id, Name, SystemModstamp FROM Account WHERE SystemModstamp >= 2026-11-22T10:00:00Z ORDER BY SystemModstamp, Id LIMIT 5")
	require.NoError(t, err)
	require.Equal(t, &soqlQuery{
		Fields: []string{"Id", "Name", "SystemModstamp"}, SObject: "Account",
		Where:   &soqlFilter{Field: "SystemModstamp", Op: ">=", Value: time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)},
		OrderBy: []soqlOrder{{Field: "SystemModstamp"}, {Field: "Id"}}, Limit: 5,
	}, q)
	q, err = parseSOQL("select id,name from account order by systemmodstamp desc")
	require.NoError(t, err)
	require.Equal(t, []string{"Id", "Name"}, q.Fields)
	require.True(t, q.OrderBy[0].Desc)

	for soql, code := range map[string]string{
		"":                                        "MALFORMED_QUERY",
		"SELECT FROM Account":                     "MALFORMED_QUERY",
		"SELECT Id FROM":                          "MALFORMED_QUERY",
		"SELECT Id FROM Foo__c":                   "INVALID_TYPE",
		"SELECT Bogus FROM Account":               "INVALID_FIELD",
		"SELECT Id, Id FROM Account":              "INVALID_FIELD",
		"SELECT COUNT() FROM Account":             "MALFORMED_QUERY",
		"SELECT Account.Name FROM Contact":        "MALFORMED_QUERY",
		"SELECT Id FROM Account WHERE Name = 'x'": "MALFORMED_QUERY",
		"SELECT Id FROM Account WHERE SystemModstamp >= '2026-11-22T10:00:00Z'": "INVALID_QUERY_FILTER_OPERATOR",
		"SELECT Id FROM Account WHERE SystemModstamp >= 2026-11-22":             "MALFORMED_QUERY",
		"SELECT Id FROM Account ORDER SystemModstamp":                           "MALFORMED_QUERY",
		"SELECT Id FROM Account LIMIT x":                                        "MALFORMED_QUERY",
		"SELECT Id FROM Account trailing":                                       "MALFORMED_QUERY",
	} {
		_, err := parseSOQL(soql)
		require.Error(t, err, soql)
		require.Equal(t, code, err.(*soqlError).Code, soql)
	}
}

// FuzzParseSOQL: the fake's parser of inbound queries never panics and
// returns only known fields.
func FuzzParseSOQL(f *testing.F) {
	f.Add("SELECT Id, Name FROM Account WHERE SystemModstamp >= 2026-11-22T10:00:00Z ORDER BY SystemModstamp, Id")
	f.Add("SELECT Id FROM Contact LIMIT 10")
	f.Add("SELECT Id FROM Lead WHERE SystemModstamp > '2026'")
	f.Fuzz(func(t *testing.T, q string) {
		p, err := parseSOQL(q)
		if err != nil {
			if _, ok := err.(*soqlError); !ok {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		for _, fl := range p.Fields {
			if !hasField(p.SObject, fl) {
				t.Fatalf("unknown field %s accepted", fl)
			}
		}
	})
}

func TestWithChecksum(t *testing.T) {
	// Documented example pair: 001A0000006Vm9r → 001A0000006Vm9rIAC.
	require.Equal(t, "001A0000006Vm9rIAC", withChecksum("001A0000006Vm9r"))
}

func do(t *testing.T, srv *httptest.Server, method, path, token string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, srv.URL+path, nil)
	require.NoError(t, err)
	if token != "" {
		req.Header.Set("Authorization", token)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, b
}

func TestAPIErrorsAndPaging(t *testing.T) {
	now := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	f := New(WithClock(func() time.Time { return now }), WithPageSize(2))
	srv := httptest.NewServer(f)
	defer srv.Close()
	org := f.DefaultOrg()
	access, _, err := f.Tokens(org)
	require.NoError(t, err)
	bearer := "Bearer " + access

	st, body := do(t, srv, "GET", "/services/data/v60.0/query?q=SELECT+Id+FROM+Account", "")
	require.Equal(t, 401, st)
	require.JSONEq(t, `[{"message":"Session expired or invalid","errorCode":"INVALID_SESSION_ID"}]`, string(body))
	st, body = do(t, srv, "GET", "/services/data/v60.0/query?q=SELECT+Id+FROM+Account", "Basic abc")
	require.Equal(t, 401, st)
	require.JSONEq(t, `[{"message":"INVALID_HEADER_TYPE","errorCode":"INVALID_AUTH_HEADER"}]`, string(body))
	st, body = do(t, srv, "GET", "/services/data/v60.0/nope", bearer)
	require.Equal(t, 404, st)
	require.JSONEq(t, `[{"errorCode":"NOT_FOUND","message":"The requested resource does not exist"}]`, string(body))
	// Retired versions (7.0–30.0, Salesforce API End-of-Life policy) answer
	// 410 GONE; versions newer than the current release do not exist.
	for _, v := range []string{"v20.0", "v30.0"} {
		st, _ = do(t, srv, "GET", "/services/data/"+v+"/query?q=SELECT+Id+FROM+Account", bearer)
		require.Equal(t, 410, st, v)
	}
	st, _ = do(t, srv, "GET", "/services/data/v31.0/query?q=SELECT+Id+FROM+Account", bearer)
	require.Equal(t, 200, st)
	st, _ = do(t, srv, "GET", "/services/data/v99.0/query?q=SELECT+Id+FROM+Account", bearer)
	require.Equal(t, 404, st)
	st, body = do(t, srv, "GET", "/services/data/v60.0/query?q="+url.QueryEscape("SELECT Id FROM Account WHERE Name = 'x'"), bearer)
	require.Equal(t, 400, st)
	require.Contains(t, string(body), `"errorCode":"MALFORMED_QUERY"`)

	for range 5 {
		_, err := f.Create(org, "Account", map[string]any{"Name": "A"})
		require.NoError(t, err)
	}
	path := "/services/data/v60.0/query?q=" + url.QueryEscape("SELECT Id, Name FROM Account ORDER BY SystemModstamp, Id")
	var ids []string
	for pages := 0; ; pages++ {
		require.Less(t, pages, 3)
		st, body = do(t, srv, "GET", path, bearer)
		require.Equal(t, 200, st, string(body))
		var qr queryResponse
		require.NoError(t, json.Unmarshal(body, &qr))
		require.Equal(t, 5, qr.TotalSize)
		for _, r := range qr.Records {
			var rec struct {
				Attributes struct{ Type, URL string }
				ID         string `json:"Id"`
			}
			require.NoError(t, json.Unmarshal(r, &rec))
			require.Equal(t, "Account", rec.Attributes.Type)
			require.Equal(t, "/services/data/v60.0/sobjects/Account/"+rec.ID, rec.Attributes.URL)
			ids = append(ids, rec.ID)
		}
		if qr.Done {
			require.Empty(t, qr.NextRecordsURL)
			break
		}
		require.True(t, strings.HasPrefix(qr.NextRecordsURL, "/services/data/v60.0/query/01g"), qr.NextRecordsURL)
		path = qr.NextRecordsURL
	}
	require.Len(t, ids, 5)
	// A used-up locator is gone.
	st, body = do(t, srv, "GET", path, bearer)
	require.Equal(t, 400, st)
	require.Contains(t, string(body), "INVALID_QUERY_LOCATOR")

	f.FailNext(org, FailRateLimit, 1)
	st, body = do(t, srv, "GET", "/services/data/v60.0/sobjects/Account/"+ids[0], bearer)
	require.Equal(t, 403, st)
	require.JSONEq(t, `[{"message":"TotalRequests Limit exceeded.","errorCode":"REQUEST_LIMIT_EXCEEDED"}]`, string(body))
	st, _ = do(t, srv, "GET", "/services/data/v60.0/sobjects/Account/"+ids[0], bearer)
	require.Equal(t, 200, st)

	// getDeleted: window edges.
	require.NoError(t, f.Delete(org, "Account", ids[0]))
	q := func(start, end time.Time) string {
		return "/services/data/v60.0/sobjects/Account/deleted/?" + url.Values{"start": {start.Format(time.RFC3339)}, "end": {end.Format(time.RFC3339)}}.Encode()
	}
	st, body = do(t, srv, "GET", q(now.Add(-time.Hour), now), bearer)
	require.Equal(t, 200, st)
	require.JSONEq(t, `{"deletedRecords":[{"id":"`+ids[0]+`","deletedDate":"2026-11-22T10:00:00.000+0000"}],"earliestDateAvailable":"2026-11-07T10:00:00.000+0000","latestDateCovered":"2026-11-22T10:00:00.000+0000"}`, string(body))
	st, body = do(t, srv, "GET", q(now.Add(-16*24*time.Hour), now), bearer)
	require.Equal(t, 400, st)
	require.Contains(t, string(body), "INVALID_REPLICATION_DATE")
	st, body = do(t, srv, "GET", q(now.Add(-time.Minute), now), bearer)
	require.Equal(t, 400, st, "start must precede end by more than a minute")
	require.Contains(t, string(body), "INVALID_REPLICATION_DATE")
	st, _ = do(t, srv, "GET", "/services/data/v60.0/sobjects/OpportunityStage/deleted/?start=2026-11-22T09:00:00Z&end=2026-11-22T10:00:00Z", bearer)
	require.Equal(t, 404, st, "OpportunityStage is not replicateable")

	// Sessions expire silently after the session timeout.
	now = now.Add(DefaultSessionTTL)
	st, body = do(t, srv, "GET", "/services/data/v60.0/sobjects/Account/"+ids[1], bearer)
	require.Equal(t, 401, st)
	require.Contains(t, string(body), "INVALID_SESSION_ID")
}

// TestQueryAllUpdatedAndCoverage: queryAll returns the recycle bin and
// archived Tasks (paging on under query/, as Salesforce's nextRecordsUrl
// does), query does not; getUpdated lists ids; latestDateCovered trails the
// clock by the configured lag.
func TestQueryAllUpdatedAndCoverage(t *testing.T) {
	now := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	f := New(WithClock(func() time.Time { return now }), WithPageSize(2))
	srv := httptest.NewServer(f)
	defer srv.Close()
	org := f.DefaultOrg()
	access, _, err := f.Tokens(org)
	require.NoError(t, err)
	bearer := "Bearer " + access
	var ids []string
	for _, s := range []string{"a", "b", "c"} {
		id, err := f.Create(org, "Task", map[string]any{"Subject": s})
		require.NoError(t, err)
		ids = append(ids, id)
	}
	require.NoError(t, f.Archive(org, "Task", ids[0]))
	require.NoError(t, f.Delete(org, "Task", ids[1]))

	soql := url.QueryEscape("SELECT Id, IsDeleted, IsArchived FROM Task ORDER BY Id")
	st, body := do(t, srv, "GET", "/services/data/v60.0/query?q="+soql, bearer)
	require.Equal(t, 200, st)
	var page struct {
		TotalSize      int
		Done           bool
		NextRecordsURL string
		Records        []map[string]any
	}
	require.NoError(t, json.Unmarshal(body, &page))
	require.Equal(t, 1, page.TotalSize, "query hides archived and deleted rows")

	st, body = do(t, srv, "GET", "/services/data/v60.0/queryAll?q="+soql, bearer)
	require.Equal(t, 200, st)
	require.NoError(t, json.Unmarshal(body, &page))
	require.Equal(t, 3, page.TotalSize)
	require.False(t, page.Done)
	require.True(t, strings.HasPrefix(page.NextRecordsURL, "/services/data/v60.0/query/"), page.NextRecordsURL)
	rows, next := page.Records, page.NextRecordsURL
	page.Records = nil
	st, body = do(t, srv, "GET", next, bearer)
	require.Equal(t, 200, st)
	require.NoError(t, json.Unmarshal(body, &page))
	rows = append(rows, page.Records...)
	flags := map[string][2]bool{}
	for _, r := range rows {
		flags[r["Id"].(string)] = [2]bool{r["IsDeleted"].(bool), r["IsArchived"].(bool)}
	}
	require.Equal(t, map[string][2]bool{ids[0]: {false, true}, ids[1]: {true, false}, ids[2]: {false, false}}, flags)

	f.SetCoverageLag(10 * time.Minute)
	q := url.Values{"start": {now.Add(-time.Hour).Format(time.RFC3339)}, "end": {now.Format(time.RFC3339)}}
	st, body = do(t, srv, "GET", "/services/data/v60.0/sobjects/Task/updated/?"+q.Encode(), bearer)
	require.Equal(t, 200, st, string(body))
	var upd struct {
		IDs               []string `json:"ids"`
		LatestDateCovered string   `json:"latestDateCovered"`
	}
	require.NoError(t, json.Unmarshal(body, &upd))
	require.ElementsMatch(t, []string{ids[0], ids[2]}, upd.IDs)
	require.Equal(t, "2026-11-22T09:50:00.000+0000", upd.LatestDateCovered)
	st, body = do(t, srv, "GET", "/services/data/v60.0/sobjects/Task/deleted/?"+q.Encode(), bearer)
	require.Equal(t, 200, st)
	require.Contains(t, string(body), `"latestDateCovered":"2026-11-22T09:50:00.000+0000"`)
	require.Contains(t, string(body), ids[1])
}

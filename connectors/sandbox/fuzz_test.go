package sandbox

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tributary/tributary/models"
)

func seedRecords(f *testing.F) map[string][]byte {
	files, err := filepath.Glob("testdata/records/*.json")
	if err != nil {
		f.Fatal(err)
	}
	out := map[string][]byte{}
	for _, p := range files {
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		out[strings.TrimSuffix(filepath.Base(p), ".json")] = data
	}
	return out
}

func FuzzParseWebhook(f *testing.F) {
	for name, rec := range seedRecords(f) {
		object, _, _ := strings.Cut(name, "_")
		w := Webhook{EventID: "sbx_1.v1", Account: "con_1", Object: object, Action: ActionUpdated,
			OccurredAt: time.Date(2026, 11, 1, 9, 0, 0, 0, time.UTC), Record: rec}
		body, _ := json.Marshal(w)
		f.Add(body)
	}
	f.Add([]byte(`{"eventId":"e","account":"a","object":"orders","action":"deleted","record":{"id":"x","line_items":[{}]}}`))
	f.Add([]byte(`{"eventId":"e","account":"a","object":"stages","action":"created","occurredAt":"bad","record":{"id":"x"}}`))
	f.Add([]byte(`{"eventId":"e","account":"a","object":"orders","action":"created","record":{"id":"x","total_price":"NaN"}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		ns, err := parseWebhook(body)
		if err != nil {
			return
		}
		if len(ns) != 1 {
			t.Fatalf("want one notice, got %d", len(ns))
		}
		n := ns[0]
		if n.EventID == "" || n.ExternalID == "" || n.RemoteID == "" || models.TopicFor(n.Object) == "" || n.Record == nil {
			t.Fatalf("incomplete notice %+v", n)
		}
		if n.Record.RemoteID != n.RemoteID || n.Record.Object != n.Object || n.Record.Data == nil || n.Record.Deleted != n.Deleted {
			t.Fatalf("notice and record disagree: %+v %+v", n, n.Record)
		}
		if _, err := json.Marshal(n.Record.Data); err != nil {
			t.Fatalf("unified record does not marshal: %v", err)
		}
	})
}

func FuzzNormalize(f *testing.F) {
	objs := Objects()
	for name, rec := range seedRecords(f) {
		object, _, _ := strings.Cut(name, "_")
		for i, o := range objs {
			if o == object {
				f.Add(uint8(i), rec)
			}
		}
	}
	f.Add(uint8(0), []byte(`{"id":"1","employee_count":1e300,"amount":"x"}`))
	f.Add(uint8(8), []byte(`{"id":"1","line_items":null,"total_price":1e400}`))
	f.Fuzz(func(t *testing.T, which uint8, raw []byte) {
		obj := objs[int(which)%len(objs)]
		rec, err := normalize(obj, raw)
		if err != nil {
			return
		}
		if rec.RemoteID == "" || rec.Data == nil || rec.Object != obj {
			t.Fatalf("incomplete record %+v", rec)
		}
		if _, err := json.Marshal(rec.Data); err != nil {
			t.Fatalf("unified record does not marshal: %v", err)
		}
	})
}

func FuzzMergeFields(f *testing.F) {
	f.Add(uint8(0), []byte(`{"first_name":"a"}`), []byte(`{"first_name":null,"email":"b"}`))
	f.Add(uint8(8), []byte(`{}`), []byte(`{"line_items":[{"quantity":1,"unit_price":"1.5"}]}`))
	objs := Objects()
	f.Fuzz(func(t *testing.T, which uint8, old, patch []byte) {
		obj := objs[int(which)%len(objs)]
		if ValidateFields(obj, old) != nil {
			return
		}
		merged, _, err := MergeFields(obj, old, patch)
		if err != nil {
			return
		}
		if err := ValidateFields(obj, merged); err != nil {
			t.Fatalf("merge of valid fields is invalid: %v (%s)", err, merged)
		}
		raw, err := AppRecord(StoredRecord{RemoteID: "sbx_1", Data: merged, Version: 1})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := normalize(obj, raw); err != nil {
			t.Fatalf("valid app record does not normalize: %v (%s)", err, raw)
		}
	})
}

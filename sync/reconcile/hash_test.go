package reconcile

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tributary/tributary/models"
)

// The single-scan canonicalizer must produce exactly the hash (and fields)
// of the encoding/json reference, or stored hashes would stop matching.
func TestFastHashMatchesEncodingJSON(t *testing.T) {
	ts := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
	cases := []any{
		nil,
		map[string]any{},
		&models.Contact{Common: models.Common{RemoteID: "1", RemoteUpdatedAt: &ts, RemoteData: json.RawMessage(`{"z":1,"a":[1,2]}`)},
			FirstName: "Zoë", LastName: "O'Brien <ceo> & co", Email: "z@x", Phone: "+1 555", Title: "\u2028line\ttab\"quote\\",
			Address: &models.Address{Street: "1 Main", City: "Zürich", Country: "CH"}},
		&models.Contact{Common: models.Common{RemoteID: "2"}},
		map[string]any{"n": json.Number("1.50"), "e": json.Number("-1e+10"), "z": 0, "f": 1.25, "b": true, "nil": nil},
		map[string]any{"nested": json.RawMessage(`{"b":{"d":1,"c":[{"y":1,"x":2}]},"a":"\u0041\/"}`)},
		map[string]any{"dup": json.RawMessage(`{"a":1,"a":2}`)},
		map[string]any{"arr": json.RawMessage(`[]`), "obj": json.RawMessage(`{}`), "deep": json.RawMessage(`[[[]],[{}]]`)},
		map[string]any{"bad utf8": string([]byte{0xff, 'a'}), "emoji": "🙂", "key with space": "v"},
		map[string]any{"<k>": "v", "k\"q": 1},
		[]int{1, 2},
		"string",
	}
	for i, c := range cases {
		raw, err := json.Marshal(c)
		require.NoError(t, err)
		wantHash, wantFields, wantErr := slowHash(raw)
		gotHash, gotFields, gotErr := hashJSON(raw)
		require.Equal(t, wantErr != nil, gotErr != nil, "case %d %s", i, raw)
		require.Equal(t, wantHash, gotHash, "case %d %s", i, raw)
		require.Equal(t, len(wantFields), len(gotFields), "case %d", i)
		for k, v := range wantFields {
			require.JSONEq(t, string(v), string(gotFields[k]), "case %d key %s", i, k)
			require.Equal(t, string(v), string(gotFields[k]), "case %d key %s", i, k)
		}
		h, err := fastHash(raw)
		require.Equal(t, wantErr != nil, err != nil)
		require.Equal(t, wantHash, h)
	}
}

func FuzzFastHash(f *testing.F) {
	for _, s := range []string{`{"a":1}`, `{"b":{"y":[1,{"q":null}],"x":"s"},"a":true}`, `null`, `{"remoteData":{"x":1},"k":"\u00e9"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		wantHash, _, wantErr := slowHash(raw)
		gotHash, _, gotErr := hashJSON(raw)
		if (wantErr != nil) != (gotErr != nil) {
			t.Fatalf("%q: error %v vs %v", raw, wantErr, gotErr)
		}
		if wantHash != gotHash {
			t.Fatalf("%q: hash differs", raw)
		}
	})
}

func BenchmarkHashContact(b *testing.B) {
	rec := simGen{}.record(42, 0)
	b.ReportAllocs()
	for b.Loop() {
		raw, _ := json.Marshal(rec.Data)
		if _, err := fastHash(raw); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkHashContactEncodingJSON(b *testing.B) {
	rec := simGen{}.record(42, 0)
	b.ReportAllocs()
	for b.Loop() {
		raw, _ := json.Marshal(rec.Data)
		if _, _, err := slowHash(raw); err != nil {
			b.Fatal(err)
		}
	}
}

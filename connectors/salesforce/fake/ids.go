package fake

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
)

// Key prefixes of the sObjects the fake serves (first three characters of
// every Salesforce id).
var keyPrefixes = map[string]string{
	"Account":          "001",
	"Contact":          "003",
	"Lead":             "00Q",
	"Opportunity":      "006",
	"OpportunityStage": "01J",
	"Task":             "00T",
	"Note":             "002",
	"User":             "005",
}

const (
	orgPrefix     = "00D"
	locatorPrefix = "01g"
)

// newID returns the next 18-character id with prefix; caller holds f.mu.
func (f *Fake) newID(prefix string) string {
	f.seq++
	return withChecksum(fmt.Sprintf("%sRO%010d", prefix, f.seq))
}

// withChecksum appends Salesforce's 3-character case-safe suffix to a
// 15-character id: for each 5-character chunk, a bit per upper-case letter.
func withChecksum(id15 string) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
	suffix := make([]byte, 0, 3)
	for chunk := range 3 {
		v := 0
		for i := range 5 {
			if c := id15[chunk*5+i]; c >= 'A' && c <= 'Z' {
				v |= 1 << i
			}
		}
		suffix = append(suffix, alphabet[v])
	}
	return id15 + string(suffix)
}

func randomToken(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}

package main

import (
	"net/http"
	"testing"
	"time"

	"github.com/tributary/tributary/forwarding/signing"
)

// TestAnalyse: arrivals are joined to sends by change key; a second
// arrival of one event and a second event for one change are duplicates;
// acknowledged changes that never arrive are lost unless the engine still
// holds them when the drain cap ended the wait.
func TestAnalyse(t *testing.T) {
	t0 := time.Unix(1_800_000_000, 0)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	sends := []send{
		{key: "1", offered: at(0), start: at(0), acked: at(10), ok: true},
		{key: "2", offered: at(0), start: at(5), acked: at(20), ok: true},
		{key: "3", offered: at(0), start: at(10), acked: at(30), ok: true},
		{key: "4", offered: at(0), start: at(10), acked: at(30), ok: false},
	}
	arrivals := []arrival{
		{"evt_a", "1", at(15), false},  // during ingest (ends at 30)
		{"evt_a", "1", at(40), false},  // the same event again
		{"evt_b", "2", at(120), false}, // after ingest
		{"evt_c", "2", at(130), false}, // another event for change 2
		{"evt_x", "9", at(50), false},  // unknown change
		{"evt_d", "3", at(60), true},   // change 3, but its signature failed: not delivered
	}
	for _, c := range []struct {
		name          string
		capped        bool
		queued        int64
		lost, unknown int
	}{
		{name: "drained", lost: 1, unknown: 1},
		{name: "capped, still queued", capped: true, queued: 1, lost: 0, unknown: 1},
		{name: "capped, nothing queued", capped: true, lost: 1, unknown: 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := &wholeResult{ingestStart: at(0), ingestEnd: at(30), acked: 3, capped: c.capped, queuedDeliveries: c.queued}
			analyse(r, sends, arrivals)
			if r.delivered != 2 || r.duringIngest != 1 || r.redelivered != 1 || r.extra != 1 || r.dupes != 2 {
				t.Fatalf("delivered %d during %d redelivered %d extra %d dupes %d", r.delivered, r.duringIngest, r.redelivered, r.extra, r.dupes)
			}
			if r.badSignatures != 1 {
				t.Fatalf("bad signatures %d", r.badSignatures)
			}
			if r.lost != c.lost || r.unknown != c.unknown {
				t.Fatalf("lost %d unknown %d, want %d %d", r.lost, r.unknown, c.lost, c.unknown)
			}
			if r.p50 != 120*time.Millisecond || r.lastArrival != at(120) {
				t.Fatalf("p50 %s last %s", r.p50, r.lastArrival)
			}
			if want := 2 / 0.120; r.e2ePerSec < want-0.01 || r.e2ePerSec > want+0.01 {
				t.Fatalf("e2e %.2f/s, want %.2f", r.e2ePerSec, want)
			}
		})
	}
}

// TestVerifier: the receiver accepts only deliveries signed with the
// subscription's hmac secret.
func TestVerifier(t *testing.T) {
	body := []byte(`{"id":"evt_1"}`)
	v := &verifier{secret: "s3cret-s3cret-s3cret"}
	h := http.Header{}
	h.Set(signing.HeaderHMACSignature, signing.SignHMAC("s3cret-s3cret-s3cret", body))
	if err := v.verify(h, body); err != nil {
		t.Fatal(err)
	}
	h.Set(signing.HeaderHMACSignature, signing.SignHMAC("another-secret-here", body))
	if v.verify(h, body) == nil {
		t.Fatal("a delivery signed with another secret passed")
	}
	if v.verify(http.Header{}, body) == nil {
		t.Fatal("an unsigned delivery passed")
	}
}

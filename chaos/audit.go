package chaos

import (
	"bytes"
	"fmt"
	"sort"
	"strings"
)

// Change is one change a test made in a connected app: the event it must
// become is (ConnectionID, Topic, RemoteID, Kind) whose dataPayload contains
// Marker (a unique quoted value, e.g. an email; empty for deletes).
type Change struct {
	ConnectionID string
	Topic        string
	RemoteID     string
	Kind         string // created, updated, deleted
	Marker       string
}

func (c Change) key() string { return c.ConnectionID + "|" + c.Topic + "|" + c.RemoteID + "|" + c.Kind }

// String names the change in reports.
func (c Change) String() string {
	return fmt.Sprintf("%s %s %s %s %s", c.ConnectionID, c.Topic, c.RemoteID, c.Kind, c.Marker)
}

// Report is the audit of a receiver log against the changes made.
type Report struct {
	Name string
	Seed uint64
	// Changes made; Delivered of them acknowledged (2xx) at least once with a
	// valid signature; Lost the rest (must be 0).
	Changes, Delivered, Lost int
	// Requests the receiver got; Events distinct event ids among them.
	Requests, Events int
	// Duplicates are acknowledged deliveries of an event id already
	// acknowledged (allowed: at-least-once); Redeliveries every request of an
	// event id after its first (retries included).
	Duplicates, Redeliveries int
	// MismatchedDuplicates are event ids delivered with differing bodies,
	// SplitChanges changes that became two or more event ids, Unexpected
	// event ids matching no change, BadSignatures requests failing the JWKS
	// check: all must be 0.
	MismatchedDuplicates, SplitChanges, Unexpected, BadSignatures int
	// Kills, Terminations and Faults describe the run (filled by the test).
	Kills, Terminations int
	// StuckPolls counts polls left "syncing" after their end (lease expired by the test).
	StuckPolls int
	// Unverifiable requests came while the JWKS could not be fetched (the
	// engine down); the receiver answered 503.
	Unverifiable int
	Faults       map[Fault]int
	// Problems lists the first offending changes and events, for the failure message.
	Problems []string
}

// Audit matches every logged request to the change it announces.
func Audit(name string, seed uint64, changes []Change, log []Entry) *Report {
	r := &Report{Name: name, Seed: seed, Changes: len(changes), Requests: len(log), Faults: map[Fault]int{}}
	problem := func(format string, args ...any) {
		if len(r.Problems) < 20 {
			r.Problems = append(r.Problems, fmt.Sprintf(format, args...))
		}
	}
	byKey := map[string][]int{}
	for i, c := range changes {
		byKey[c.key()] = append(byKey[c.key()], i)
	}
	bodies := map[string]string{}      // event id → body hash of its first request
	acked := map[string]bool{}         // event id acknowledged once
	eventChange := map[string]int{}    // event id → change index (-1: none)
	changeEvents := map[int][]string{} // change index → distinct event ids
	faults := map[string][]string{}    // event id → the receiver's answers
	delivered := map[int]bool{}
	mismatched := map[string]bool{}
	for _, e := range log {
		r.Faults[e.Fault]++
		faults[e.EventID] = append(faults[e.EventID], string(e.Fault))
		if e.Unverified {
			r.Unverifiable++
			continue
		}
		if !e.SignatureOK {
			r.BadSignatures++
			problem("bad signature: event %s (%s %s)", e.EventID, e.Topic, e.RemoteID)
			continue
		}
		if h, seen := bodies[e.EventID]; seen {
			r.Redeliveries++
			if h != e.BodyHash && !mismatched[e.EventID] {
				mismatched[e.EventID] = true
				r.MismatchedDuplicates++
				problem("event %s redelivered with a different body", e.EventID)
			}
		} else {
			bodies[e.EventID] = e.BodyHash
			ci := -1
			for _, i := range byKey[Change{e.ConnectionID, e.Topic, e.RemoteID, e.UpdateType, ""}.key()] {
				m := changes[i].Marker
				if m == "" || bytes.Contains(e.Payload, []byte(`"`+m+`"`)) {
					ci = i
					break
				}
			}
			eventChange[e.EventID] = ci
			if ci < 0 {
				r.Unexpected++
				problem("unexpected event %s: %s %s %s %s", e.EventID, e.ConnectionID, e.Topic, e.RemoteID, e.UpdateType)
			} else {
				changeEvents[ci] = append(changeEvents[ci], e.EventID)
			}
		}
		if e.Acked {
			if acked[e.EventID] {
				r.Duplicates++
			}
			acked[e.EventID] = true
			if ci := eventChange[e.EventID]; ci >= 0 {
				delivered[ci] = true
			}
		}
	}
	r.Events = len(bodies)
	r.Delivered = len(delivered)
	for i, c := range changes {
		if !delivered[i] {
			r.Lost++
			var seen []string
			for _, id := range changeEvents[i] {
				seen = append(seen, id+" answered "+strings.Join(faults[id], ","))
			}
			problem("lost: %s (requests: %s)", c, strings.Join(seen, "; "))
		}
		if ids := changeEvents[i]; len(ids) > 1 {
			r.SplitChanges++
			problem("change %s became %d events: %s", c, len(ids), strings.Join(ids, ", "))
		}
	}
	return r
}

// Err is nil when the audit is clean: nothing lost, no change split into
// two events, no unexpected event, no mismatched duplicate, no bad signature.
func (r *Report) Err() error {
	if r.Lost == 0 && r.SplitChanges == 0 && r.Unexpected == 0 && r.MismatchedDuplicates == 0 && r.BadSignatures == 0 {
		return nil
	}
	return fmt.Errorf("audit %s failed:\n%s\n  %s", r.Name, r, strings.Join(r.Problems, "\n  "))
}

// String prints the audit table.
func (r *Report) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "AUDIT %s (seed %d)\n", r.Name, r.Seed)
	row := func(k string, v int, must string) { fmt.Fprintf(&b, "  %-34s %7d %s\n", k, v, must) }
	row("changes made", r.Changes, "")
	row("changes delivered", r.Delivered, "")
	row("changes lost", r.Lost, "(must be 0)")
	row("requests received", r.Requests, "")
	row("distinct event ids", r.Events, "")
	row("redeliveries (same event id)", r.Redeliveries, "(retries)")
	row("duplicate acknowledged deliveries", r.Duplicates, "(allowed: at-least-once)")
	row("duplicates with a different body", r.MismatchedDuplicates, "(must be 0)")
	row("changes turned into 2+ event ids", r.SplitChanges, "(must be 0)")
	row("events matching no change", r.Unexpected, "(must be 0)")
	row("bad signatures", r.BadSignatures, "(must be 0)")
	if r.Unverifiable > 0 {
		row("unverifiable (JWKS down, 503)", r.Unverifiable, "")
	}
	if r.Kills > 0 {
		row("SIGKILLs", r.Kills, "")
	}
	if r.Terminations > 0 {
		row("PostgreSQL backends terminated", r.Terminations, "")
	}
	if r.StuckPolls > 0 {
		row("polls left syncing (unstuck after 5 s)", r.StuckPolls, "")
	}
	var fs []string
	for f, n := range r.Faults {
		fs = append(fs, fmt.Sprintf("%s=%d", f, n))
	}
	sort.Strings(fs)
	fmt.Fprintf(&b, "  receiver answers: %s\n", strings.Join(fs, " "))
	return b.String()
}

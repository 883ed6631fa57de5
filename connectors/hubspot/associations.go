package hubspot

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/tributary/tributary/connectors"
)

// assocBatchMax is the associations v4 batch read's largest input.
const assocBatchMax = 1000

// primaryTypeIDs are HubSpot-defined association type ids meaning "primary"
// (deal→company 5, contact→company 1).
var primaryTypeIDs = map[int]bool{5: true, 1: true}

// assocRequest is BatchInputPublicFetchAssociationsBatchRequest.
type assocRequest struct {
	Inputs []batchInput `json:"inputs"`
}

// assocResponse is BatchResponsePublicAssociationMultiWithLabel (200, or
// 207 when some inputs have no associations).
type assocResponse struct {
	Results []struct {
		From struct {
			ID string `json:"id"`
		} `json:"from"`
		To []struct {
			ToObjectID       json.Number `json:"toObjectId"`
			AssociationTypes []struct {
				Category string `json:"category"`
				TypeID   int    `json:"typeId"`
				Label    string `json:"label"`
			} `json:"associationTypes"`
		} `json:"to"`
	} `json:"results"`
}

// assocLink is one association as it is kept in a record's raw JSON, in the
// shape of the v3 object APIs' "associations" (SimplePublicObjectWithAssociations):
// {"companies":{"results":[{"id":"…","type":"deal_to_company"}]}}.
type assocLink struct {
	ID   string `json:"id"`
	Type string `json:"type"`
}

type assocList struct {
	Results []assocLink `json:"results"`
}

// attachAssociations reads the associations spec wants (a deal's company,
// a note's or task's contact, company and deal) for the raw records with the
// associations v4 batch read, and writes them into each raw record under
// "associations", so that Normalize finds them in Record.Raw alone.
func (c *Connector) attachAssociations(ctx context.Context, conn *connectors.Conn, spec crmObject, raws []json.RawMessage) ([]json.RawMessage, error) {
	if len(spec.associations) == 0 || len(raws) == 0 {
		return raws, nil
	}
	ids := make([]string, 0, len(raws))
	for _, raw := range raws {
		var o struct {
			ID string `json:"id"`
		}
		if err := json.Unmarshal(raw, &o); err != nil || o.ID == "" {
			return nil, malformed("associations of "+spec.path, fmt.Errorf("record without id"))
		}
		ids = append(ids, o.ID)
	}
	links := map[string]map[string]assocList{} // record id → to type → links
	for _, to := range spec.associations {
		for chunk := range slices.Chunk(ids, assocBatchMax) {
			body := assocRequest{Inputs: make([]batchInput, 0, len(chunk))}
			for _, id := range chunk {
				body.Inputs = append(body.Inputs, batchInput{ID: id})
			}
			var resp assocResponse
			path := "/crm/v4/associations/" + spec.path + "/" + to + "/batch/read"
			if err := c.do(ctx, conn, "POST", path, nil, body, &resp); err != nil {
				return nil, fmt.Errorf("read %s→%s associations: %w", spec.path, to, err)
			}
			for _, r := range resp.Results {
				for _, t := range r.To {
					kind := assocKind(spec.path, to)
					primary := false
					for _, at := range t.AssociationTypes {
						if primaryTypeIDs[at.TypeID] || strings.EqualFold(at.Label, "Primary") {
							primary = true
						}
					}
					if !primary && (to == "companies") {
						kind += "_unlabeled"
					}
					if links[r.From.ID] == nil {
						links[r.From.ID] = map[string]assocList{}
					}
					l := links[r.From.ID][to]
					l.Results = append(l.Results, assocLink{ID: t.ToObjectID.String(), Type: kind})
					links[r.From.ID][to] = l
				}
			}
		}
	}
	out := make([]json.RawMessage, 0, len(raws))
	for i, raw := range raws {
		var m map[string]json.RawMessage
		if err := json.Unmarshal(raw, &m); err != nil {
			return nil, malformed("associations of "+spec.path, err)
		}
		a, err := json.Marshal(links[ids[i]])
		if err != nil {
			return nil, err
		}
		if links[ids[i]] == nil {
			a = []byte("{}")
		}
		m["associations"] = a
		merged, err := json.Marshal(m)
		if err != nil {
			return nil, err
		}
		out = append(out, merged)
	}
	return out, nil
}

// assocKind names an association the way the v3 object APIs do
// ("deal_to_company", "note_to_contact").
func assocKind(from, to string) string {
	return singular(from) + "_to_" + singular(to)
}

func singular(path string) string {
	if strings.HasSuffix(path, "ies") {
		return strings.TrimSuffix(path, "ies") + "y"
	}
	return strings.TrimSuffix(path, "s")
}

// firstAssociated returns the id a record is associated with of type to:
// the primary one (type without "_unlabeled") when there is one, otherwise
// the lowest id; "" when there is none.
func firstAssociated(assoc map[string]assocList, to string) string {
	l := assoc[to].Results
	if len(l) == 0 {
		return ""
	}
	best := ""
	for _, a := range l {
		if !strings.HasSuffix(a.Type, "_unlabeled") {
			return a.ID
		}
		if best == "" || idLess(a.ID, best) < 0 {
			best = a.ID
		}
	}
	return best
}

// idLess orders numeric ids numerically, others lexically.
func idLess(a, b string) int {
	if len(a) != len(b) {
		return len(a) - len(b)
	}
	return strings.Compare(a, b)
}

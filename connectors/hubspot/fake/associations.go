package fake

import (
	"fmt"
	"net/http"
	"slices"

	"github.com/tributary/tributary/connectors"
)

// assocTypeIDs are HubSpot-defined association type ids (primary or default
// label) between the object types the fake serves, as listed in HubSpot's
// associations v4 documentation; unlabeled is the non-primary variant where
// one exists.
var assocTypeIDs = map[[2]string]struct{ primary, unlabeled int }{
	{"deals", "companies"}:    {5, 341},
	{"deals", "contacts"}:     {3, 3},
	{"contacts", "companies"}: {1, 279},
	{"notes", "contacts"}:     {202, 202},
	{"notes", "companies"}:    {190, 190},
	{"notes", "deals"}:        {214, 214},
	{"tasks", "contacts"}:     {204, 204},
	{"tasks", "companies"}:    {192, 192},
	{"tasks", "deals"}:        {216, 216},
}

// assocEdge is one association from an object to another.
type assocEdge struct {
	toType, toID string
	primary      bool
}

// Associate links a record to another (fromType and toType as in CRM URLs,
// e.g. "deals" → "companies"); primary marks the primary company of a deal
// or contact. It does not change the records' modification times.
func (s *Server) Associate(portalID int64, fromType, fromID, toType, toID string, primary bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, err := s.portal(portalID)
	if err != nil {
		return err
	}
	if _, ok := assocTypeIDs[[2]string{fromType, toType}]; !ok {
		return fmt.Errorf("fake hubspot: no association type %s → %s", fromType, toType)
	}
	from, to := p.objects[fromType][fromID], p.objects[toType][toID]
	if from == nil || to == nil {
		return errNotFound
	}
	if primary {
		for i := range from.assoc {
			if from.assoc[i].toType == toType {
				from.assoc[i].primary = false
			}
		}
	}
	from.assoc = append(from.assoc, assocEdge{toType: toType, toID: toID, primary: primary})
	return nil
}

// handleAssocBatchRead is POST /crm/v4/associations/{fromObjectType}/{toObjectType}/batch/read
// (BatchInputPublicFetchAssociationsBatchRequest → BatchResponsePublicAssociationMultiWithLabel).
// Inputs without associations come back under errors with status 207.
func (s *Server) handleAssocBatchRead(w http.ResponseWriter, r *http.Request, p *portal) []*connectors.InboundRequest {
	from, to := r.PathValue("fromObjectType"), r.PathValue("toObjectType")
	ids, ok := assocTypeIDs[[2]string{from, to}]
	if !ok {
		writeError(w, http.StatusBadRequest, "VALIDATION_ERROR", fmt.Sprintf("Unable to infer object type from: %s, %s", from, to), nil)
		return nil
	}
	var body struct {
		Inputs []struct {
			ID    string `json:"id"`
			After string `json:"after"`
		} `json:"inputs"`
	}
	if !decodeRequired(w, r, &body, "inputs") {
		return nil
	}
	if len(body.Inputs) > 1000 {
		writeError(w, http.StatusBadRequest, "VALIDATION_ERROR", "Batch input limit is 1000", nil)
		return nil
	}
	started := formatTime(s.nowLocked())
	results := []any{}
	var missing []string
	for _, in := range body.Inputs {
		o := p.objects[from][in.ID]
		var tos []any
		if o != nil && !o.archived {
			for _, e := range o.assoc {
				if e.toType != to || p.objects[to][e.toID] == nil || p.objects[to][e.toID].archived {
					continue
				}
				types := []any{map[string]any{"category": "HUBSPOT_DEFINED", "typeId": ids.unlabeled}}
				if e.primary {
					types = []any{map[string]any{"category": "HUBSPOT_DEFINED", "typeId": ids.primary, "label": "Primary"}}
				}
				// toObjectId is a string in the published schema.
				tos = append(tos, map[string]any{"toObjectId": e.toID, "associationTypes": types})
			}
		}
		if len(tos) == 0 {
			missing = append(missing, in.ID)
			continue
		}
		results = append(results, map[string]any{"from": map[string]any{"id": in.ID}, "to": tos})
	}
	resp := map[string]any{"status": "COMPLETE", "results": results, "startedAt": started, "completedAt": started}
	status := http.StatusOK
	if len(missing) > 0 {
		slices.Sort(missing)
		status = http.StatusMultiStatus
		resp["numErrors"] = len(missing)
		errs := []any{}
		for _, id := range missing {
			errs = append(errs, standardError("OBJECT_NOT_FOUND", fmt.Sprintf("No %s is associated with %s %s.", to, from, id),
				map[string]any{"fromObjectId": []string{id}}))
		}
		resp["errors"] = errs
	}
	writeJSON(w, status, resp)
	return nil
}

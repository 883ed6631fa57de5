package fake

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// soqlQuery is the subset of SOQL the fake understands:
//
//	SELECT f1, f2, … FROM Object
//	  [WHERE SystemModstamp|LastModifiedDate >=|>|<=|<|= <dateTime literal>]
//	  [ORDER BY f [ASC|DESC], …] [LIMIT n]
//
// Anything else is answered 400 MALFORMED_QUERY, as Salesforce answers a
// query it cannot parse.
type soqlQuery struct {
	Fields  []string
	SObject string
	Where   *soqlFilter
	OrderBy []soqlOrder
	Limit   int // 0: none
}

type soqlFilter struct {
	Field string
	Op    string
	Value time.Time
}

type soqlOrder struct {
	Field string
	Desc  bool
}

// soqlError is a query rejection with Salesforce's errorCode.
type soqlError struct {
	Code    string
	Message string
}

func (e *soqlError) Error() string { return e.Code + ": " + e.Message }

func malformed(format string, args ...any) *soqlError {
	return &soqlError{Code: "MALFORMED_QUERY", Message: fmt.Sprintf(format, args...)}
}

// tokenize splits a query into words, commas and comparison operators.
func tokenize(q string) []string {
	var toks []string
	var cur strings.Builder
	flush := func() {
		if cur.Len() > 0 {
			toks = append(toks, cur.String())
			cur.Reset()
		}
	}
	for i := 0; i < len(q); i++ {
		c := q[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			flush()
		case c == ',':
			flush()
			toks = append(toks, ",")
		case c == '>' || c == '<' || c == '=' || c == '!':
			flush()
			if i+1 < len(q) && q[i+1] == '=' {
				toks = append(toks, string(c)+"=")
				i++
			} else {
				toks = append(toks, string(c))
			}
		default:
			cur.WriteByte(c)
		}
	}
	flush()
	return toks
}

// soqlDateTimeLayouts are the dateTime literal forms SOQL accepts.
var soqlDateTimeLayouts = []string{time.RFC3339Nano, "2006-01-02T15:04:05.000-0700", "2006-01-02T15:04:05-0700"}

// parseSOQL parses q against the fake's schema.
func parseSOQL(q string) (*soqlQuery, error) {
	toks := tokenize(q)
	pos := 0
	peek := func() string {
		if pos < len(toks) {
			return toks[pos]
		}
		return ""
	}
	next := func() string { t := peek(); pos++; return t }
	kw := func(want string) bool {
		if strings.EqualFold(peek(), want) {
			pos++
			return true
		}
		return false
	}
	if !kw("SELECT") {
		return nil, malformed("unexpected token: '%s'", peek())
	}
	var rawFields []string
	for {
		f := next()
		if f == "" || f == "," || strings.EqualFold(f, "FROM") {
			return nil, malformed("unexpected token: '%s'", f)
		}
		if strings.ContainsAny(f, "()'\".") {
			return nil, malformed("unsupported field expression: '%s'", f)
		}
		rawFields = append(rawFields, f)
		if peek() != "," {
			break
		}
		pos++
	}
	if !kw("FROM") {
		return nil, malformed("unexpected token: '%s'", peek())
	}
	objTok := next()
	if objTok == "" {
		return nil, malformed("unexpected end of query")
	}
	sobject, ok := canonicalSObject(objTok)
	if !ok {
		return nil, &soqlError{Code: "INVALID_TYPE", Message: fmt.Sprintf("sObject type '%s' is not supported.", objTok)}
	}
	out := &soqlQuery{SObject: sobject}
	seen := map[string]bool{}
	for _, rf := range rawFields {
		f, ok := canonicalField(sobject, rf)
		if !ok {
			return nil, &soqlError{Code: "INVALID_FIELD", Message: fmt.Sprintf("No such column '%s' on entity '%s'.", rf, sobject)}
		}
		if seen[f] {
			return nil, &soqlError{Code: "INVALID_FIELD", Message: fmt.Sprintf("duplicate field selected: %s", f)}
		}
		seen[f] = true
		out.Fields = append(out.Fields, f)
	}
	if kw("WHERE") {
		fieldTok := next()
		field, ok := canonicalField(sobject, fieldTok)
		if !ok {
			return nil, &soqlError{Code: "INVALID_FIELD", Message: fmt.Sprintf("No such column '%s' on entity '%s'.", fieldTok, sobject)}
		}
		if field != "SystemModstamp" && field != "LastModifiedDate" && field != "CreatedDate" {
			return nil, malformed("the fake filters on SystemModstamp, LastModifiedDate or CreatedDate only")
		}
		op := next()
		switch op {
		case ">=", ">", "<=", "<", "=":
		default:
			return nil, malformed("unexpected token: '%s'", op)
		}
		lit := next()
		if strings.HasPrefix(lit, "'") || strings.HasPrefix(lit, "\"") {
			return nil, &soqlError{Code: "INVALID_QUERY_FILTER_OPERATOR", Message: fmt.Sprintf("value of filter criterion for field '%s' must be of type dateTime and should not be enclosed in quotes", field)}
		}
		var when time.Time
		var perr error = fmt.Errorf("empty")
		for _, l := range soqlDateTimeLayouts {
			if when, perr = time.Parse(l, lit); perr == nil {
				break
			}
		}
		if perr != nil {
			return nil, malformed("line 1:%d no viable alternative at character '%s'", pos, lit)
		}
		out.Where = &soqlFilter{Field: field, Op: op, Value: when.UTC()}
	}
	if kw("ORDER") {
		if !kw("BY") {
			return nil, malformed("unexpected token: '%s'", peek())
		}
		for {
			ft := next()
			f, ok := canonicalField(sobject, ft)
			if !ok {
				return nil, &soqlError{Code: "INVALID_FIELD", Message: fmt.Sprintf("No such column '%s' on entity '%s'.", ft, sobject)}
			}
			o := soqlOrder{Field: f}
			if kw("DESC") {
				o.Desc = true
			} else {
				kw("ASC")
			}
			out.OrderBy = append(out.OrderBy, o)
			if peek() != "," {
				break
			}
			pos++
		}
	}
	if kw("LIMIT") {
		n, err := strconv.Atoi(next())
		if err != nil || n < 0 {
			return nil, malformed("LIMIT must be a non-negative integer")
		}
		out.Limit = n
	}
	if pos != len(toks) {
		return nil, malformed("unexpected token: '%s'", peek())
	}
	return out, nil
}

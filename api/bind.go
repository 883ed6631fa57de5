package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/gin-gonic/gin"

	"github.com/tributary/tributary/models"
)

// bindJSON decodes the request body strictly into v: malformed JSON, unknown
// fields and trailing data are 400s, an oversized body a 413.
func bindJSON(c *gin.Context, v any) error {
	body, err := io.ReadAll(c.Request.Body)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return models.Errorf(models.ErrCodeTooLarge, "request body exceeds %d bytes", mbe.Limit)
		}
		return models.Errorf(models.ErrCodeInvalid, "cannot read request body: %v", err)
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return models.Errorf(models.ErrCodeInvalid, "request body must be a JSON object")
	}
	if err := cleanJSON(body); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var ute *json.UnmarshalTypeError
		if errors.As(err, &ute) && ute.Field != "" {
			return &models.Error{Code: models.ErrCodeUnprocessable, Field: ute.Field,
				Message: fmt.Sprintf("%s must be %s", ute.Field, jsonKind(ute.Type.Kind().String()))}
		}
		return models.Errorf(models.ErrCodeInvalid, "invalid JSON body: %v", err)
	}
	if dec.More() {
		return models.Errorf(models.ErrCodeInvalid, "invalid JSON body: trailing data after the object")
	}
	return nil
}

func jsonKind(k string) string {
	switch k {
	case "string":
		return "a string"
	case "bool":
		return "a boolean"
	case "slice":
		return "an array"
	case "map", "struct", "ptr":
		return "an object"
	}
	return "a number"
}

// Page is a request's paging: ?limit= (default 50, max 500) and ?cursor=.
type Page struct {
	Limit  int
	Cursor string
}

// pageParams reads and validates paging parameters.
func pageParams(c *gin.Context) (Page, error) {
	p := Page{Limit: 50, Cursor: c.Query("cursor")}
	if s := c.Query("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 500 {
			return p, &models.Error{Code: models.ErrCodeInvalid, Field: "limit", Message: "limit must be an integer from 1 to 500"}
		}
		p.Limit = n
	}
	return p, nil
}

// listBody is the contract's list answer.
func listBody(data any, next string) gin.H {
	var n any
	if next != "" {
		n = next
	}
	return gin.H{"data": data, "nextCursor": n}
}

// cleanJSON refuses bodies that are not valid UTF-8 or whose strings (keys
// included) hold a NUL character once decoded (a raw NUL is already invalid
// JSON; "\u0000" is not): neither can be stored in a PostgreSQL text column,
// and the JSON decoder would silently replace invalid bytes.
func cleanJSON(body []byte) error {
	if !utf8.Valid(body) {
		return models.Errorf(models.ErrCodeInvalid, "request body is not valid UTF-8")
	}
	if !bytes.Contains(body, []byte(`\u0000`)) {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	for {
		tok, err := dec.Token()
		if err != nil {
			return nil // malformed JSON: the strict decode reports it
		}
		if s, ok := tok.(string); ok && strings.IndexByte(s, 0) >= 0 {
			return models.Errorf(models.ErrCodeInvalid, "request body holds a NUL character (\\u0000) in a string")
		}
	}
}

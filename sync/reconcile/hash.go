package reconcile

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"unicode/utf8"

	"github.com/tributary/tributary/models"
)

// The content hash is the sha256 of the canonical JSON of a record's
// non-volatile top-level fields: the bytes json.Marshal produces for a
// map[string]json.RawMessage whose values were each decoded (UseNumber) and
// re-marshaled. slowHash computes exactly that with encoding/json; fastHash
// produces the same bytes with a single scan of the compact JSON that
// json.Marshal emits, and falls back to slowHash for anything it does not
// recognise as already canonical (escaped keys or strings, duplicate keys,
// invalid UTF-8, malformed input). hash_test.go checks the two agree.

// hashJSON returns the hash of raw and its canonical top-level fields.
func hashJSON(raw []byte) (string, map[string]json.RawMessage, error) {
	c := canonPool.Get().(*canonicalizer)
	defer canonPool.Put(c)
	if h, ok := c.hash(raw); ok {
		return h, c.fields(), nil
	}
	return slowHash(raw)
}

// fastHash returns only the hash of raw (no field map).
func fastHash(raw []byte) (string, error) {
	c := canonPool.Get().(*canonicalizer)
	defer canonPool.Put(c)
	if h, ok := c.hash(raw); ok {
		return h, nil
	}
	h, _, err := slowHash(raw)
	return h, err
}

var canonPool = sync.Pool{New: func() any { return new(canonicalizer) }}

func slowHash(raw []byte) (string, map[string]json.RawMessage, error) {
	fields := map[string]json.RawMessage{}
	if len(raw) > 0 && !bytes.Equal(raw, []byte("null")) {
		if err := json.Unmarshal(raw, &fields); err != nil {
			return "", nil, fmt.Errorf("reconcile: record is not a JSON object: %w", err)
		}
	}
	for _, k := range models.VolatileFields {
		delete(fields, k)
	}
	for k, v := range fields {
		c, err := canonical(v)
		if err != nil {
			return "", nil, err
		}
		fields[k] = c
	}
	// encoding/json sorts map keys, so this is canonical.
	b, err := json.Marshal(fields)
	if err != nil {
		return "", nil, fmt.Errorf("reconcile: canonical: %w", err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]), fields, nil
}

// canonical re-encodes a JSON value with sorted keys and compact spacing,
// keeping numbers exact.
func canonical(v json.RawMessage) (json.RawMessage, error) {
	d := json.NewDecoder(bytes.NewReader(v))
	d.UseNumber()
	var x any
	if err := d.Decode(&x); err != nil {
		return nil, fmt.Errorf("reconcile: canonical: %w", err)
	}
	b, err := json.Marshal(x)
	if err != nil {
		return nil, fmt.Errorf("reconcile: canonical: %w", err)
	}
	return b, nil
}

type member struct {
	key        []byte // points into the input
	start, end int    // canonical value in canonicalizer.buf
}

// canonicalizer writes canonical JSON into buf. ok=false means "not sure":
// the caller falls back to encoding/json. Its buffers are reused (canonPool).
type canonicalizer struct {
	buf     []byte   // canonical values
	out     []byte   // the canonical document that is hashed
	scratch []byte   // a nested object's values before sorting
	stack   []member // members of the objects being parsed
	top     int      // number of top-level members (stack[:top])
}

func (c *canonicalizer) hash(raw []byte) (string, bool) {
	c.buf, c.stack, c.top = c.buf[:0], c.stack[:0], 0
	if len(raw) == 0 || string(raw) == "null" {
		sum := sha256.Sum256([]byte("{}"))
		return hex.EncodeToString(sum[:]), true
	}
	rest, ok := c.object(raw, true)
	if !ok || len(rest) != 0 {
		return "", false
	}
	c.top = len(c.stack)
	c.out = c.appendMembers(append(c.out[:0], '{'), c.stack, c.buf, 0)
	c.out = append(c.out, '}')
	sum := sha256.Sum256(c.out)
	return hex.EncodeToString(sum[:]), true
}

// appendMembers writes "key":value pairs, values taken from vals (whose
// offset 0 is buf offset base).
func (c *canonicalizer) appendMembers(dst []byte, members []member, vals []byte, base int) []byte {
	for i, m := range members {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, '"')
		dst = append(dst, m.key...)
		dst = append(dst, '"', ':')
		dst = append(dst, vals[m.start-base:m.end-base]...)
	}
	return dst
}

func (c *canonicalizer) fields() map[string]json.RawMessage {
	f := make(map[string]json.RawMessage, c.top)
	for _, m := range c.stack[:c.top] {
		f[string(m.key)] = json.RawMessage(slices.Clone(c.buf[m.start:m.end]))
	}
	return f
}

// object parses the object at the start of s, canonicalizes its values into
// c.buf and pushes its members, sorted by key (volatile fields dropped when
// top is true), on c.stack; it returns the rest of s.
func (c *canonicalizer) object(s []byte, top bool) ([]byte, bool) {
	if len(s) == 0 || s[0] != '{' {
		return nil, false
	}
	s = s[1:]
	base := len(c.stack)
	if len(s) > 0 && s[0] == '}' {
		return s[1:], true
	}
	for {
		key, r, ok := plainString(s)
		if !ok || len(r) == 0 || r[0] != ':' {
			return nil, false
		}
		start := len(c.buf)
		r, ok = c.value(r[1:])
		if !ok {
			return nil, false
		}
		if top && isVolatile(key) {
			c.buf = c.buf[:start]
		} else {
			c.stack = append(c.stack, member{key: key, start: start, end: len(c.buf)})
		}
		if len(r) == 0 {
			return nil, false
		}
		switch r[0] {
		case ',':
			s = r[1:]
			continue
		case '}':
			members := c.stack[base:]
			slices.SortFunc(members, func(a, b member) int { return bytes.Compare(a.key, b.key) })
			for i := 1; i < len(members); i++ {
				if bytes.Equal(members[i].key, members[i-1].key) {
					return nil, false // duplicate key: let encoding/json decide
				}
			}
			return r[1:], true
		default:
			return nil, false
		}
	}
}

func isVolatile(key []byte) bool {
	for _, v := range models.VolatileFields {
		if string(key) == v {
			return true
		}
	}
	return false
}

// value canonicalizes the value at the start of s into c.buf.
func (c *canonicalizer) value(s []byte) ([]byte, bool) {
	if len(s) == 0 {
		return nil, false
	}
	switch s[0] {
	case '{':
		// A nested object's values are written after base, then moved into
		// place in key order.
		base, sbase := len(c.buf), len(c.stack)
		r, ok := c.object(s, false)
		if !ok {
			return nil, false
		}
		c.scratch = append(c.scratch[:0], c.buf[base:]...)
		c.buf = append(c.buf[:base], '{')
		c.buf = c.appendMembers(c.buf, c.stack[sbase:], c.scratch, base)
		c.buf = append(c.buf, '}')
		c.stack = c.stack[:sbase]
		return r, true
	case '[':
		c.buf = append(c.buf, '[')
		s = s[1:]
		if len(s) > 0 && s[0] == ']' {
			c.buf = append(c.buf, ']')
			return s[1:], true
		}
		for {
			var ok bool
			s, ok = c.value(s)
			if !ok || len(s) == 0 {
				return nil, false
			}
			switch s[0] {
			case ',':
				c.buf = append(c.buf, ',')
				s = s[1:]
			case ']':
				c.buf = append(c.buf, ']')
				return s[1:], true
			default:
				return nil, false
			}
		}
	case '"':
		str, r, ok := plainString(s)
		if !ok {
			return nil, false
		}
		c.buf = append(c.buf, '"')
		c.buf = append(c.buf, str...)
		c.buf = append(c.buf, '"')
		return r, true
	case 't':
		return literal(c, s, "true")
	case 'f':
		return literal(c, s, "false")
	case 'n':
		return literal(c, s, "null")
	default:
		n := number(s)
		if n == 0 {
			return nil, false
		}
		c.buf = append(c.buf, s[:n]...)
		return s[n:], true
	}
}

func literal(c *canonicalizer, s []byte, lit string) ([]byte, bool) {
	if !bytes.HasPrefix(s, []byte(lit)) {
		return nil, false
	}
	c.buf = append(c.buf, lit...)
	return s[len(lit):], true
}

// number returns the length of the JSON number at the start of s (0 when
// there is none). Numbers are kept verbatim, as json.Number re-marshals them.
func number(s []byte) int {
	i := 0
	if i < len(s) && s[i] == '-' {
		i++
	}
	switch {
	case i < len(s) && s[i] == '0':
		i++
	case i < len(s) && s[i] >= '1' && s[i] <= '9':
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
	default:
		return 0
	}
	if i < len(s) && s[i] == '.' {
		i++
		d := i
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		if i == d {
			return 0
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		d := i
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		if i == d {
			return 0
		}
	}
	return i
}

// plainString returns the contents of the JSON string at the start of s when
// encoding/json would re-encode it byte for byte: no escapes, no characters
// json.Marshal escapes (<, >, &, U+2028, U+2029) and valid UTF-8.
func plainString(s []byte) (str, rest []byte, ok bool) {
	if len(s) == 0 || s[0] != '"' {
		return nil, nil, false
	}
	ascii := true
	for i := 1; i < len(s); i++ {
		b := s[i]
		switch {
		case b == '"':
			str = s[1:i]
			if !ascii && (!utf8.Valid(str) || bytes.Contains(str, []byte("\u2028")) || bytes.Contains(str, []byte("\u2029"))) {
				return nil, nil, false
			}
			return str, s[i+1:], true
		case b == '\\' || b < 0x20 || b == '<' || b == '>' || b == '&':
			return nil, nil, false
		case b >= 0x80:
			ascii = false
		}
	}
	return nil, nil, false
}

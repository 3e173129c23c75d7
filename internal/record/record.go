// Package record writes and reads the store's small JSON records (the boot
// and failure reasons, the shadow report, the trial deadline, the layer
// note) without encoding/json.
//
// Why not encoding/json: the PID-1 path writes some of these records and
// reads others, and encoding/json (with the reflection it brings) was a
// ninth of init-overlay, every byte of which is read from the boot disk at
// every boot. The records stay JSON, and what Object writes is byte for byte
// what encoding/json.Marshal writes for the same struct (the tests hold it
// to that), so older and newer versions, and status --json, read them alike.
// The admin commands may go on using encoding/json for them.
//
// String reads one string member of a record and nothing else. It checks
// that the whole input is valid JSON, as encoding/json would, and is
// stricter than encoding/json where the two could disagree on what a
// record says (duplicate keys, keys that differ only in case): it refuses
// such a record rather than guess.
package record

import (
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Object builds one JSON object, members in the order they are added, as
// encoding/json writes a struct's fields.
type Object struct {
	b []byte
}

// NewObject starts an object.
func NewObject() *Object { return &Object{b: []byte{'{'}} }

func (o *Object) key(k string) {
	if len(o.b) > 1 {
		o.b = append(o.b, ',')
	}
	o.b = AppendString(o.b, k)
	o.b = append(o.b, ':')
}

// String adds the member k with the string value v.
func (o *Object) String(k, v string) *Object {
	o.key(k)
	o.b = AppendString(o.b, v)
	return o
}

// Bool adds the member k with the value v.
func (o *Object) Bool(k string, v bool) *Object {
	o.key(k)
	o.b = strconv.AppendBool(o.b, v)
	return o
}

// Int adds the member k with the value v.
func (o *Object) Int(k string, v int) *Object {
	o.key(k)
	o.b = strconv.AppendInt(o.b, int64(v), 10)
	return o
}

// Time adds the member k with the value t as encoding/json writes a
// time.Time (RFC 3339 with nanoseconds). A zone offset of a day or more,
// which RFC 3339 cannot say and encoding/json refuses, is written in UTC
// (the same instant); a year outside 0–9999, which encoding/json refuses
// too, as the zero time's.
func (o *Object) Time(k string, t time.Time) *Object {
	if _, off := t.Zone(); off <= -24*3600 || off >= 24*3600 {
		t = t.UTC()
	}
	if y := t.Year(); y < 0 || y > 9999 {
		t = time.Time{}
	}
	o.key(k)
	o.b = append(o.b, '"')
	o.b = t.AppendFormat(o.b, time.RFC3339Nano)
	o.b = append(o.b, '"')
	return o
}

// Raw adds the member k with v, which must be JSON already (an Array's or
// an Object's Bytes).
func (o *Object) Raw(k string, v []byte) *Object {
	o.key(k)
	o.b = append(o.b, v...)
	return o
}

// Bytes ends the object and returns it.
func (o *Object) Bytes() []byte { return append(o.b, '}') }

// Array builds a JSON array of JSON values; a nil Array is written as
// encoding/json writes a nil slice, null.
type Array struct {
	b []byte
}

// Add appends the value v, which must be JSON already.
func (a *Array) Add(v []byte) {
	if a.b == nil {
		a.b = []byte{'['}
	} else {
		a.b = append(a.b, ',')
	}
	a.b = append(a.b, v...)
}

// Bytes ends the array and returns it: [] when empty is true and nothing was
// added (an empty slice), null when it is false (a nil slice).
func (a *Array) Bytes(empty bool) []byte {
	if a.b == nil {
		if empty {
			return []byte("[]")
		}
		return []byte("null")
	}
	return append(a.b, ']')
}

const hexDigits = "0123456789abcdef"

// AppendString appends s as a JSON string, escaped as encoding/json escapes
// it: quote, backslash and the control characters; <, > and & (HTML);
// U+2028 and U+2029 (JavaScript); and each byte that is not valid UTF-8 as
// U+FFFD.
func AppendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// maxDepth is how deeply a record may nest, encoding/json's limit: objects
// and arrays within one another, the record itself counted.
const maxDepth = 10000

// String returns the value of the member key of the JSON object in b, a
// string; found is false when b has no such member. b must be one valid
// JSON value, an object, and nothing else but white space. The member's
// value must be a string, and b must not have key twice, nor another key
// that differs from it only in case (foldEqual): encoding/json would read such a
// record differently, so it is refused.
func String(b []byte, key string) (v string, found bool, err error) {
	p := parser{b: b}
	p.ws()
	err = p.object(func(k string) error {
		switch {
		case k == key:
			if found {
				return p.fail("the key " + strconv.Quote(key) + " twice")
			}
			var err error
			if v, err = p.str(); err != nil {
				return err
			}
			found = true
			return nil
		case foldEqual(k, key):
			return p.fail("the key " + strconv.Quote(k) + " is not " + strconv.Quote(key))
		}
		return p.value(1)
	})
	if err != nil {
		return "", false, err
	}
	p.ws()
	if p.i != len(p.b) {
		return "", false, p.fail("data after the object")
	}
	return v, found, nil
}

// foldEqual reports whether a and b are the same key to encoding/json,
// which matches keys to fields by Unicode simple folding (its foldName is
// bytes.EqualFold): ASCII case, and beyond it é and É, σ and ς, the Kelvin
// sign K (U+212A) and k, the long s ſ (U+017F) and s. strings.EqualFold is
// that folding, and init-overlay links it already.
func foldEqual(a, b string) bool { return strings.EqualFold(a, b) }

type parser struct {
	b []byte
	i int
}

// Error is a record that is not what String reads.
type Error struct {
	Offset int
	What   string
}

func (e *Error) Error() string {
	return "record: " + e.What + " at byte " + strconv.Itoa(e.Offset)
}

func (p *parser) fail(what string) error { return &Error{Offset: p.i, What: what} }

func (p *parser) ws() {
	for p.i < len(p.b) {
		switch p.b[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

func (p *parser) eat(c byte) bool {
	if p.i < len(p.b) && p.b[p.i] == c {
		p.i++
		return true
	}
	return false
}

// object reads an object, calling member with each key, white space and
// the colon behind, to read or skip the member's value.
func (p *parser) object(member func(key string) error) error {
	if !p.eat('{') {
		return p.fail("want an object")
	}
	p.ws()
	if p.eat('}') {
		return nil
	}
	for {
		p.ws()
		k, err := p.str()
		if err != nil {
			return err
		}
		p.ws()
		if !p.eat(':') {
			return p.fail("want ':'")
		}
		p.ws()
		if err := member(k); err != nil {
			return err
		}
		p.ws()
		if p.eat('}') {
			return nil
		}
		if !p.eat(',') {
			return p.fail("want ',' or '}'")
		}
	}
}

// value skips one JSON value, checking it; depth is how many objects and
// arrays hold it, the record itself counted (1 for a member of the record).
func (p *parser) value(depth int) error {
	if p.i >= len(p.b) {
		return p.fail("want a value")
	}
	c := p.b[p.i]
	// An object or an array nests one level more than depth; encoding/json
	// refuses it past maxDepth, so String must too (it only ever takes what
	// encoding/json takes).
	if (c == '{' || c == '[') && depth >= maxDepth {
		return p.fail("nested too deeply")
	}
	switch {
	case c == '"':
		_, err := p.str()
		return err
	case c == '{':
		return p.object(func(string) error { return p.value(depth + 1) })
	case c == '[':
		p.i++
		p.ws()
		if p.eat(']') {
			return nil
		}
		for {
			p.ws()
			if err := p.value(depth + 1); err != nil {
				return err
			}
			p.ws()
			if p.eat(']') {
				return nil
			}
			if !p.eat(',') {
				return p.fail("want ',' or ']'")
			}
		}
	case c == 't':
		return p.literal("true")
	case c == 'f':
		return p.literal("false")
	case c == 'n':
		return p.literal("null")
	case c == '-' || '0' <= c && c <= '9':
		return p.number()
	}
	return p.fail("want a value")
}

func (p *parser) literal(s string) error {
	if len(p.b)-p.i >= len(s) && string(p.b[p.i:p.i+len(s)]) == s {
		p.i += len(s)
		return nil
	}
	return p.fail("want " + s)
}

func (p *parser) digits() int {
	n := 0
	for p.i < len(p.b) && '0' <= p.b[p.i] && p.b[p.i] <= '9' {
		p.i++
		n++
	}
	return n
}

// number skips a number: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (p *parser) number() error {
	p.eat('-')
	if p.eat('0') {
		// no more digits before the fraction
	} else if p.digits() == 0 {
		return p.fail("want a digit")
	}
	if p.eat('.') && p.digits() == 0 {
		return p.fail("want a digit")
	}
	if p.eat('e') || p.eat('E') {
		if !p.eat('+') {
			p.eat('-')
		}
		if p.digits() == 0 {
			return p.fail("want a digit")
		}
	}
	return nil
}

// str reads a string, decoded as encoding/json decodes it: a byte that is
// not valid UTF-8 and a \u escape of a lone surrogate become U+FFFD.
func (p *parser) str() (string, error) {
	if !p.eat('"') {
		return "", p.fail("want a string")
	}
	var out []byte
	start := p.i
	for {
		if p.i >= len(p.b) {
			return "", p.fail("unterminated string")
		}
		c := p.b[p.i]
		switch {
		case c == '"':
			s := string(append(out, p.b[start:p.i]...))
			p.i++
			return s, nil
		case c < 0x20:
			return "", p.fail("control character in a string")
		case c == '\\':
			out = append(out, p.b[start:p.i]...)
			p.i++
			if p.i >= len(p.b) {
				return "", p.fail("unterminated string")
			}
			e := p.b[p.i]
			p.i++
			switch e {
			case '"', '\\', '/':
				out = append(out, e)
			case 'b':
				out = append(out, '\b')
			case 'f':
				out = append(out, '\f')
			case 'n':
				out = append(out, '\n')
			case 'r':
				out = append(out, '\r')
			case 't':
				out = append(out, '\t')
			case 'u':
				r, ok := p.hex4()
				if !ok {
					return "", p.fail("bad \\u escape")
				}
				if 0xd800 <= r && r < 0xe000 {
					// A pair is a high surrogate and a low one; anything
					// else is U+FFFD, and what follows is read on its own.
					if 0xd800 <= r && r < 0xdc00 && p.i+1 < len(p.b) && p.b[p.i] == '\\' && p.b[p.i+1] == 'u' {
						save := p.i
						p.i += 2
						if lo, ok := p.hex4(); ok && 0xdc00 <= lo && lo < 0xe000 {
							r = 0x10000 + (r-0xd800)<<10 + (lo - 0xdc00)
						} else {
							p.i, r = save, utf8.RuneError
						}
					} else {
						r = utf8.RuneError
					}
				}
				out = utf8.AppendRune(out, r)
			default:
				return "", p.fail("bad escape")
			}
			start = p.i
		case c < utf8.RuneSelf:
			p.i++
		default:
			r, size := utf8.DecodeRune(p.b[p.i:])
			if r == utf8.RuneError && size == 1 {
				out = append(out, p.b[start:p.i]...)
				out = utf8.AppendRune(out, utf8.RuneError)
				p.i++
				start = p.i
				continue
			}
			p.i += size
		}
	}
}

// hex4 reads four hex digits.
func (p *parser) hex4() (rune, bool) {
	if len(p.b)-p.i < 4 {
		return 0, false
	}
	var r rune
	for _, c := range p.b[p.i : p.i+4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		case 'A' <= c && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	p.i += 4
	return r, true
}

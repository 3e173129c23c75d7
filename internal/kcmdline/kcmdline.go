// Package kcmdline owns parsing of the kernel command line: splitting it into
// parameters the way the kernel does and looking keys up.
package kcmdline

import "strings"

// Param is one kernel parameter: Key, and Value when it had an "=".
type Param struct {
	Key      string
	Value    string
	HasValue bool
}

// Split breaks a command line into parameters as the kernel's next_arg does:
// whitespace separates, double quotes group ("a b" or key="a b") and are removed.
// It works on bytes, as the kernel does: a value that is not UTF-8 is kept
// as it is.
func Split(s string) []Param {
	var out []Param
	var cur strings.Builder
	inQuote, started := false, false
	flush := func() {
		if started {
			out = append(out, parse(cur.String()))
		}
		cur.Reset()
		started = false
	}
	for i := 0; i < len(s); i++ {
		r := s[i]
		switch {
		case r == '"':
			inQuote = !inQuote
			started = true
		case !inQuote && (r == ' ' || r == '\t' || r == '\n' || r == '\r'):
			flush()
		default:
			cur.WriteByte(r)
			started = true
		}
	}
	flush()
	return out
}

func parse(tok string) Param {
	k, v, ok := strings.Cut(tok, "=")
	return Param{Key: k, Value: v, HasValue: ok}
}

// Lookup returns the value of the last parameter named key, as the kernel and
// most init systems let a later parameter override an earlier one.
func Lookup(params []Param, key string) (string, bool) {
	val, found := "", false
	for _, p := range params {
		if p.Key == key {
			val, found = p.Value, true
		}
	}
	return val, found
}

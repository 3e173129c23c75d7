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

// Split breaks a command line into parameters as the kernel's next_arg
// (lib/cmdline.c) does: unquoted whitespace separates, a double quote
// toggles quoting, and the quotes removed are the kernel's only: one that
// opens the parameter, one that opens its value (after the first "="), and
// the last byte when it is a quote and one of those was. A quote anywhere
// else stays (a"b"c is a"b"c, as init sees it). It works on bytes, as the
// kernel does: a value that is not UTF-8 is kept as it is.
func Split(s string) []Param {
	var out []Param
	for i := 0; ; {
		for i < len(s) && isSpace(s[i]) {
			i++
		}
		if i >= len(s) {
			return out
		}
		quoted := s[i] == '"'
		if quoted {
			i++
		}
		start, eq, inQuote := i, -1, quoted
		for ; i < len(s) && (inQuote || !isSpace(s[i])); i++ {
			if eq < 0 && s[i] == '=' {
				eq = i - start
			}
			if s[i] == '"' {
				inQuote = !inQuote
			}
		}
		tok := s[start:i]
		p := Param{Key: tok}
		if eq >= 0 {
			p = Param{Key: tok[:eq], Value: tok[eq+1:], HasValue: true}
			if strings.HasPrefix(p.Value, `"`) {
				p.Value = strings.TrimSuffix(p.Value[1:], `"`)
				quoted = false // the kernel's second strip finds its byte gone
			}
			if quoted {
				p.Value = strings.TrimSuffix(p.Value, `"`)
			}
		} else if quoted {
			p.Key = strings.TrimSuffix(p.Key, `"`)
		}
		out = append(out, p)
	}
}

// Kernel is Split up to the first "--": what follows it is init's
// arguments, not the kernel's parameters, and not this program's either.
func Kernel(s string) []Param {
	ps := Split(s)
	for i, p := range ps {
		if p.Key == "--" && !p.HasValue {
			return ps[:i]
		}
	}
	return ps
}

// isSpace is the kernel's isspace (lib/ctype.c), which separates the
// command line's parameters: the ASCII spaces, and 0xA0 (Latin-1's
// no-break space, which the kernel's table counts too).
func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r' || c == 0xa0
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

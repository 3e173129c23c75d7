package main

import (
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// printable is s as text output shows it: each control character or other
// non-printing rune is escaped as Go writes it (\n, \x1b, \u202e), and
// each byte that is not UTF-8 as \xNN. Why: names and reasons come from the
// store, which may be untrusted media; printed raw, one could move the
// cursor, recolour or clear the terminal, or forge a line of status of its
// own. A plain string is returned as it is. (--json needs none of this:
// JSON escapes control characters itself.)
func printable(s string) string {
	clean := true
	for _, r := range s {
		if r == utf8.RuneError || !unicode.IsPrint(r) {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case unicode.IsPrint(r):
			b.WriteString(s[i : i+n])
		default:
			q := strconv.QuoteRune(r)
			b.WriteString(q[1 : len(q)-1])
		}
		i += n
	}
	return b.String()
}

package bootcfg

import "strings"

// line is one line of a file: its text and the terminator it had ("\r\n", "\n",
// or "" for a last line without one), so edits keep the file's line endings.
type line struct{ text, eol string }

func splitLines(content []byte) []line {
	var ls []line
	s := string(content)
	for s != "" {
		i := strings.IndexByte(s, '\n')
		if i < 0 {
			ls = append(ls, line{text: s})
			break
		}
		l := line{text: s[:i], eol: "\n"}
		if strings.HasSuffix(l.text, "\r") {
			l.text, l.eol = l.text[:len(l.text)-1], "\r\n"
		}
		ls = append(ls, l)
		s = s[i+1:]
	}
	return ls
}

func joinLines(ls []line) []byte {
	var b strings.Builder
	for _, l := range ls {
		b.WriteString(l.text)
		b.WriteString(l.eol)
	}
	return []byte(b.String())
}

// appendLine adds text as a new last line, using the file's own line ending and
// keeping a missing final newline missing.
func appendLine(ls []line, text string) []line {
	eol := "\n"
	for _, l := range ls {
		if l.eol != "" {
			eol = l.eol
			break
		}
	}
	if len(ls) == 0 {
		return []line{{text: text, eol: eol}}
	}
	last := &ls[len(ls)-1]
	if last.eol != "" {
		return append(ls, line{text: text, eol: eol})
	}
	last.eol = eol
	return append(ls, line{text: text})
}

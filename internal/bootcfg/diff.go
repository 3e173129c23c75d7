package bootcfg

import (
	"fmt"
	"strings"
)

// maxDiffCells bounds the LCS table; past it Diff shows every line as replaced.
const maxDiffCells = 4 << 20

// Diff returns a small unified-style diff of a and b (no context lines): a
// `--- name` / `+++ name` header, then for each run of changes a
// `@@ -start,count +start,count @@` line and the removed (-) and added (+)
// lines. A line without a final newline is followed by
// `\ No newline at end of file`. Equal inputs give "".
func Diff(name string, a, b []byte) string {
	x, y := splitLines(a), splitLines(b)
	ops := lcsOps(x, y)
	var sb strings.Builder
	fmt.Fprintf(&sb, "--- %s\n+++ %s\n", name, name)
	changed := false
	i, j := 0, 0
	for k := 0; k < len(ops); {
		if ops[k] == '=' {
			i, j, k = i+1, j+1, k+1
			continue
		}
		changed = true
		var del, add []line
		for ; k < len(ops) && ops[k] != '='; k++ {
			if ops[k] == '-' {
				del, i = append(del, x[i]), i+1
			} else {
				add, j = append(add, y[j]), j+1
			}
		}
		fmt.Fprintf(&sb, "@@ -%d,%d +%d,%d @@\n", i-len(del)+1, len(del), j-len(add)+1, len(add))
		writeDiffLines(&sb, "-", del)
		writeDiffLines(&sb, "+", add)
	}
	if !changed {
		return ""
	}
	return sb.String()
}

func writeDiffLines(sb *strings.Builder, prefix string, ls []line) {
	for _, l := range ls {
		sb.WriteString(prefix + l.text + "\n")
		if l.eol == "" {
			sb.WriteString("\\ No newline at end of file\n")
		}
	}
}

// lcsOps returns the edit script turning x into y as '=', '-' and '+' bytes.
// Lines compare with their endings, so an added final newline shows up.
func lcsOps(x, y []line) []byte {
	n, m := len(x), len(y)
	if n*m > maxDiffCells {
		ops := []byte(strings.Repeat("-", n) + strings.Repeat("+", m))
		return ops
	}
	// t[i][j] = length of the LCS of x[i:] and y[j:].
	t := make([][]int, n+1)
	for i := range t {
		t[i] = make([]int, m+1)
	}
	for i := n - 1; i >= 0; i-- {
		for j := m - 1; j >= 0; j-- {
			if x[i] == y[j] {
				t[i][j] = t[i+1][j+1] + 1
			} else {
				t[i][j] = max(t[i+1][j], t[i][j+1])
			}
		}
	}
	var ops []byte
	i, j := 0, 0
	for i < n || j < m {
		switch {
		case i < n && j < m && x[i] == y[j]:
			ops, i, j = append(ops, '='), i+1, j+1
		case j == m || (i < n && t[i+1][j] >= t[i][j+1]):
			ops, i = append(ops, '-'), i+1
		default:
			ops, j = append(ops, '+'), j+1
		}
	}
	return ops
}

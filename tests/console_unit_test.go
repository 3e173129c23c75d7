package tests

// Unit tests of mendConsole (console_test.go): no VM, no root.

import (
	"strings"
	"testing"
)

func TestMendConsole(t *testing.T) {
	for _, c := range []struct {
		name, in  string
		flush     bool
		out, rest string
	}{
		{"plain lines", "a\nb\nc", false, "a\nb\n", "c"},
		{"a record at a line's start stays", "[    1.000000] k\nresult: x\n", false, "[    1.000000] k\nresult: x\n", ""},
		{"a record inside a line moves after it",
			"result: status ok[    5.477791] EXT4-fs (vda): re-mounted.\n done\nnext\n", false,
			"result: status ok done\n[    5.477791] EXT4-fs (vda): re-mounted.\nnext\n", ""},
		{"two records inside a line",
			"harness: init-start up[    5.000001] a\n[    5.000002] b\ntime=1 pid=1\n", false,
			"harness: init-start uptime=1 pid=1\n[    5.000001] a\n[    5.000002] b\n", ""},
		{"the line's end is empty",
			"waiting 5s[   25.477791] EXT4-fs: x\n\n", false, "waiting 5s\n[   25.477791] EXT4-fs: x\n", ""},
		{"the end has not come: wait", "a\nres[    5.000000] k\n", false, "a\n", "res[    5.000000] k\n"},
		{"the end has not come, flushed", "a\nres[    5.000000] k\nul", true, "a\nres[    5.000000] k\nul", ""},
		{"a bracket that is no record", "result: [1.5] x\n", false, "result: [1.5] x\n", ""},
		{"a flood after a split line: handed on as it is",
			"res[    5.000000] k\n" + strings.Repeat("[    5.000001] f\n", maxSplitRecords) + "ult\n", false,
			"res[    5.000000] k\n" + strings.Repeat("[    5.000001] f\n", maxSplitRecords) + "ult\n", ""},
	} {
		out, rest := mendConsole([]byte(c.in), c.flush)
		if string(out) != c.out || string(rest) != c.rest {
			t.Errorf("%s: mendConsole(%q, %v) = %q, %q; want %q, %q", c.name, c.in, c.flush, out, rest, c.out, c.rest)
		}
	}
}

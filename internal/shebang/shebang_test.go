package shebang

import (
	"errors"
	"strings"
	"testing"
)

// TestInterpreter: the name ends where the kernel ends it (space, tab, NUL,
// newline), and nowhere else; a carriage return is part of it.
func TestInterpreter(t *testing.T) {
	long := "#!/" + strings.Repeat("x", 300)
	for _, tc := range []struct {
		head, name string
		ok         bool
		err        error
	}{
		{"\x7fELF", "", false, nil},
		{"#!/bin/sh\n", "/bin/sh", true, nil},
		{"#! /bin/sh -e\n", "/bin/sh", true, nil},
		{"#!\t/bin/busybox\tsh\n", "/bin/busybox", true, nil},
		{"#!/bin/sh\r\nexec x\r\n", "/bin/sh\r", true, nil},
		{"#!/bin/sh\v\n", "/bin/sh\v", true, nil}, // only space and tab separate
		{"#!/nonexistent\x00/bin/sh\n", "/nonexistent", true, nil},
		{"#!/bin/sh", "/bin/sh", true, nil}, // a short file without a newline
		{"#!bin/sh\n", "bin/sh", true, nil}, // relative: from the working directory
		{"#!\n", "", true, ErrNoInterpreter},
		{"#!   \t\n/bin/sh\n", "", true, ErrNoInterpreter},
		{long, "", true, ErrTruncated},
		{"#!/bin/sh " + strings.Repeat("a", 300), "/bin/sh", true, nil}, // the cut is in the argument
	} {
		name, ok, err := Interpreter([]byte(tc.head))
		if name != tc.name || ok != tc.ok || !errors.Is(err, tc.err) {
			t.Errorf("Interpreter(%q) = %q, %v, %v; want %q, %v, %v", tc.head, name, ok, err, tc.name, tc.ok, tc.err)
		}
	}
}

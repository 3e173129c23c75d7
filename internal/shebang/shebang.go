// Package shebang reads a "#!" line as the kernel does (fs/binfmt_script.c),
// for the checks that a root's init can run: the PID-1 path's, before it
// pivots into a root, and apply's, before it stages an image. Both must
// find the interpreter the kernel will look for, byte for byte: a check
// that read "#!/bin/sh\r\n" (a script saved with Windows line ends) as
// /bin/sh passed a root whose init the kernel then could not run.
package shebang

import (
	"bytes"
	"errors"
)

// BufSize is how much of a file the kernel reads for its "#!" line
// (BINPRM_BUF_SIZE).
const BufSize = 256

// ErrNoInterpreter: the "#!" line names no interpreter the kernel would run.
var ErrNoInterpreter = errors.New("its #! line names no interpreter")

// ErrTruncated: the interpreter's name runs past the first BufSize bytes,
// which the kernel refuses (ENOEXEC) rather than run a cut name.
var ErrTruncated = errors.New("its #! line is longer than the kernel reads (256 bytes) and cuts the interpreter's name")

// Interpreter returns the interpreter a script's first bytes name, as the
// kernel finds it: after "#!" and any spaces and tabs, up to the next
// space, tab, NUL or newline. Anything else is part of the name, a
// carriage return included (the kernel then looks for "/bin/sh\r"). A
// relative name is the kernel's too: it is looked up from the working
// directory, "/" for init. ok is false when head is not a script.
func Interpreter(head []byte) (name string, ok bool, err error) {
	if !bytes.HasPrefix(head, []byte("#!")) {
		return "", false, nil
	}
	buf := head[:min(len(head), BufSize)]
	line := buf[2:]
	if i := bytes.IndexByte(line, '\n'); i >= 0 {
		line = line[:i]
	} else if len(head) >= BufSize {
		// No newline in the buffer: the kernel runs the line only if the
		// name ends before the buffer does (a space, tab or NUL after it).
		rest := bytes.TrimLeft(line, " \t")
		if len(rest) > 0 && !bytes.ContainsAny(rest, " \t\x00") {
			return "", true, ErrTruncated
		}
	}
	line = bytes.TrimLeft(line, " \t")
	if i := bytes.IndexAny(line, " \t\x00"); i >= 0 {
		line = line[:i]
	}
	if len(line) == 0 {
		return "", true, ErrNoInterpreter
	}
	return string(line), true, nil
}

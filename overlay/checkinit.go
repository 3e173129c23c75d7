package overlay

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"strings"

	"github.com/overlayupd/overlayupd/internal/shebang"
)

// ErrBadInit: the root's /sbin/init cannot be what the kernel runs as PID 1.
var ErrBadInit = errors.New("the root's init cannot run")

// maxShebang bounds the "#!" line read from a script init; the kernel's
// limit (BINPRM_BUF_SIZE) is 256 bytes.
const maxShebang = 256

// InitFile is what CheckInit needs to know about a file init resolves to.
type InitFile struct {
	Path string      // inside the root, for messages
	Mode fs.FileMode // after following symlinks inside the root
	Size int64
	Head []byte // the first bytes (up to maxShebang)
	Err  error  // opening or reading it failed (EIO on a damaged image)
}

// CheckInit decides whether the kernel could exec init as PID 1: a regular,
// executable, non-empty file that is an ELF binary or a "#!" script whose
// interpreter (looked up with lookup, inside the same root) passes the same
// test. It returns the interpreter path to check next, or "" when done. A
// pure function: the caller reads the files (readInit).
func CheckInit(f InitFile) (interp string, err error) {
	switch {
	case f.Err != nil:
		return "", fmt.Errorf("%w: %s: %w", ErrBadInit, f.Path, f.Err)
	case !f.Mode.IsRegular():
		return "", fmt.Errorf("%w: %s is not a regular file (%v)", ErrBadInit, f.Path, f.Mode.Type())
	case f.Mode.Perm()&0o111 == 0:
		return "", fmt.Errorf("%w: %s is not executable (mode %04o)", ErrBadInit, f.Path, f.Mode.Perm())
	case f.Size == 0:
		return "", fmt.Errorf("%w: %s is empty (0 bytes)", ErrBadInit, f.Path)
	case bytes.HasPrefix(f.Head, []byte("\x7fELF")):
		return "", nil
	case bytes.HasPrefix(f.Head, []byte("#!")):
		name, _, err := shebang.Interpreter(f.Head)
		if err != nil {
			return "", fmt.Errorf("%w: %s: %w", ErrBadInit, f.Path, err)
		}
		if !strings.HasPrefix(name, "/") {
			name = "/" + name // the kernel looks it up from init's working directory, /
		}
		return name, nil
	}
	return "", fmt.Errorf("%w: %s is neither an ELF binary nor a #! script", ErrBadInit, f.Path)
}

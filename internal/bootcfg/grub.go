package bootcfg

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"

	"github.com/overlayupd/overlayupd/internal/fsmode"
)

const (
	grubVar        = "GRUB_CMDLINE_LINUX"
	grubDefaultVar = "GRUB_CMDLINE_LINUX_DEFAULT"
)

// grubValue is a `NAME=value` assignment in /etc/default/grub, cut into the part
// before the value, the value without its quotes, the quote ("\"", "'" or ""),
// and what follows the closing quote (whitespace or a comment).
type grubValue struct {
	head, val, quote, after string
}

// parseGrub recognises `[export ]NAME=...` on one line. ok is false for other
// lines; err is set for an assignment of NAME too complex to edit safely
// (see cutGrub and grubSafe).
func parseGrub(text, name string) (g grubValue, ok bool, err error) {
	if g, ok, err = cutGrub(text, name); !ok || err != nil {
		return g, ok, err
	}
	return g, true, grubSafe(g, name)
}

// cutGrub cuts `[export ]NAME=value...` into a grubValue, reading the
// value's quoting as the shell does; ok is false for other lines, err is
// set when the value does not end on this line or is no single word.
func cutGrub(text, name string) (g grubValue, ok bool, err error) {
	indent := len(text) - len(strings.TrimLeft(text, " \t"))
	rest := text[indent:]
	if r, cut := strings.CutPrefix(rest, "export"); cut && r != "" && (r[0] == ' ' || r[0] == '\t') {
		rest = strings.TrimLeft(r, " \t")
	}
	if !strings.HasPrefix(rest, name+"=") {
		return g, false, nil
	}
	n := len(text) - len(rest) + len(name) + 1
	g.head, rest = text[:n], text[n:]
	end := 0
	switch {
	case strings.HasPrefix(rest, `"`):
		end = closingQuote(rest, '"')
		g.quote = `"`
	case strings.HasPrefix(rest, "'"):
		end = closingQuote(rest, '\'')
		g.quote = "'"
	default:
		end = strings.IndexAny(rest, " \t")
		if end < 0 {
			end = len(rest)
		}
		if strings.ContainsAny(rest[:end], "\"'\\$`;&|<>(){}~") {
			end = -1
		}
	}
	if end < 0 {
		return g, true, fmt.Errorf("%w: cannot safely edit %s (unterminated quote, multi-line or composite shell value); put it on one line as %s=\"...\" and retry", ErrRefused, name, name)
	}
	g.after = rest[end+len(g.quote):]
	g.val = strings.TrimPrefix(rest[:end], g.quote)
	return g, true, nil
}

// closingQuote returns the index in s (which starts with q) of the matching
// closing quote, or -1. Inside double quotes a backslash escapes the next byte.
func closingQuote(s string, q byte) int {
	for i := 1; i < len(s); i++ {
		switch {
		case s[i] == '\\' && q == '"':
			i++
		case s[i] == q:
			return i
		}
	}
	return -1
}

func (g grubValue) String() string {
	q := g.quote
	if q == "" && strings.ContainsAny(g.val, " \t") {
		q = `"`
	}
	return g.head + q + g.val + q + g.after
}

// editGrub edits every GRUB_CMDLINE_LINUX assignment in /etc/default/grub (the
// shell keeps the last; editing all keeps them consistent), keeping its quotes;
// an unquoted value gains double quotes once it has several parameters. It
// refuses a file where the edit would not reach the kernel as written, or
// could miss the assignment the shell keeps (see grubsafe.go). Install
// with no assignment appends GRUB_CMDLINE_LINUX="ro init=/sbin/init-overlay".
// Install refuses a GRUB_CMDLINE_LINUX_DEFAULT holding another init=, because
// grub puts it after GRUB_CMDLINE_LINUX and the kernel keeps the last init=.
// The caller must regenerate grub.cfg (update-grub) after a change.
func editGrub(content []byte, edit editFunc, install bool) ([]byte, error) {
	ls := splitLines(content)
	found := false
	for i, l := range ls {
		g, ok, err := parseGrub(l.text, grubVar)
		if !ok {
			if err := grubLineSafe(ls, i, grubVar); err != nil {
				return nil, err
			}
			if install {
				if err := checkGrubDefault(l.text); err != nil {
					return nil, fmt.Errorf("grub line %d: %w", i+1, err)
				}
			}
			continue
		}
		if err == nil {
			err = grubContinued(ls, i)
		}
		if err != nil {
			return nil, fmt.Errorf("grub line %d: %w", i+1, err)
		}
		found = true
		v, err := edit(g.val)
		if err != nil {
			return nil, fmt.Errorf("grub line %d: %w", i+1, err)
		}
		if v != g.val {
			g.val = v
			ls[i].text = g.String()
		}
	}
	if !found && install {
		v, _ := edit("") // cannot fail on an empty line
		ls = appendLine(ls, grubVar+`="`+v+`"`)
		if err := grubContinued(ls, len(ls)-1); err != nil {
			return nil, fmt.Errorf("grub: adding %s at the end: %w", grubVar, err)
		}
	}
	return joinLines(ls), nil
}

// checkGrubDefault refuses an install when text assigns
// GRUB_CMDLINE_LINUX_DEFAULT a value that would undo the edit (see
// checkGrubAfter): grub-mkconfig puts it after GRUB_CMDLINE_LINUX.
func checkGrubDefault(text string) error {
	g, ok, err := cutGrub(text, grubDefaultVar)
	if !ok || err != nil {
		return nil // not ours to judge; grub-mkconfig will complain if it is broken
	}
	return checkGrubAfter(grubDefaultVar, g.val)
}

// checkGrubAfter refuses a value of name that reaches the kernel after
// GRUB_CMDLINE_LINUX's ro init=/sbin/init-overlay and has another init= or
// rw (see checkGrubParams).
func checkGrubAfter(name, val string) error {
	fields, _, err := splitFields(val)
	if err != nil {
		return nil
	}
	return checkGrubParams(name, fields[:kernelEnd(fields)])
}

// checkGrubParams refuses kernel parameters that come after install's ro
// init=/sbin/init-overlay on the kernel's command line and hold another
// init= or rw: the kernel keeps the last of each, so the root would boot
// without the overlay, or read-write.
func checkGrubParams(name string, fields []field) error {
	for _, f := range fields {
		switch p := param(f.tok); {
		case isInit(p) && p.Value != TrampolinePath:
			return fmt.Errorf("%w: %s sets %s, which overrides %s; remove it from %s and retry", ErrRefused, name, f.tok, initParam, name)
		case isFlag(p, "rw"):
			return fmt.Errorf("%w: %s has rw, which comes after GRUB_CMDLINE_LINUX's ro on the kernel's command line and mounts the root read-write under the overlay; remove it from %s and retry", ErrRefused, name, name)
		}
	}
	return nil
}

// mentionsGrubLinux matches GRUB_CMDLINE_LINUX as a word of its own (not
// GRUB_CMDLINE_LINUX_DEFAULT).
var mentionsGrubLinux = regexp.MustCompile(`(^|[^A-Za-z0-9_])` + grubVar + `([^A-Za-z0-9_]|$)`)

// checkGrubDropIns refuses an install whose edit of the GRUB defaults file
// at path would not reach the kernel. grub-mkconfig (Debian, Ubuntu)
// sources DIR/grub.d/*.cfg after it, so each drop-in is held to the rules
// of the defaults file itself (grubsafe.go), and:
//   - a GRUB_CMDLINE_LINUX there must include its earlier value,
//     "$GRUB_CMDLINE_LINUX", before any `--`: without it the drop-in
//     replaces the edit, init=/sbin/init-overlay with it, and the board
//     boots without the overlay, silently;
//   - what it adds after that value, and a GRUB_CMDLINE_LINUX_DEFAULT, must
//     hold no other init= and no rw (checkGrubParams);
//   - any other line that names GRUB_CMDLINE_LINUX (unset, readonly, an
//     assignment inside another command) is refused: what it does to the
//     value is not known here.
//
// An assignment inside an if block is judged as if it runs. Cloud and
// vendor images ship such drop-ins (50-cloudimg-settings.cfg).
func checkGrubDropIns(path string) error {
	files, _ := filepath.Glob(filepath.Join(filepath.Dir(path), "grub.d", "*.cfg")) // only a bad pattern errs
	for _, f := range files {
		if strings.HasPrefix(filepath.Base(f), ".") {
			continue // the shell's *.cfg does not match a dot file
		}
		b, err := readDropIn(f)
		if errors.Is(err, fs.ErrNotExist) {
			continue // a dangling link: grub-mkconfig's [ -e ] skips it too
		}
		if err != nil {
			return fmt.Errorf("read %s, which grub-mkconfig reads after %s: %w", f, path, err)
		}
		ls := splitLines(b)
		for i := range ls {
			if err := checkGrubDropInLine(ls, i, path, f); err != nil {
				return fmt.Errorf("%s line %d (grub-mkconfig reads it after %s): %w", f, i+1, path, err)
			}
		}
	}
	return nil
}

// maxDropIn bounds what readDropIn reads of one drop-in.
const maxDropIn = 1 << 20

// readDropIn reads the drop-in f, which must be a regular file (a link to
// one is fine) of at most maxDropIn bytes. Why not os.ReadFile: a FIFO
// named *.cfg would block install for ever (grub-mkconfig would hang on it
// too), and a device or a huge file would be read without end. It is
// opened without blocking, and checked on the open descriptor, so a FIFO
// swapped in after a stat cannot block it either.
func readDropIn(f string) ([]byte, error) {
	fd, err := os.OpenFile(f, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	defer fd.Close()
	st, err := fd.Stat()
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%w: it is a %s, not a file grub-mkconfig can source; remove it and retry", ErrRefused, fsmode.Kind(st.Mode()))
	}
	if st.Size() > maxDropIn {
		return nil, fmt.Errorf("%w: it is %d bytes, more than a GRUB drop-in holds (%d); check it and retry", ErrRefused, st.Size(), maxDropIn)
	}
	return io.ReadAll(io.LimitReader(fd, maxDropIn+1))
}

// checkGrubDropInLine is checkGrubDropIns for line i of the drop-in f.
func checkGrubDropInLine(ls []line, i int, path, f string) error {
	text := ls[i].text
	if t := strings.TrimLeft(text, " \t"); t == "" || t[0] == '#' {
		return nil
	}
	g, ok, err := parseGrub(text, grubVar)
	if !ok {
		if err := grubLineSafe(ls, i, grubVar); err != nil {
			return err
		}
		if _, isDefault, _ := cutGrub(text, grubDefaultVar); !isDefault && mentionsGrubLinux.MatchString(text) {
			return fmt.Errorf("%w: it names %s in a way overlayupd cannot judge (%q); remove the line, or write it as %s=\"$%s ...\", and retry", ErrRefused, grubVar, strings.TrimSpace(text), grubVar, grubVar)
		}
		return checkGrubDefault(text)
	}
	if err == nil {
		err = grubContinued(ls, i)
	}
	if err != nil {
		return err
	}
	fields, _, err := splitFields(g.val)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrRefused, err)
	}
	end := kernelEnd(fields)
	for k, fl := range fields[:end] {
		if g.quote == `"` && (fl.tok == "$"+grubVar || fl.tok == "${"+grubVar+"}") {
			return checkGrubParams(grubVar+" in "+filepath.Base(f), fields[k+1:end])
		}
	}
	return fmt.Errorf("%w: it sets %s without including its earlier value before any --, which replaces the edit and %s with it. "+
		"Move its parameters into %s's %s, or make it add to it (%s=\"$%s ...\"), and retry",
		ErrRefused, grubVar, initParam, path, grubVar, grubVar, grubVar)
}

// grubDefaultLen is the room the value of GRUB_CMDLINE_LINUX_DEFAULT (the
// last assignment's, as the shell keeps) takes after GRUB_CMDLINE_LINUX on
// the kernel's command line, with the space before it.
func grubDefaultLen(content []byte) int {
	n := 0
	for _, l := range splitLines(content) {
		if g, ok, err := cutGrub(l.text, grubDefaultVar); ok && err == nil {
			n = 0
			if v := strings.TrimSpace(g.val); v != "" {
				n = 1 + len(v)
			}
		}
	}
	return n
}

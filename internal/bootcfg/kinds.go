package bootcfg

import (
	"fmt"
	"path"
	"strings"

	"github.com/overlayupd/overlayupd/internal/kcmdline"
)

// editFunc edits one kernel command line (installParams or uninstallParams).
type editFunc func(string) (string, error)

// editRPi edits cmdline.txt, which the firmware reads as a single line. It
// refuses a file with several non-empty lines or without root=, as that is not
// a command line it can safely edit (e.g. the stub /boot/cmdline.txt that
// Raspberry Pi OS Bookworm leaves pointing at /boot/firmware/cmdline.txt).
func editRPi(content []byte, edit editFunc) ([]byte, error) {
	ls := splitLines(content)
	idx, err := rpiLine(ls)
	if err != nil {
		return nil, err
	}
	text, err := edit(ls[idx].text)
	if err != nil {
		return nil, err
	}
	ls[idx].text = text
	return joinLines(ls), nil
}

// rpiLine returns the index of the one non-empty line of a valid cmdline.txt.
func rpiLine(ls []line) (int, error) {
	idx, n := -1, 0
	for i, l := range ls {
		if strings.TrimSpace(l.text) != "" {
			idx, n = i, n+1
		}
	}
	switch {
	case n == 0:
		return 0, fmt.Errorf("%w: cmdline.txt is empty; it must hold the whole kernel command line (with root=) on one line", ErrRefused)
	case n > 1:
		return 0, fmt.Errorf("%w: cmdline.txt has %d non-empty lines, but the kernel command line must be a single line; join the kernel parameters into one line (or, if this is not a kernel command line, point --boot-dir at the right boot partition) and retry", ErrRefused, n)
	}
	if !hasRoot(ls[idx].text) {
		return 0, fmt.Errorf("%w: cmdline.txt has no root= parameter, so it is not this system's kernel command line (on Raspberry Pi OS Bookworm the real one is /boot/firmware/cmdline.txt); check the file or point --boot-dir at the boot partition", ErrRefused)
	}
	return idx, nil
}

func hasRoot(s string) bool {
	for _, p := range kcmdline.Split(s) {
		if isFlag(p, "--") {
			return false
		}
		if p.Key == "root" && p.HasValue {
			return true
		}
	}
	return false
}

const uenvKey = "cmdline="

// editUEnv edits the value of every `cmdline=` line of a U-Boot uEnv.txt (U-Boot
// takes the last; editing all keeps them consistent). Lines must start with
// cmdline= in column one, as `env import -t` reads them; commented lines are left
// alone. Install with no cmdline= line appends `cmdline=ro init=/sbin/init-overlay`,
// which the usual boot scripts (BeagleBone's among them) add to bootargs.
func editUEnv(content []byte, edit editFunc, install bool) ([]byte, error) {
	ls := splitLines(content)
	found := false
	for i, l := range ls {
		if !strings.HasPrefix(l.text, uenvKey) {
			continue
		}
		found = true
		v, err := edit(l.text[len(uenvKey):])
		if err != nil {
			return nil, fmt.Errorf("uEnv.txt line %d: %w", i+1, err)
		}
		ls[i].text = uenvKey + v
	}
	if !found && install {
		v, _ := edit("") // cannot fail on an empty line
		ls = appendLine(ls, uenvKey+v)
	}
	return joinLines(ls), nil
}

// extlinuxArgs splits an extlinux.conf line into "  APPEND" and its arguments
// (with their leading whitespace); ok is false for other lines. The keyword is
// matched case-insensitively, as syslinux and U-Boot do.
func extlinuxArgs(text string) (head, args string, ok bool) {
	indent := len(text) - len(strings.TrimLeft(text, " \t"))
	rest := text[indent:]
	const kw = "append"
	if len(rest) < len(kw) || !strings.EqualFold(rest[:len(kw)], kw) {
		return "", "", false
	}
	if len(rest) > len(kw) && rest[len(kw)] != ' ' && rest[len(kw)] != '\t' {
		return "", "", false
	}
	n := indent + len(kw)
	return text[:n], text[n:], true
}

// editExtlinux edits every APPEND line of extlinux.conf (one per label, plus
// any global one), keeping indentation and the keyword's case. Install refuses a
// file with no APPEND line: it cannot know which label's kernel to change.
// Install leaves alone a label whose init= is a shell (a rescue entry,
// init=/bin/sh): it is the way into a board whose normal boot fails, and
// through the overlay it would boot the normal init instead.
func editExtlinux(content []byte, edit editFunc, install bool) ([]byte, error) {
	ls := splitLines(content)
	found, rescue := false, false
	for i, l := range ls {
		head, args, ok := extlinuxArgs(l.text)
		if !ok {
			continue
		}
		if install && runsShell(args) {
			rescue = true
			continue
		}
		found = true
		v, err := edit(args)
		if err != nil {
			return nil, fmt.Errorf("extlinux.conf line %d: %w", i+1, err)
		}
		if v != "" && !isSpace(v[0]) {
			v = " " + v // a bare APPEND needs a space before its first argument
		}
		ls[i].text = head + v
	}
	switch {
	case !found && rescue && install:
		return nil, fmt.Errorf("%w: every APPEND line of extlinux.conf runs a shell as init (a rescue entry, left alone); add `APPEND root=...` to the label you boot and retry", ErrRefused)
	case !found && install:
		return nil, fmt.Errorf("%w: extlinux.conf has no APPEND line; add `APPEND root=...` to the label you boot and retry", ErrRefused)
	}
	return joinLines(ls), nil
}

// shells are the programs whose init= marks a rescue entry.
var shells = map[string]bool{"sh": true, "ash": true, "bash": true, "dash": true, "hush": true, "ksh": true, "mksh": true, "zsh": true, "busybox": true}

// runsShell reports whether the kernel command line s has an init= that is
// a shell (the last one: the kernel keeps it), before any "--".
func runsShell(s string) bool {
	fs, _, err := splitFields(s)
	if err != nil {
		return false
	}
	sh := false
	for _, f := range fs[:kernelEnd(fs)] {
		if p := param(f.tok); isInit(p) {
			sh = shells[path.Base(p.Value)]
		}
	}
	return sh
}

package bootcfg

import (
	"fmt"

	"github.com/overlayupd/overlayupd/internal/kcmdline"
)

// field is one parameter of a command line with the whitespace before it, so
// that a line can be edited and joined back without disturbing its spacing.
type field struct{ sep, tok string }

// splitFields cuts s the way kcmdline.Split does (whitespace separates, double
// quotes group) but keeps the raw bytes. tail is the whitespace after the last
// parameter. An unbalanced quote is an error: whatever we appended would end up
// inside it.
func splitFields(s string) (fs []field, tail string, err error) {
	i := 0
	for i < len(s) {
		j := i
		for j < len(s) && isSpace(s[j]) {
			j++
		}
		if j == len(s) {
			return fs, s[i:], nil
		}
		k, inQuote := j, false
		for k < len(s) && (inQuote || !isSpace(s[k])) {
			if s[k] == '"' {
				inQuote = !inQuote
			}
			k++
		}
		if inQuote {
			return nil, "", fmt.Errorf("%w: unbalanced double quote in kernel command line %q; fix the quoting and retry", ErrRefused, s)
		}
		fs = append(fs, field{sep: s[i:j], tok: s[j:k]})
		i = k
	}
	return fs, "", nil
}

func joinFields(fs []field, tail string) string {
	n := len(tail)
	for _, f := range fs {
		n += len(f.sep) + len(f.tok)
	}
	b := make([]byte, 0, n)
	for _, f := range fs {
		b = append(b, f.sep...)
		b = append(b, f.tok...)
	}
	return string(append(b, tail...))
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r'
}

// param interprets one raw token as the kernel would (quotes removed).
func param(tok string) kcmdline.Param {
	if ps := kcmdline.Split(tok); len(ps) == 1 {
		return ps[0]
	}
	return kcmdline.Param{Key: tok}
}

func isInit(p kcmdline.Param) bool { return p.Key == "init" && p.HasValue }
func isOurs(p kcmdline.Param) bool { return isInit(p) && p.Value == TrampolinePath }
func isFlag(p kcmdline.Param, name string) bool {
	return p.Key == name && !p.HasValue
}

// kernelEnd is the index of the `--` field, after which parameters go to init.
func kernelEnd(fs []field) int {
	for i, f := range fs {
		if isFlag(param(f.tok), "--") {
			return i
		}
	}
	return len(fs)
}

// installParams applies the install rules of the package doc to one command line.
func installParams(s string) (string, error) { return install(s, Options{}) }

// installer returns the edit of one command line that Install with o makes.
func installer(o Options) editFunc {
	return func(s string) (string, error) { return install(s, o) }
}

func install(s string, o Options) (string, error) {
	fs, tail, err := splitFields(s)
	if err != nil {
		return "", err
	}
	end := kernelEnd(fs)
	out := make([]field, 0, len(fs)+4)
	seenInit, hasRO, btrfs, hasFlags := false, false, false, false
	seenRoot, seenType, hasWait := false, false, false
	for _, f := range fs[:end] {
		p := param(f.tok)
		switch {
		case p.Key == "root" && o.Root != "" && seenRoot:
			continue // the kernel honours the last root=: keep one, ours
		case p.Key == "root" && o.Root != "":
			seenRoot, f.tok = true, "root="+o.Root
		case p.Key == "rootfstype" && o.RootFSType != "" && seenType:
			continue
		case p.Key == "rootfstype" && o.RootFSType != "":
			seenType, f.tok = true, "rootfstype="+o.RootFSType
		}
		p = param(f.tok)
		switch {
		case p.Key == "rootfstype" && p.Value == "btrfs":
			btrfs = true
		case p.Key == "rootflags":
			hasFlags = true
		case isFlag(p, "rootwait"):
			hasWait = true
		}
		switch {
		case isInit(p) && seenInit:
			continue // an earlier field already carries our init=
		case isInit(p):
			seenInit, f.tok = true, initParam
		case isFlag(p, "rw"):
			hasRO, f.tok = true, "ro"
		case isFlag(p, "ro"):
			hasRO = true
		}
		out = append(out, f)
	}
	rest := append([]field(nil), fs[end:]...)
	var add []string
	if o.Root != "" && !seenRoot {
		add = append(add, "root="+o.Root)
	}
	if o.RootFSType != "" && !seenType {
		add = append(add, "rootfstype="+o.RootFSType)
		btrfs = o.RootFSType == "btrfs"
	}
	if o.Root != "" && !hasWait {
		// A store on an SD card or USB disk may show up after the kernel
		// first looks for it.
		add = append(add, "rootwait")
	}
	if !hasRO {
		add = append(add, "ro")
	}
	if o.BtrfsStore && btrfs && !hasFlags {
		// A btrfs store boots from its top level: a default subvolume set
		// by someone else must not hide the trampoline.
		add = append(add, "rootflags=subvolid=5")
	}
	if !seenInit {
		add = append(add, initParam)
	}
	for _, tok := range add {
		f := field{sep: " ", tok: tok}
		if len(out) == 0 { // nothing before us: take over the leading whitespace
			f.sep = ""
			if len(rest) > 0 {
				f.sep, rest[0].sep = rest[0].sep, " "
			}
		}
		out = append(out, f)
	}
	return joinFields(append(out, rest...), tail), nil
}

// uninstallParams removes init=/sbin/init-overlay from one command line.
func uninstallParams(s string) (string, error) {
	fs, tail, err := splitFields(s)
	if err != nil {
		return "", err
	}
	end := kernelEnd(fs)
	out := make([]field, 0, len(fs))
	lead, dropped := "", false
	for i, f := range fs {
		if i < end && isOurs(param(f.tok)) {
			if len(out) == 0 && !dropped {
				lead = f.sep // keep the line's leading whitespace
			}
			dropped = true
			continue
		}
		if len(out) == 0 && dropped {
			f.sep = lead
		}
		out = append(out, f)
	}
	if !dropped {
		return s, nil
	}
	return joinFields(out, tail), nil
}

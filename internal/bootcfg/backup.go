package bootcfg

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strings"

	"github.com/overlayupd/overlayupd/internal/atomicfile"
)

// maxBackup bounds what readBackup reads: boot configuration files are small.
const maxBackup = 1 << 20

// backup keeps path's backup, PATH.overlayupd.bak, before Edit writes path,
// and reports its path and whether it was (re)written. It writes old there
// when there is no backup, and when the one there is stale: old holds no
// init=/sbin/init-overlay and differs from the backup in more than
// overlayupd's own edits (changedSinceBackup), i.e. the file was changed
// after an uninstall, by hand or by another tool. Restoring such a backup
// would throw those changes away or bring back a root= that no longer
// boots; old is what boots without overlayupd now. A backup is kept while
// the file holds overlayupd's edit (it is the file from before that edit)
// or only overlayupd's edits of it (uninstall leaves `ro` and no init=,
// where the backup still has the rw or the init= the user wrote).
//
// Why before the edit: if we crash between the two writes, the file as it
// was is already safe, and the backup matches it.
func backup(k Kind, path string, old []byte, perm fs.FileMode) (bak string, wrote bool, err error) {
	bak = path + BackupSuffix
	prev, err := readBackup(bak)
	if err != nil {
		return "", false, err
	}
	if prev != nil && (holdsOurs(k, old) || changedSinceBackup(k, old, prev) == nil) {
		return bak, false, nil
	}
	if err := atomicfile.WriteFile(bak, old, perm); err != nil {
		return "", false, fmt.Errorf("write backup: %w", err)
	}
	return bak, prev != nil, nil
}

// readBackup reads the backup at bak; nil, nil when there is none.
func readBackup(bak string) ([]byte, error) {
	fi, err := os.Lstat(bak)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("check backup %s: %w", bak, err)
	case !fi.Mode().IsRegular() || fi.Size() > maxBackup:
		return nil, fmt.Errorf("%w: backup %s is not a regular file of sane size; move it away (or restore it by hand) and retry", ErrRefused, bak)
	}
	b, err := os.ReadFile(bak)
	if err != nil {
		return nil, fmt.Errorf("read backup %s: %w", bak, err)
	}
	return b, nil
}

// holdsOurs reports whether a kernel command line of content has
// init=/sbin/init-overlay, i.e. overlayupd is installed in it.
func holdsOurs(k Kind, content []byte) bool {
	un, err := Uninstall(k, content)
	return err == nil && !bytes.Equal(un, content)
}

// errIncomparable is changedSinceBackup's answer when a file or its backup
// cannot be read as its kind, so whether it changed is not known.
var errIncomparable = errors.New("the file and its backup cannot be compared")

// changedSinceBackup returns nil when cur, a file of kind k, is what
// overlayupd's edits make of its backup bak, and else says how it differs.
// Overlayupd's edits touch only the parameters install sets (init=, ro, rw,
// root=, rootfstype=, rootwait, rootflags=subvolid=5), so those are left
// out of the comparison, and every other byte of the file must match
// (spacing between parameters aside). A file that no longer holds
// init=/sbin/init-overlay must also have the backup's root=: only install
// --store-device changes it, and uninstall refuses to leave that behind.
func changedSinceBackup(k Kind, cur, bak []byte) error {
	if bytes.Equal(cur, bak) {
		return nil
	}
	inst, err := Install(k, bak)
	if err != nil {
		return fmt.Errorf("%w (%v)", errIncomparable, err)
	}
	want, err1 := apply(k, inst, false, stripOurs)
	got, err2 := apply(k, cur, false, stripOurs)
	if err := errors.Join(err1, err2); err != nil {
		return fmt.Errorf("%w (%v)", errIncomparable, err)
	}
	if !bytes.Equal(got, want) {
		return errors.New("it differs from the backup in more than the parameters overlayupd sets (init=, ro/rw, root=, rootfstype=, rootwait, rootflags=subvolid=5)")
	}
	if holdsOurs(k, cur) {
		return nil
	}
	now, err1 := rootValues(k, cur)
	was, err2 := rootValues(k, bak)
	if errors.Join(err1, err2) == nil && !slices.Equal(now, was) {
		return fmt.Errorf("it holds no %s and its root= (%s) is not the backup's (%s)", initParam, strings.Join(now, ", "), strings.Join(was, ", "))
	}
	return nil
}

// stripOurs removes from one command line the parameters install sets and
// joins the rest with single spaces.
func stripOurs(s string) (string, error) {
	fs, _, err := splitFields(s)
	if err != nil {
		return "", err
	}
	end := kernelEnd(fs)
	keep := make([]string, 0, len(fs))
	for i, f := range fs {
		p := param(f.tok)
		ours := isInit(p) || isFlag(p, "ro") || isFlag(p, "rw") || isFlag(p, "rootwait") ||
			(p.HasValue && (p.Key == "root" || p.Key == "rootfstype")) ||
			(p.Key == "rootflags" && p.Value == "subvolid=5")
		if i < end && ours {
			continue
		}
		keep = append(keep, f.tok)
	}
	return strings.Join(keep, " "), nil
}

package bootcfg

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	"github.com/overlayupd/overlayupd/internal/atomicfile"
	"github.com/overlayupd/overlayupd/internal/fsmode"
	"github.com/overlayupd/overlayupd/internal/kcmdline"
)

// BackupSuffix is appended to a file's path to name its backup.
const BackupSuffix = ".overlayupd.bak"

// Result says what Edit did (or, in a dry run, would do) to one file.
type Result struct {
	Target  Target
	Changed bool   // the content differs from what was on disk
	Diff    string // Diff of old and new content; "" when unchanged
	// Backup is the path of the backup holding the file as it was before
	// overlayupd's install; "" when none exists (unchanged or dry run).
	Backup string
	// BackupRefreshed says Edit replaced an older backup, which no longer
	// held the file as it was before this install (see backup).
	BackupRefreshed bool
	// NeedsGrubUpdate is set for a changed Grub target: grub.cfg must be
	// regenerated (update-grub) before the change takes effect.
	NeedsGrubUpdate bool
}

// Edit installs (install=true) or uninstalls overlayupd in t. A file whose
// content would not change is not written. Otherwise, before the change, the
// file as it was is kept in PATH.overlayupd.bak (see backup for when an
// existing backup is kept and when it is refreshed): it holds what Uninstall
// cannot rebuild (a replaced init= or rw, a root= that --store-device
// replaced), for Restore. Install refuses a command line that would not fit
// the kernel (see CmdlineLimit), and a GRUB defaults file whose grub.d
// drop-ins would undo it (see checkGrubDropIns). Uninstall refuses a file whose root= is not
// its backup's (install --store-device changed it): see checkUninstallRoot. Both writes are atomic and keep the file's
// permission bits; a symlinked path is edited at its target. With dryRun
// nothing is written and Result.Diff shows the change.
func Edit(t Target, install, dryRun bool) (Result, error) {
	res := Result{Target: t}
	path, perm, old, err := readTarget(t)
	if err != nil {
		return res, err
	}
	var updated []byte
	if install {
		updated, err = InstallWith(t.Kind, old, t.Options())
	} else {
		updated, err = Uninstall(t.Kind, old)
	}
	if err != nil {
		return res, fmt.Errorf("%s: %w", t.Path, err)
	}
	if install && t.Kind == Grub {
		// Checked also when the file is installed already: a drop-in
		// added since undoes the install just as well.
		if err := checkGrubDropIns(t.Path); err != nil {
			return res, err
		}
	}
	if bytes.Equal(old, updated) {
		return res, nil
	}
	if install {
		// The line grows: it must still fit the kernel's buffer.
		if err := checkLengths(t.Kind, updated, t.Arch); err != nil {
			return res, fmt.Errorf("%s: %w", t.Path, err)
		}
	} else if err := checkUninstallRoot(t.Kind, path, old); err != nil {
		return res, fmt.Errorf("%s: %w", t.Path, err)
	}
	res.Changed = true
	res.Diff = Diff(t.Path, old, updated)
	res.NeedsGrubUpdate = t.Kind == Grub
	if dryRun {
		return res, nil
	}
	// Only an install keeps a backup: it is the file before overlayupd's
	// edit. An uninstall's "before" holds init=/sbin/init-overlay, and a
	// backup of it would have uninstall --restore turn the overlay back on.
	if install {
		if res.Backup, res.BackupRefreshed, err = backup(t.Kind, path, old, perm); err != nil {
			return res, err
		}
	}
	if err := atomicfile.WriteFile(path, updated, perm); err != nil {
		return res, fmt.Errorf("write %s: %w", path, err)
	}
	return res, nil
}

// Restore puts back t's backup (PATH.overlayupd.bak, the file as it was
// before overlayupd's install; see backup): the way back from an install
// that also changed root= (a store on another partition). It refuses when
// the file was changed since in ways overlayupd's edits do not explain
// (see changedSinceBackup): restoring would throw those changes away, or
// bring back a root= that was replaced by hand. The backup itself is kept.
// With no backup nothing changes and Result.Backup is "". The write is
// atomic; with dryRun nothing is written and Result.Diff shows the change.
func Restore(t Target, dryRun bool) (Result, error) {
	res := Result{Target: t}
	path, perm, cur, err := readTarget(t)
	if err != nil {
		return res, err
	}
	bak := path + BackupSuffix
	old, err := readBackup(bak)
	if err != nil || old == nil {
		return res, err
	}
	res.Backup = bak
	if bytes.Equal(old, cur) {
		return res, nil
	}
	if err := changedSinceBackup(t.Kind, cur, old); err != nil {
		what := fmt.Sprintf("%s was changed after its backup %s was taken: %v. Restoring the backup would throw that change away", t.Path, bak, err)
		if errors.Is(err, errIncomparable) {
			what = fmt.Sprintf("cannot tell whether %s was changed after its backup %s was taken: %v", t.Path, bak, err)
		}
		return res, fmt.Errorf("%w: %s; compare the two (diff %s %s), and if the backup is what you want all the same, copy it over the file by hand (or run 'overlayupd uninstall' without --restore, which removes only %s)",
			ErrRefused, what, bak, t.Path, initParam)
	}
	res.Changed = true
	res.Diff = Diff(t.Path, cur, old)
	res.NeedsGrubUpdate = t.Kind == Grub
	if dryRun {
		return res, nil
	}
	if err := atomicfile.WriteFile(path, old, perm); err != nil {
		return res, fmt.Errorf("write %s: %w", path, err)
	}
	return res, nil
}

// readTarget resolves t's path (a symlinked file is edited at its target,
// which must be in t.Within when that is set) and reads it with its
// permission bits. It refuses what is not a boot configuration file: not
// a regular file (opened without blocking, so a FIFO cannot hang it), more
// than maxBackup bytes (its backup could not be read back), or a NUL byte
// (the boot loader and the kernel read C strings: what follows a NUL is
// not seen, an init= appended after it included).
func readTarget(t Target) (path string, perm fs.FileMode, content []byte, err error) {
	if path, err = filepath.EvalSymlinks(t.Path); err != nil {
		return "", 0, nil, fmt.Errorf("resolve %s: %w", t.Path, err)
	}
	if t.Within != "" {
		within, err := filepath.EvalSymlinks(t.Within)
		if err != nil {
			return "", 0, nil, fmt.Errorf("resolve %s: %w", t.Within, err)
		}
		if rel, err := filepath.Rel(within, path); err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
			return "", 0, nil, fmt.Errorf("%w: %s is a link to %s, outside %s: a link on another machine's boot partition does not lead to this machine's files; replace it with the file itself", ErrRefused, t.Path, path, t.Within)
		}
	}
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK|syscall.O_NOCTTY, 0)
	if err != nil {
		return "", 0, nil, fmt.Errorf("open %s: %w", path, err)
	}
	defer f.Close()
	st, err := f.Stat()
	switch {
	case err != nil:
		return "", 0, nil, fmt.Errorf("stat %s: %w", path, err)
	case !st.Mode().IsRegular():
		return "", 0, nil, fmt.Errorf("%w: %s is %s, not a boot configuration file", ErrRefused, path, "a "+fsmode.Kind(st.Mode()))
	case st.Size() > maxBackup:
		return "", 0, nil, fmt.Errorf("%w: %s is %d bytes, more than a boot configuration file holds (at most %d): check that it is the right file", ErrRefused, path, st.Size(), maxBackup)
	}
	if content, err = io.ReadAll(io.LimitReader(f, maxBackup+1)); err != nil {
		return "", 0, nil, fmt.Errorf("read %s: %w", path, err)
	}
	if len(content) > maxBackup {
		return "", 0, nil, fmt.Errorf("%w: %s grew past %d bytes while read", ErrRefused, path, maxBackup)
	}
	if i := bytes.IndexByte(content, 0); i >= 0 {
		return "", 0, nil, fmt.Errorf("%w: %s has a NUL byte at offset %d: the boot loader reads the file as text up to it, and would not see the rest; remove it first (e.g. tr -d '\\000' < FILE)", ErrRefused, path, i)
	}
	return path, st.Mode().Perm(), content, nil
}

// checkUninstallRoot refuses to uninstall from a file whose root= is not
// what its backup had: install --store-device pointed it at the store's
// partition, which holds the trampoline but no /sbin/init, so removing
// init=/sbin/init-overlay alone would boot that partition with the kernel's
// default init and stop at "No working init found". Restore puts the whole
// file back instead. Without a readable backup there is nothing to compare.
func checkUninstallRoot(k Kind, path string, cur []byte) error {
	bak := path + BackupSuffix
	fi, err := os.Lstat(bak)
	if err != nil || !fi.Mode().IsRegular() || fi.Size() > 1<<20 {
		return nil
	}
	was, err := os.ReadFile(bak)
	if err != nil {
		return nil
	}
	before, err := rootValues(k, was)
	if err != nil {
		return nil
	}
	now, err := rootValues(k, cur)
	if err != nil {
		return nil
	}
	for _, r := range now {
		if !slices.Contains(before, r) {
			return fmt.Errorf("%w: root=%s is not the root= of the file before overlayupd changed it (%s): install --store-device pointed it at the store's partition, which boots only through %s; removing that alone would leave the kernel no init to run. run 'overlayupd uninstall --restore' to put the file back as it was (or, if this root= is right after all, remove %s by hand)", ErrRefused, r, bak, initParam, initParam)
		}
	}
	return nil
}

// rootValues lists the root= the kernel would use on each command line of
// content (the last one before `--`).
func rootValues(k Kind, content []byte) ([]string, error) {
	var roots []string
	_, err := apply(k, content, false, func(s string) (string, error) {
		var kernel []kcmdline.Param
		for _, p := range kcmdline.Split(s) {
			if isFlag(p, "--") {
				break
			}
			kernel = append(kernel, p)
		}
		if r, ok := kcmdline.Lookup(kernel, "root"); ok {
			roots = append(roots, r)
		}
		return s, nil
	})
	return roots, err
}

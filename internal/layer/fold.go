package layer

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"

	"golang.org/x/sys/unix"
)

// Action is one step of the fold at one name.
type Action int

// The fold's actions.
const (
	Aside      Action = iota // move what the lower layer has at the name into the trash
	MarkOpaque               // mark the upper directory opaque: it replaces a non-directory
	Move                     // rename the upper entry over the lower one's name
	Merge                    // merge the two directories: attributes, each child, times
)

var actionNames = [...]string{"aside", "mark-opaque", "move", "merge"}

func (a Action) String() string {
	if a < 0 || int(a) >= len(actionNames) {
		return "action(" + strconv.Itoa(int(a)) + ")"
	}
	return actionNames[a]
}

// Plan is what the fold does at a name where the upper layer has upper and
// the lower layer has lower, so that the lower layer alone then shows what
// the two showed stacked, over any image below them:
//
//   - a whiteout or a non-directory replaces whatever is below (a directory
//     goes aside first: a rename cannot replace one with a file);
//   - an opaque directory replaces whatever is below, whole;
//   - a directory merges with a directory below; over a non-directory (or a
//     whiteout) it hid everything below, so it becomes opaque first, then
//     replaces it; over nothing it moves whole.
//
// Each action is one rename or one attribute change: after a crash between
// two of them the upper entry is still where it was, or gone into the lower
// layer, and the fold resumes from there.
func Plan(upper, lower Kind) []Action {
	switch upper {
	case None:
		return nil
	case Dir:
		switch {
		case lower == None:
			return []Action{Move}
		case lower.IsDir():
			return []Action{Merge}
		}
		return []Action{MarkOpaque, Aside, Move}
	case OpaqueDir:
		if lower == None {
			return []Action{Move}
		}
		return []Action{Aside, Move}
	}
	// Whiteout, Other.
	if lower.IsDir() {
		return []Action{Aside, Move}
	}
	return []Action{Move}
}

// FoldStats counts what Fold did.
type FoldStats struct {
	Moved, Merged, Aside int
}

// FoldOptions are Fold's knobs.
type FoldOptions struct {
	// Step, if set, runs before every change with a description of it; an
	// error stops the fold there, as a power cut would (the crash tests).
	Step func(what string) error
	// Moved, if set, gets the path (relative to the layers' roots) of each
	// entry moved into the lower layer, a directory with all it holds.
	Moved func(rel string)
}

// timesXattr keeps an upper directory's times from before the fold moved
// its children out (which changes them), so that a resumed fold still
// gives the lower directory the times the overlay showed.
const timesXattr = "trusted.overlayupd.times"

// Fold moves the overlayfs layer upper into the layer lower it was stacked
// on (both upper directories of the same image, on one filesystem), so
// that lower then shows, over any image, what upper over lower showed. It
// changes lower only by renames (and attributes of its directories): no
// file is copied, so no file of either layer ever exists twice or half
// written. What lower had that upper replaces goes into trash (a directory
// on the same filesystem, outside both layers), for the caller to delete
// once the fold is done. Upper is emptied as it goes.
//
// A fold stopped at any point (a power cut) is finished by running Fold
// again with the same arguments: at every step, upper stacked on lower
// still shows what it showed before the fold. It ends with a syncfs, so
// that when it returns nil every rename is durable. Entries made with
// redirect_dir or metacopy on are refused before anything changes.
func Fold(upper, lower, trash string, opt FoldOptions) (FoldStats, error) {
	f := &folder{step: opt.Step, moved: opt.Moved}
	if err := checkForeign(upper); err != nil {
		return f.stats, err
	}
	if err := os.Mkdir(trash, 0o700); err != nil && !errors.Is(err, unix.EEXIST) {
		return f.stats, fmt.Errorf("fold: %w", err)
	}
	var err error
	if f.trash, err = openDir(unix.AT_FDCWD, trash); err != nil {
		return f.stats, err
	}
	defer unix.Close(f.trash)
	ud, err := openDir(unix.AT_FDCWD, upper)
	if err != nil {
		return f.stats, err
	}
	defer unix.Close(ud)
	ld, err := openDir(unix.AT_FDCWD, lower)
	if err != nil {
		return f.stats, err
	}
	defer unix.Close(ld)
	if err := f.mergeDir(ud, ld, ""); err != nil {
		return f.stats, err
	}
	// Why: the caller ends the fold with a rename in the slot directory;
	// every rename of the fold must be on disk before that one is.
	if err := unix.Syncfs(ld); err != nil {
		return f.stats, fmt.Errorf("fold: syncfs: %w", err)
	}
	return f.stats, nil
}

func checkForeign(upper string) error {
	return walk(upper, func(p, rel string, _ *unix.Stat_t) (bool, error) {
		if rel == "" {
			return true, nil
		}
		return true, Foreign(p, rel)
	})
}

type folder struct {
	trash int
	step  func(string) error
	moved func(string)
	stats FoldStats
}

// change runs one change of the lower or upper layer, after the step hook.
func (f *folder) change(what string, fn func() error) error {
	if f.step != nil {
		if err := f.step(what); err != nil {
			return err
		}
	}
	if err := fn(); err != nil {
		return fmt.Errorf("fold: %s: %w", what, err)
	}
	return nil
}

// mergeDir merges the upper directory ud into the lower directory ld (rel
// names them in messages): the upper one's times are kept aside first,
// then its attributes are given to the lower one, then each child is
// folded, then the lower one gets the times. The caller removes ud.
func (f *folder) mergeDir(ud, ld int, rel string) error {
	var st unix.Stat_t
	if err := unix.Fstat(ud, &st); err != nil {
		return fmt.Errorf("fold: stat /%s: %w", rel, err)
	}
	times, err := GetXattr(at(ud, "."), timesXattr)
	if err != nil || len(times) != 32 {
		times = packTimes(&st)
		if err := f.change("keep the times of /"+rel, func() error {
			return unix.Lsetxattr(at(ud, "."), timesXattr, times, 0)
		}); err != nil {
			return err
		}
	}
	if err := f.change("attributes of /"+rel, func() error { return CopyMeta(at(ud, "."), at(ld, "."), &st) }); err != nil {
		return err
	}
	names, err := readNames(ud)
	if err != nil {
		return fmt.Errorf("fold: read /%s: %w", rel, err)
	}
	for _, name := range names {
		if err := f.entry(ud, ld, name, filepath.Join(rel, name)); err != nil {
			return err
		}
	}
	f.stats.Merged++
	return f.change("times of /"+rel, func() error {
		ts := unpackTimes(times)
		return unix.UtimesNanoAt(unix.AT_FDCWD, at(ld, "."), ts, 0)
	})
}

// entry folds the upper entry name of ud into ld.
func (f *folder) entry(ud, ld int, name, rel string) error {
	var ust, lst unix.Stat_t
	if err := unix.Fstatat(ud, name, &ust, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("fold: stat /%s: %w", rel, err)
	}
	upper, lower := KindOf(at(ud, name), &ust), None
	if err := unix.Fstatat(ld, name, &lst, unix.AT_SYMLINK_NOFOLLOW); err == nil {
		lower = KindOf(at(ld, name), &lst)
	} else if !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("fold: stat /%s below: %w", rel, err)
	}
	for _, a := range Plan(upper, lower) {
		var err error
		switch a {
		case Aside:
			err = f.change("set aside /"+rel, func() error { return f.aside(ld, name, lst.Ino) })
			f.stats.Aside++
		case MarkOpaque:
			err = f.change("mark /"+rel+" opaque", func() error {
				return unix.Lsetxattr(at(ud, name), OpaqueXattr, []byte("y"), 0)
			})
		case Move:
			err = f.change("move /"+rel, func() error { return unix.Renameat(ud, name, ld, name) })
			f.stats.Moved++
			if err == nil && f.moved != nil {
				f.moved(rel)
			}
		case Merge:
			err = f.mergeChild(ud, ld, name, rel)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func (f *folder) mergeChild(ud, ld int, name, rel string) error {
	cu, err := openDir(ud, name)
	if err != nil {
		return err
	}
	defer unix.Close(cu)
	cl, err := openDir(ld, name)
	if err != nil {
		return err
	}
	defer unix.Close(cl)
	if err := f.mergeDir(cu, cl, rel); err != nil {
		return err
	}
	return f.change("remove the folded /"+rel, func() error { return unix.Unlinkat(ud, name, unix.AT_REMOVEDIR) })
}

// aside moves the lower layer's entry name into the trash, under its inode
// number: unique among the files that exist, so two entries set aside
// never collide, nor does a resumed fold with an earlier one.
func (f *folder) aside(ld int, name string, ino uint64) error {
	to := strconv.FormatUint(ino, 10)
	for i := 1; ; i++ {
		err := unix.Renameat2(ld, name, f.trash, to, unix.RENAME_NOREPLACE)
		if !errors.Is(err, unix.EEXIST) {
			return err
		}
		to = strconv.FormatUint(ino, 10) + "-" + strconv.Itoa(i)
	}
}

// openDir opens the directory name in dirfd, never through a symlink.
func openDir(dirfd int, name string) (int, error) {
	fd, err := unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("open %s: %w", name, err)
	}
	return fd, nil
}

// readNames lists the directory fd, sorted, without moving fd's offset for
// anyone else: a duplicate descriptor is read.
func readNames(fd int) ([]string, error) {
	dup, err := unix.Openat(fd, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	d := os.NewFile(uintptr(dup), "dir")
	defer d.Close()
	names, err := d.Readdirnames(-1)
	slices.Sort(names)
	return names, err
}

// at is the path of name in the directory fd for the calls that take no
// descriptor (attributes): the magic link names that very directory, and
// each call acts on the last component without following it ("." for the
// directory itself).
func at(fd int, name string) string { return "/proc/self/fd/" + strconv.Itoa(fd) + "/" + name }

// packTimes keeps atime and mtime as four little-endian 64-bit numbers.
func packTimes(st *unix.Stat_t) []byte {
	b := make([]byte, 0, 32)
	for _, v := range []int64{int64(st.Atim.Sec), int64(st.Atim.Nsec), int64(st.Mtim.Sec), int64(st.Mtim.Nsec)} {
		for i := range 8 {
			b = append(b, byte(uint64(v)>>(8*i)))
		}
	}
	return b
}

func unpackTimes(b []byte) []unix.Timespec {
	v := func(i int) int64 {
		var u uint64
		for j := range 8 {
			u |= uint64(b[8*i+j]) << (8 * j)
		}
		return int64(u)
	}
	return []unix.Timespec{unix.NsecToTimespec(v(0)*1e9 + v(1)), unix.NsecToTimespec(v(2)*1e9 + v(3))}
}

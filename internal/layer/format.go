// Package layer owns the on-disk format of an overlayfs layer directory
// (whiteouts, opaque directories, overlayfs's own attributes) and the two
// operations the store builds on it:
//
//   - Fold moves a trial's upper directory into the persistent layer it was
//     mounted over (the layer stays a layer: whiteouts and opaque
//     directories are kept as such), by renames only, resumable after a
//     crash at any step, for the PID-1 path;
//   - Shadows finds the files of a persistent layer that hide what a new
//     image changed, compared with the image the layer was used with.
//
// snapshot's persist (MergeUpper, which folds a layer into a root, where
// whiteouts become deletions) reads layers with the same rules: Kind,
// Private and Foreign are shared. The package is in the boot path
// (cmd/init-overlay's allow-list): standard library and x/sys only.
package layer

import (
	"bytes"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/sys/unix"
)

// Kind is what an entry of a layer means to the overlay.
type Kind int

// The kinds of layer entries.
const (
	None      Kind = iota // no entry under that name
	Whiteout              // hides the name in the layers below
	Dir                   // a directory merged with the ones below
	OpaqueDir             // a directory that hides the ones below
	Other                 // a file, symlink, device, FIFO or socket: hides what is below
)

var kindNames = [...]string{"none", "whiteout", "directory", "opaque directory", "file"}

func (k Kind) String() string {
	if k < 0 || int(k) >= len(kindNames) {
		return fmt.Sprintf("kind(%d)", int(k))
	}
	return kindNames[k]
}

// IsDir reports whether the kind is a directory, opaque or not.
func (k Kind) IsDir() bool { return k == Dir || k == OpaqueDir }

// The attributes overlayfs reads in a layer.
const (
	OpaqueXattr   = "trusted.overlay.opaque"
	WhiteoutXattr = "trusted.overlay.whiteout"
)

// KindOf classifies the entry at p (never followed) whose lstat is st:
// a whiteout is a 0/0 character device, or a zero-size file with
// trusted.overlay.whiteout; an opaque directory has trusted.overlay.opaque=y
// ("x" only marks whiteouts inside, the directory still merges).
func KindOf(p string, st *unix.Stat_t) Kind {
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFCHR:
		if st.Rdev == 0 {
			return Whiteout
		}
	case unix.S_IFREG:
		if st.Size == 0 {
			if _, err := GetXattr(p, WhiteoutXattr); err == nil {
				return Whiteout
			}
		}
	case unix.S_IFDIR:
		if v, err := GetXattr(p, OpaqueXattr); err == nil && string(v) == "y" {
			return OpaqueDir
		}
		return Dir
	}
	return Other
}

// Lkind is KindOf for a path that may not exist (None).
func Lkind(p string) (Kind, unix.Stat_t, error) {
	var st unix.Stat_t
	if err := unix.Lstat(p, &st); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return None, st, nil
		}
		return None, st, fmt.Errorf("lstat %s: %w", p, err)
	}
	return KindOf(p, &st), st, nil
}

// Private reports the attributes that belong to overlayfs: copied into a
// root they would change what the next overlay shows.
func Private(name string) bool {
	return strings.HasPrefix(name, "trusted.overlay.") || strings.HasPrefix(name, "user.overlay.")
}

// ErrForeign is what Foreign reports.
var ErrForeign = errors.New("the overlay layer is not self-contained")

// Foreign refuses what neither persist nor a fold can reproduce: an
// overlayfs redirect or metacopy entry (made with redirect_dir or
// metacopy on: part of it lives in the lower layer), or an aufs whiteout.
// rel names the entry in messages.
func Foreign(p, rel string) error {
	for _, x := range foreignXattrs {
		if _, err := GetXattr(p, x); err == nil {
			return foreignErr(rel, x)
		}
	}
	return foreignName(rel)
}

// ForeignNames is Foreign for an entry whose extended attributes' names
// the caller has listed already (ListXattrs): one call instead of four.
func ForeignNames(names []string, rel string) error {
	for _, n := range names {
		for _, x := range foreignXattrs {
			if n == x {
				return foreignErr(rel, x)
			}
		}
	}
	return foreignName(rel)
}

var foreignXattrs = []string{"trusted.overlay.redirect", "trusted.overlay.metacopy", "user.overlay.redirect", "user.overlay.metacopy"}

func foreignErr(rel, x string) error {
	return fmt.Errorf("%w: /%s has %s (made with redirect_dir or metacopy on, so part of it lives in the lower layer)", ErrForeign, rel, x)
}

func foreignName(rel string) error {
	if base := rel[strings.LastIndexByte(rel, '/')+1:]; strings.HasPrefix(base, ".wh.") {
		return fmt.Errorf("%w: /%s is an aufs whiteout; only overlayfs layers can be read", ErrForeign, rel)
	}
	return nil
}

// ListXattrs lists the extended attributes of p (not followed); a
// filesystem without them has none.
func ListXattrs(p string) ([]string, error) {
	for size := 256; ; size *= 4 {
		buf := make([]byte, size)
		n, err := unix.Llistxattr(p, buf)
		if errors.Is(err, unix.ERANGE) {
			continue
		}
		if errors.Is(err, unix.ENOTSUP) {
			return nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("list xattrs of %s: %w", p, err)
		}
		var out []string
		for _, n := range bytes.Split(buf[:n], []byte{0}) {
			if len(n) > 0 {
				out = append(out, string(n))
			}
		}
		return out, nil
	}
}

// GetXattr reads one extended attribute of p (not followed).
func GetXattr(p, name string) ([]byte, error) {
	for size := 256; ; size *= 4 {
		buf := make([]byte, size)
		n, err := unix.Lgetxattr(p, name, buf)
		if errors.Is(err, unix.ERANGE) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("get xattr %s of %s: %w", name, p, err)
		}
		return buf[:n], nil
	}
}

// CopyMeta gives to the attributes of from (whose lstat is st) that are
// not overlayfs's: owner, then extended attributes (one that to has and
// from has not is removed, but overlayfs's own are left alone), then mode.
// Times are the caller's: they change with what happens in a directory.
// Order, as the kernel needs it: chown clears setuid bits and file
// capabilities, so it goes first.
func CopyMeta(from, to string, st *unix.Stat_t) error {
	if err := unix.Lchown(to, int(st.Uid), int(st.Gid)); err != nil {
		return fmt.Errorf("chown %s: %w", to, err)
	}
	have, err := ListXattrs(from)
	if err != nil {
		return err
	}
	keep := map[string]bool{}
	for _, n := range have {
		if Private(n) || n == timesXattr {
			continue
		}
		keep[n] = true
		v, err := GetXattr(from, n)
		if err != nil {
			return err
		}
		if err := unix.Lsetxattr(to, n, v, 0); err != nil {
			return fmt.Errorf("set xattr %s on %s: %w", n, to, err)
		}
	}
	cur, err := ListXattrs(to)
	if err != nil {
		return err
	}
	for _, n := range cur {
		if !keep[n] && !Private(n) && n != timesXattr {
			if err := unix.Lremovexattr(to, n); err != nil {
				return fmt.Errorf("remove xattr %s of %s: %w", n, to, err)
			}
		}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFLNK {
		if err := unix.Fchmodat(unix.AT_FDCWD, to, st.Mode&0o7777, 0); err != nil {
			return fmt.Errorf("chmod %s: %w", to, err)
		}
	}
	return nil
}

package layer

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/overlayupd/overlayupd/internal/fsmode"
)

// Entry is what one name is in an image or a layer, as the shadow check
// compares it. Sum is a regular file's content digest, or a directory
// tree's digest; the caller fills it only where the decision needs it.
type Entry struct {
	Kind   Kind   // None when absent
	Type   uint32 // S_IFMT bits
	Perm   uint32 // mode bits below S_IFMT
	UID    uint32
	GID    uint32
	Size   int64
	Rdev   uint64
	Target string // a symlink's
	Sum    string
}

// Exists reports whether there is an entry.
func (e Entry) Exists() bool { return e.Kind != None }

// Same reports whether two entries are the same file as a reader of the
// root sees it: type, mode, owner, and the contents (size and digest, a
// link's target, a device's number). Times are not compared: an image
// rebuilt from the same files has new ones.
func Same(a, b Entry) bool {
	if !a.Exists() || !b.Exists() {
		return a.Exists() == b.Exists()
	}
	if a.Type != b.Type || a.Perm != b.Perm || a.UID != b.UID || a.GID != b.GID {
		return false
	}
	switch a.Type {
	case unix.S_IFREG:
		return a.Size == b.Size && a.Sum == b.Sum
	case unix.S_IFLNK:
		return a.Target == b.Target
	case unix.S_IFCHR, unix.S_IFBLK:
		return a.Rdev == b.Rdev
	case unix.S_IFDIR:
		return a.Sum == b.Sum // "" unless a tree was asked for
	}
	return true
}

// The changes the new image made at a name, compared with the previous one.
const (
	Changed = "changed"
	Added   = "added"
	Removed = "removed"
)

// Shadowed is the shadow check's decision at one name, pure: the layer
// holds layer there, the image the layer was used with prev, the new image
// next. It reports whether the layer hides a change the new image made
// (and which), and whether to look inside the layer's directory instead:
//
//   - a merging directory hides only a non-directory of the image, so it is
//     looked into unless an image has a non-directory there;
//   - an opaque directory hides the image's whole tree (Sum: tree digests);
//   - a whiteout hides what the new image has there;
//   - a file hides the image's entry, unless it is the very same.
//
// A change the layer does not hide is no shadow, nor is a hidden entry the
// new image did not change: the user's file already hid the old one.
func Shadowed(layer, prev, next Entry) (change string, descend bool) {
	changed := !Same(prev, next)
	switch layer.Kind {
	case None:
		return "", false
	case Dir:
		nonDir := func(e Entry) bool { return e.Exists() && !e.Kind.IsDir() && e.Type != unix.S_IFDIR }
		if !nonDir(prev) && !nonDir(next) {
			return "", true
		}
	case Whiteout:
		changed = changed && next.Exists()
	case Other:
		changed = changed && !Same(layer, next)
	}
	if !changed {
		return "", false
	}
	switch {
	case !prev.Exists():
		return Added, false
	case !next.Exists():
		return Removed, false
	}
	return Changed, false
}

// Shadow is one name of the layer that hides a change of the new image.
type Shadow struct {
	Path   string // relative to the layer's root
	Change string // Changed, Added, Removed
	Layer  Kind   // what the layer holds there
}

// ShadowOptions are Shadows' knobs.
type ShadowOptions struct {
	// Skip leaves out names the caller knows are no shadows (what a trial
	// wrote over the new image, folded in at this boot).
	Skip func(rel string) bool
}

// Shadows walks the layer directory and returns, in the walk's (lexical)
// order, the names where
// it hides a change that the image tree next made, compared with the
// image tree prev (both mounted read-only by the caller). Links are never
// followed: each image is looked up with openat2 RESOLVE_IN_ROOT.
func Shadows(layer, prev, next string, opt ShadowOptions) ([]Shadow, error) {
	pfd, err := openRoot(prev)
	if err != nil {
		return nil, err
	}
	defer unix.Close(pfd)
	nfd, err := openRoot(next)
	if err != nil {
		return nil, err
	}
	defer unix.Close(nfd)
	var out []Shadow
	err = walk(layer, func(p, rel string, st *unix.Stat_t) (bool, error) {
		if rel == "" {
			return true, nil
		}
		if opt.Skip != nil && opt.Skip(rel) {
			return false, nil
		}
		kind := KindOf(p, st)
		l := entryOf(kind, st)
		pe, err := lookup(pfd, rel)
		if err != nil {
			return false, err
		}
		ne, err := lookup(nfd, rel)
		if err != nil {
			return false, err
		}
		if err := fillSums(kind, p, pfd, nfd, rel, &l, &pe, &ne); err != nil {
			return false, err
		}
		change, descend := Shadowed(l, pe, ne)
		if change != "" {
			out = append(out, Shadow{Path: rel, Change: change, Layer: kind})
		}
		return descend, nil
	})
	return out, err
}

// fillSums computes the digests the decision needs, and no others: file
// contents only where sizes match, trees only under an opaque directory.
func fillSums(kind Kind, p string, pfd, nfd int, rel string, l, pe, ne *Entry) error {
	var err error
	sum := func(fd int, e *Entry) {
		if err == nil && e.Sum == "" {
			e.Sum, err = digestIn(fd, rel, e.Type)
		}
	}
	switch {
	case kind == OpaqueDir:
		if pe.Type == unix.S_IFDIR && ne.Type == unix.S_IFDIR {
			sum(pfd, pe)
			sum(nfd, ne)
		}
	case pe.Type == unix.S_IFREG && ne.Type == unix.S_IFREG && pe.Size == ne.Size:
		sum(pfd, pe)
		sum(nfd, ne)
		if kind == Other && l.Type == unix.S_IFREG && l.Size == ne.Size {
			l.Sum, err = digestPath(p)
		}
	case kind == Other && l.Type == unix.S_IFREG && ne.Type == unix.S_IFREG && l.Size == ne.Size:
		sum(nfd, ne)
		if err == nil {
			l.Sum, err = digestPath(p)
		}
	}
	return err
}

func entryOf(kind Kind, st *unix.Stat_t) Entry {
	return Entry{Kind: kind, Type: st.Mode & unix.S_IFMT, Perm: st.Mode &^ unix.S_IFMT, UID: st.Uid, GID: st.Gid, Size: st.Size, Rdev: st.Rdev}
}

func openRoot(dir string) (int, error) {
	fd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("open %s: %w", dir, err)
	}
	return fd, nil
}

// openIn opens rel inside the root rfd, never leaving it and never through
// a symlink in its last component.
func openIn(rfd int, rel string, flags int) (int, error) {
	return fsmode.Openat2(rfd, rel, &unix.OpenHow{
		Flags:   uint64(flags | unix.O_NOFOLLOW | unix.O_CLOEXEC),
		Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS,
	})
}

// lookup is the image's entry at rel (None when absent).
func lookup(rfd int, rel string) (Entry, error) {
	fd, err := openIn(rfd, rel, unix.O_PATH)
	if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR) {
		return Entry{}, nil
	}
	if err != nil {
		return Entry{}, fmt.Errorf("look up /%s: %w", rel, err)
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return Entry{}, fmt.Errorf("stat /%s: %w", rel, err)
	}
	k := Other
	if st.Mode&unix.S_IFMT == unix.S_IFDIR {
		k = Dir
	}
	e := entryOf(k, &st)
	if e.Type == unix.S_IFLNK {
		buf := make([]byte, 4096)
		n, err := unix.Readlinkat(fd, "", buf)
		if err != nil {
			return e, fmt.Errorf("readlink /%s: %w", rel, err)
		}
		e.Target = string(buf[:n])
	}
	return e, nil
}

// digestIn digests rel in the root rfd: a file's contents, or a tree.
func digestIn(rfd int, rel string, typ uint32) (string, error) {
	if typ == unix.S_IFDIR {
		fd, err := openIn(rfd, rel, unix.O_PATH|unix.O_DIRECTORY)
		if err != nil {
			return "", err
		}
		defer unix.Close(fd)
		return digestTree("/proc/self/fd/" + fmt.Sprint(fd) + "/.")
	}
	fd, err := openIn(rfd, rel, unix.O_RDONLY|unix.O_NONBLOCK)
	if err != nil {
		return "", fmt.Errorf("open /%s: %w", rel, err)
	}
	f := os.NewFile(uintptr(fd), rel)
	defer f.Close()
	return digestReader(f)
}

func digestPath(p string) (string, error) {
	f, err := os.OpenFile(p, os.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK, 0)
	if err != nil {
		return "", err
	}
	defer f.Close()
	return digestReader(f)
}

func digestReader(r io.Reader) (string, error) {
	h := sha256.New()
	if _, err := io.Copy(h, r); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// digestTree digests what a reader sees of a tree: names, types, modes,
// owners, link targets and file contents.
func digestTree(dir string) (string, error) {
	h := sha256.New()
	err := walk(dir, func(p, rel string, st *unix.Stat_t) (bool, error) {
		fmt.Fprintf(h, "%s\x00%o %d %d %d", rel, st.Mode, st.Uid, st.Gid, st.Rdev)
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFREG:
			s, err := digestPath(p)
			if err != nil {
				return false, err
			}
			h.Write([]byte(" " + s))
		case unix.S_IFLNK:
			to, _ := os.Readlink(p)
			h.Write([]byte(" -> " + to))
		}
		h.Write([]byte{'\n'})
		return true, nil
	})
	return hex.EncodeToString(h.Sum(nil)), err
}

// UnderAny reports whether rel is one of set or lies below one of them.
func UnderAny(set map[string]bool, rel string) bool {
	for p := rel; ; {
		if set[p] {
			return true
		}
		i := strings.LastIndexByte(p, '/')
		if i < 0 {
			return false
		}
		p = p[:i]
	}
}

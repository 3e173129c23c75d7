package layer

import (
	"fmt"
	"os"
	"slices"

	"golang.org/x/sys/unix"
)

// walk visits the tree at root in lexical order, root itself first (rel
// ""), never following a symlink: fn gets each entry's path, its path
// relative to root and its lstat, and says whether to go into a directory.
// (One small walker for the fold's check, the shadow check and the copies:
// the boot path pays for every line it links.)
func walk(root string, fn func(p, rel string, st *unix.Stat_t) (bool, error)) error {
	return walkAt(root, "", fn)
}

func walkAt(p, rel string, fn func(p, rel string, st *unix.Stat_t) (bool, error)) error {
	var st unix.Stat_t
	if err := unix.Lstat(p, &st); err != nil {
		return fmt.Errorf("lstat %s: %w", p, err)
	}
	descend, err := fn(p, rel, &st)
	if err != nil || !descend || st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return err
	}
	d, err := os.Open(p)
	if err != nil {
		return err
	}
	names, err := d.Readdirnames(-1)
	d.Close()
	if err != nil {
		return fmt.Errorf("read %s: %w", p, err)
	}
	slices.Sort(names)
	for _, n := range names {
		r := n
		if rel != "" {
			r = rel + "/" + n
		}
		if err := walkAt(p+"/"+n, r, fn); err != nil {
			return err
		}
	}
	return nil
}

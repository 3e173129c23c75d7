package squash

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strings"
)

// maxSymlinks bounds symlink expansion, like the kernel's limit of 40.
const maxSymlinks = 40

// node is what resolution needs to know about one entry of an image.
type node struct {
	mode   fs.FileMode
	target string // symlink target, when mode is a symlink
}

// lookupFunc returns the entry at p, a clean slash path relative to the image
// root ("" is the root) whose parent components contain no symlinks. It returns
// an error wrapping fs.ErrNotExist when there is no such entry.
type lookupFunc func(p string) (node, error)

// resolve follows name inside an image the way the kernel would after a chroot
// into it: absolute symlink targets restart at the image root, relative ones at
// the link's directory, ".." never climbs above the root. It returns the final
// symlink-free path and its entry. A missing final target reached through a
// symlink is ErrDanglingSymlink; a missing path otherwise wraps fs.ErrNotExist.
func resolve(lookup lookupFunc, name string) (string, node, error) {
	todo := splitPath(name)
	cur, links, via := "", 0, ""
	n := node{mode: fs.ModeDir}
	for len(todo) > 0 {
		c := todo[0]
		todo = todo[1:]
		if !n.mode.IsDir() {
			return "", node{}, fmt.Errorf("/%s is not a directory", cur)
		}
		if c == ".." {
			cur = parentDir(cur)
			continue
		}
		p := path.Join(cur, c)
		next, err := lookup(p)
		if err != nil {
			if via != "" && errors.Is(err, fs.ErrNotExist) {
				return "", node{}, fmt.Errorf("%w: %s, but /%s does not exist", ErrDanglingSymlink, via, p)
			}
			return "", node{}, fmt.Errorf("/%s: %w", p, err)
		}
		if next.mode&fs.ModeSymlink == 0 {
			cur, n = p, next
			continue
		}
		if links++; links > maxSymlinks {
			return "", node{}, fmt.Errorf("%w: resolving /%s", ErrSymlinkLoop, strings.TrimPrefix(name, "/"))
		}
		if next.target == "" {
			return "", node{}, fmt.Errorf("%w: /%s is an empty symlink", ErrDanglingSymlink, p)
		}
		via = fmt.Sprintf("/%s -> %s", p, next.target)
		if strings.HasPrefix(next.target, "/") {
			cur = ""
		}
		todo = append(splitPath(next.target), todo...)
		n = node{mode: fs.ModeDir}
	}
	return cur, n, nil
}

func splitPath(p string) []string {
	var out []string
	for _, c := range strings.Split(p, "/") {
		if c != "" && c != "." {
			out = append(out, c)
		}
	}
	return out
}

func parentDir(p string) string {
	if i := strings.LastIndexByte(p, '/'); i >= 0 {
		return p[:i]
	}
	return ""
}

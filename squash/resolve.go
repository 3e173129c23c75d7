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

// Node is what resolution needs to know about one entry of an image.
type Node struct {
	Mode   fs.FileMode
	Target string // symlink target, when mode is a symlink
}

// LookupFunc returns the entry at p, a clean slash path relative to the image
// root ("" is the root) whose parent components contain no symlinks. It returns
// an error wrapping fs.ErrNotExist when there is no such entry.
type LookupFunc func(p string) (Node, error)

// resolve follows name inside an image the way the kernel would after a chroot
// into it: absolute symlink targets restart at the image root, relative ones at
// the link's directory, ".." never climbs above the root. It returns the final
// symlink-free path and its entry. A missing final target reached through a
// symlink is ErrDanglingSymlink; a missing path otherwise wraps fs.ErrNotExist.
func Resolve(lookup LookupFunc, name string) (string, Node, error) {
	todo := splitPath(name)
	cur, links, via := "", 0, ""
	n := Node{Mode: fs.ModeDir}
	for len(todo) > 0 {
		c := todo[0]
		todo = todo[1:]
		if !n.Mode.IsDir() {
			return "", Node{}, fmt.Errorf("/%s is not a directory", cur)
		}
		if c == ".." {
			cur = parentDir(cur)
			continue
		}
		p := path.Join(cur, c)
		next, err := lookup(p)
		if err != nil {
			if via != "" && errors.Is(err, fs.ErrNotExist) {
				return "", Node{}, fmt.Errorf("%w: %s, but /%s does not exist", ErrDanglingSymlink, via, p)
			}
			return "", Node{}, fmt.Errorf("/%s: %w", p, err)
		}
		if next.Mode&fs.ModeSymlink == 0 {
			cur, n = p, next
			continue
		}
		if links++; links > maxSymlinks {
			return "", Node{}, fmt.Errorf("%w: resolving /%s", ErrSymlinkLoop, strings.TrimPrefix(name, "/"))
		}
		if next.Target == "" {
			return "", Node{}, fmt.Errorf("%w: /%s is an empty symlink", ErrDanglingSymlink, p)
		}
		via = fmt.Sprintf("/%s -> %s", p, next.Target)
		if strings.HasPrefix(next.Target, "/") {
			cur = ""
		}
		todo = append(splitPath(next.Target), todo...)
		n = Node{Mode: fs.ModeDir}
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

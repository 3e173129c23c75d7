package bootcfg

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/overlayupd/overlayupd/internal/fsmode"
)

// ErrNotFound is returned by Find when no boot configuration file exists.
var ErrNotFound = errors.New("no boot configuration file found")

// DefaultBootDir and DefaultGrub are where Find looks on the running system.
const (
	DefaultBootDir = "/boot"
	DefaultGrub    = "/etc/default/grub"
)

// candidates lists, in order, the files Find checks. Only the first existing
// cmdline.txt counts: /boot/firmware/cmdline.txt is the real one on Raspberry Pi
// OS Bookworm, and a mounted boot partition has cmdline.txt at its top.
func candidates(bootDir, grubDefault string) [][]Target {
	groups := [][]Target{
		{
			{Kind: RPiCmdline, Path: filepath.Join(bootDir, "firmware", "cmdline.txt")},
			{Kind: RPiCmdline, Path: filepath.Join(bootDir, "cmdline.txt")},
		},
		{{Kind: UEnv, Path: filepath.Join(bootDir, "uEnv.txt")}},
		{{Kind: Extlinux, Path: filepath.Join(bootDir, "extlinux", "extlinux.conf")}},
	}
	if grubDefault != "" {
		groups = append(groups, []Target{{Kind: Grub, Path: grubDefault}})
	}
	return groups
}

// Find returns the boot configuration files that exist under bootDir (e.g.
// DefaultBootDir, or a mounted boot partition) plus grubDefault. Pass grubDefault
// = "" to skip GRUB, as a caller editing another machine's boot partition must:
// /etc/default/grub then belongs to the build host. When nothing exists the
// error wraps ErrNotFound and names every path searched.
func Find(bootDir, grubDefault string) ([]Target, error) {
	var found []Target
	var searched []string
	for _, group := range candidates(bootDir, grubDefault) {
		for _, t := range group {
			searched = append(searched, t.Path)
			ok, err := isFile(t.Path)
			if err != nil {
				return nil, err
			}
			if ok {
				found = append(found, t)
				break
			}
		}
	}
	if len(found) == 0 {
		return nil, fmt.Errorf("%w: searched %s", ErrNotFound, strings.Join(searched, ", "))
	}
	return found, nil
}

// isFile says whether path is a boot configuration file to edit: nothing
// there is no; anything there but a regular file (a directory, a FIFO, a
// link to nothing) is an error that names it, rather than a silent "not
// found" or a fall through to the next candidate (firmware/cmdline.txt a
// directory, the edit then went to cmdline.txt, which the firmware does not
// read).
func isFile(path string) (bool, error) {
	if _, err := os.Lstat(path); errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	st, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		target, _ := os.Readlink(path)
		return false, fmt.Errorf("%w: %s is a link to %s, which does not exist: fix or remove the link", ErrRefused, path, target)
	case err != nil:
		return false, fmt.Errorf("look for boot config: %w", err)
	case !st.Mode().IsRegular():
		return false, fmt.Errorf("%w: %s is %s, not a boot configuration file: move it away, or name the boot partition with --boot-dir", ErrRefused, path, "a "+fsmode.Kind(st.Mode()))
	}
	return true, nil
}

package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/overlayupd/overlayupd/dist"
	"github.com/overlayupd/overlayupd/internal/atomicfile"
)

// autoCommitFile is one file or link the automatic commit puts on a root.
type autoCommitFile struct {
	path string // relative to the root
	data []byte // nil: a symbolic link to target
	mode os.FileMode
	link string
}

// autoCommitPlan says what install --auto-commit writes on root: the
// systemd unit, enabled, where the root has systemd; else the init.d
// script, linked as S99 into every runlevel directory it has (sysvinit),
// or into /etc/init.d itself where rcS runs S* scripts (busybox).
func autoCommitPlan(root string) []autoCommitFile {
	if isSystemdRoot(root) {
		unit := filepath.Join(dist.UnitDir, dist.UnitName)
		return []autoCommitFile{
			{path: unit, data: dist.CommitUnit, mode: 0o644},
			{path: filepath.Join(dist.UnitWants, dist.UnitName), link: "/" + unit},
		}
	}
	script := filepath.Join(dist.InitDir, dist.InitName)
	files := []autoCommitFile{{path: script, data: dist.CommitInit, mode: 0o755}}
	var rcs []string
	for _, lvl := range []string{"2", "3", "4", "5"} {
		d := filepath.Join("etc", "rc"+lvl+".d")
		if isDirAt(root, d) {
			rcs = append(rcs, d)
		}
	}
	if len(rcs) == 0 {
		rcs = []string{dist.InitDir}
	}
	for _, d := range rcs {
		files = append(files, autoCommitFile{path: filepath.Join(d, dist.InitPrefix+dist.InitName), link: "../init.d/" + dist.InitName})
	}
	return files
}

func isSystemdRoot(root string) bool {
	for _, p := range []string{"lib/systemd/systemd", "usr/lib/systemd/systemd"} {
		if fi, err := os.Stat(filepath.Join(root, p)); err == nil && fi.Mode().IsRegular() {
			return true
		}
	}
	return false
}

func isDirAt(root, rel string) bool {
	fi, err := os.Stat(filepath.Join(root, rel))
	return err == nil && fi.IsDir()
}

// installAutoCommit writes the plan on root (atomically, file by file) and
// returns the paths written; remove takes them away instead.
func installAutoCommit(root string, remove bool) ([]string, error) {
	var done []string
	for _, f := range autoCommitPlan(root) {
		p := filepath.Join(root, f.path)
		if remove {
			err := os.Remove(p)
			if errors.Is(err, os.ErrNotExist) {
				continue
			}
			if err != nil {
				return done, err
			}
			done = append(done, p)
			continue
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return done, err
		}
		if f.data != nil {
			if err := atomicfile.WriteFile(p, f.data, f.mode); err != nil {
				return done, err
			}
		} else {
			tmp := p + ".overlayupd-tmp"
			_ = os.Remove(tmp)
			if err := os.Symlink(f.link, tmp); err != nil {
				return done, err
			}
			if err := os.Rename(tmp, p); err != nil {
				return done, err
			}
			if err := atomicfile.SyncDir(filepath.Dir(p)); err != nil {
				return done, err
			}
		}
		done = append(done, p)
	}
	if len(done) == 0 && remove {
		return nil, fmt.Errorf("no automatic commit installed on %s", root)
	}
	return done, nil
}

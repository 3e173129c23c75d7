package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/overlayupd/overlayupd/internal/atomicfile"
	"github.com/overlayupd/overlayupd/squash"
)

// TrampolineName is the PID-1 binary's name (cmd/init-overlay).
const TrampolineName = "init-overlay"

// trampolineDirs are where store init looks for init-overlay after the
// directory of this binary: make install puts it in /sbin.
var trampolineDirs = []string{"/sbin", "/usr/sbin"}

// errNotTrampoline: a file named as the trampoline is not an executable ELF.
var errNotTrampoline = errors.New("not an init-overlay binary")

// findTrampoline decides which file store init copies as the store's
// /sbin/init-overlay: the one the user named (explicit: it must be good), or
// else the first init-overlay that is an executable ELF file other than this
// binary, beside this binary, then in trampolineDirs. found is false when
// there is none; the caller then installs this binary, which boots too.
func findTrampoline(explicit, self string, searchDirs []string, stat func(string) (os.FileInfo, error), isELF func(string) bool) (path string, found bool, err error) {
	if explicit != "" {
		if err := checkTrampoline(explicit, stat, isELF); err != nil {
			return "", false, fmt.Errorf("--trampoline %s: %w", explicit, err)
		}
		return explicit, true, nil
	}
	dirs := append([]string{filepath.Dir(self)}, searchDirs...)
	seen := map[string]bool{}
	for _, d := range dirs {
		p := filepath.Join(d, TrampolineName)
		real, err := filepath.EvalSymlinks(p)
		if err != nil || seen[real] {
			continue
		}
		seen[real] = true
		if real == self {
			continue // an old install's link to this binary
		}
		if checkTrampoline(real, stat, isELF) == nil {
			return real, true, nil
		}
	}
	return "", false, nil
}

// checkTrampoline: a regular, executable ELF file.
func checkTrampoline(p string, stat func(string) (os.FileInfo, error), isELF func(string) bool) error {
	fi, err := stat(p)
	switch {
	case err != nil:
		return err
	case !fi.Mode().IsRegular():
		return fmt.Errorf("%w: not a regular file", errNotTrampoline)
	case fi.Mode().Perm()&0o111 == 0:
		return fmt.Errorf("%w: not executable", errNotTrampoline)
	case !isELF(p):
		return fmt.Errorf("%w: not an ELF executable", errNotTrampoline)
	}
	return nil
}

// isELFFile reports whether p starts with the ELF magic.
func isELFFile(p string) bool {
	f, err := os.Open(p)
	if err != nil {
		return false
	}
	defer f.Close()
	var head [4]byte
	_, err = io.ReadFull(f, head[:])
	return err == nil && bytes.Equal(head[:], []byte("\x7fELF"))
}

// installTrampoline copies the PID-1 binary to dst, mode 0755, atomically
// (temp file, fsync, rename, fsync of the directory), and says which file it
// was: init-overlay (findTrampoline), or this binary when there is none.
func (e *env) installTrampoline(dst, explicit string, warn io.Writer) (string, error) {
	self, err := e.executable()
	if err != nil {
		return "", fmt.Errorf("find this binary: %w", err)
	}
	if real, err := filepath.EvalSymlinks(self); err == nil {
		self = real
	}
	src, found, err := findTrampoline(explicit, self, e.trampolineDirs, os.Stat, isELFFile)
	if err != nil {
		return "", err
	}
	if !found {
		src = self
		fmt.Fprintf(warn, "overlayupd: warning: no %s binary beside %s or in %v; installing %s itself as the trampoline (it boots too, but pays at every boot for the command line it links: install both binaries with make install, or name one with --trampoline)\n",
			TrampolineName, filepath.Dir(self), e.trampolineDirs, self)
	}
	f, err := os.Open(src)
	if err != nil {
		return "", err
	}
	defer f.Close()
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return "", err
	}
	return src, atomicfile.WriteFrom(dst, f, 0o755)
}

// hostMachines is what the running kernel runs (squash.KernelMachines of
// its architecture), nil when unknown: then no architecture check.
func hostMachines() []uint16 {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return nil
	}
	return squash.KernelMachines(unix.ByteSliceToString(u.Machine[:]))
}

// targetMachines is what an image's init must run on: --arch when given,
// else this system's.
func (e *env) targetMachines(arch string) ([]uint16, error) {
	if arch != "" {
		ms, err := squash.ArchMachines(arch)
		if err != nil {
			return nil, fmt.Errorf("--arch: %w", err)
		}
		return ms, nil
	}
	return e.machines, nil
}

// elfMachines is what a device runs whose trampoline is the ELF file p: its
// machine, and the 32-bit one its kernel runs too. nil when p is not ELF.
func elfMachines(p string) []uint16 {
	f, err := os.Open(p)
	if err != nil {
		return nil
	}
	defer f.Close()
	head := make([]byte, squash.HeadSize)
	n, _ := io.ReadFull(f, head)
	m, _, ok, err := squash.ParseELF(head[:n])
	if !ok || err != nil {
		return nil
	}
	switch m {
	case squash.EMX8664:
		return []uint16{m, squash.EM386}
	case squash.EMAArch64:
		return []uint16{m, squash.EMARM}
	}
	return []uint16{m}
}
